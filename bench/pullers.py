"""Many pullers benchmark (issue 23 item 6): one `mizu serve` holding an N-record signed feed
answers P concurrent first pulls, each a separate `mizu pull` process with a repository of
its own, then waves of incremental pulls after the publisher adds records.

Reported: the wave's wall time (first start to last exit), messages/s summed over the
pullers (each puller's records over its own process wall time) and over the wave, serve's
peak RSS (VmHWM) and sampled peak anonymous memory, and each puller's verified completion:
exit 0 (each pull waits up to TIMEOUT s for a response), its subscription's root equal to the publisher's (a prolly tree's root is the same
for the same record set, so this is "exactly the feed's records") and its record count.
Then serve is asked for blocks by a peer that stops reading (tests/e2e/hostile_peer.py
stall), and the log is checked for its drop.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ingest import _MemorySampler
from sync import MIZU, _mizu

ROOT = Path(__file__).resolve().parent.parent
QUERY = json.dumps({"@select": ["?m", "?title"], "@where": {"@id": "?m", "feed": "pullers", "title": "?title"}})
TARGET_RSS_MB = 300  # serve's peak RSS with the pullers at once (issue 23 item 6)
# Seconds a puller waits for one response: serve's own (REQUEST_TIMEOUT), not pull's
# default 5 s. The pullers share serve's cores here, 50 interpreters starting at once, and
# with 5 s most pulls gave up while serve waited for CPU (2026-12-08, a shared machine).
TIMEOUT = 30


def _messages(n: int, start: int = 0) -> bytes:
    return b"".join(
        json.dumps({"feed": "pullers", "title": f"post {i}", "n": i, "tags": ["x", f"t{i % 7}"]}).encode() + b"\n"
        for i in range(start, start + n))


def _feed(repo: Path) -> dict[str, Any]:
    (sub,) = json.loads(_mizu(repo, "--json", "subscriptions"))
    return {"root": sub["root"], "records": sub["records"]}


class Serve:
    """`mizu serve` with its log collected and its memory sampled."""

    def __init__(self, repo: Path) -> None:
        self.process = subprocess.Popen([MIZU, "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"],
                                        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.address = self.process.stdout.readline().decode().strip()
        self.log: list[str] = []
        stderr = self.process.stderr
        threading.Thread(target=lambda: self.log.extend(line.decode() for line in stderr), daemon=True).start()
        self.sampler = _MemorySampler(self.process.pid)
        self.sampler.start()

    def peak_mb(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        raise RuntimeError("no VmHWM")

    def stop(self) -> dict[str, Any]:
        peak = self.peak_mb()
        self.sampler.stop()
        self.process.terminate()
        self.process.wait(timeout=30)
        return {"peak_rss_mb": peak, "peak_anon_mb": self.sampler.memory()["peak_anon_mb"]}


def _wave(pullers: list[Path], address: str, expected: dict[str, Any]) -> dict[str, Any]:
    """All pullers at once, each a `mizu --json pull` process; then each one verified."""
    t0 = time.perf_counter()
    procs = [(subprocess.Popen([MIZU, "--json", "pull", "--from", address, "--timeout", str(TIMEOUT)], cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE), time.perf_counter())
             for repo in pullers]
    results = []
    for proc, started in procs:
        out, err = proc.communicate()
        ended = time.perf_counter()
        try:  # printed even when the pull fails, once the peer was reached
            report = json.loads(out)
        except ValueError:
            report = {}
        results.append({"code": proc.returncode, "wall_s": ended - started,
                        "error": " ".join(err.decode().split())[-300:], "records": report.get("records", 0)})
    wall = time.perf_counter() - t0  # every process was waited for: the last exit is before
    with ThreadPoolExecutor(8) as pool:
        feeds = list(pool.map(_feed, pullers))
    for result, feed in zip(results, feeds, strict=True):
        result["verified"] = result["code"] == 0 and feed == expected
    pulled = sum(r["records"] for r in results)
    return {"wall_s": wall, "pullers": len(pullers), "records": pulled,
            "ok": sum(r["verified"] for r in results),
            "summed_per_s": sum(r["records"] / r["wall_s"] for r in results),
            "wave_per_s": pulled / wall, "slowest_s": max(r["wall_s"] for r in results),
            "failures": [r["error"] for r in results if not r["verified"]]}


def _stalled_peer(address: str, sub: str, serve: Serve, timeout: float = 120) -> dict[str, Any]:
    """A peer that asks for blocks and stops reading: seconds until serve logs its drop."""
    before = len(serve.log)
    hostile = subprocess.Popen([sys.executable, "-m", "tests.e2e.hostile_peer", "stall", address, sub, "2"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert hostile.stdout is not None
        line = hostile.stdout.readline().decode().split()
        if not line or line[0] != "stalled":
            return {"error": f"the stalled peer did not start: {hostile.stderr.read().decode()[-300:] if hostile.stderr else ''}"}
        t0, peer = time.perf_counter(), line[1]
        while time.perf_counter() - t0 < timeout:
            drops = [x for x in serve.log[before:] if x.startswith(f"dropped {peer}: ")]
            if drops:
                return {"dropped_after_s": time.perf_counter() - t0, "line": drops[0].strip()}
            time.sleep(0.05)
        return {"error": f"not dropped within {timeout:g} s"}
    finally:
        hostile.terminate()
        hostile.wait(timeout=10)


def run(messages: int = 10_000, pullers: int = 50, waves: int = 3, added: int = 100) -> dict[str, Any]:
    results: dict[str, Any] = {"messages": messages, "pullers": pullers, "added": added}
    with tempfile.TemporaryDirectory(prefix="mizu-bench-pullers-") as tmp:
        root = Path(tmp)
        publisher = root / "publisher"
        publisher.mkdir()
        _mizu(publisher, "init")
        _mizu(publisher, "put", "--lines", stdin=_messages(messages))
        sub = _mizu(publisher, "subscribe", QUERY).strip()

        def subscriber(i: int) -> Path:
            repo = root / f"puller-{i:02}"
            repo.mkdir()
            _mizu(repo, "init")
            _mizu(repo, "subscribe", QUERY)
            return repo

        with ThreadPoolExecutor(4) as pool:
            repos = list(pool.map(subscriber, range(pullers)))
        serve = Serve(publisher)
        try:
            results["first"] = _wave(repos, serve.address, _feed(publisher))
            results["first_peak_rss_mb"] = serve.peak_mb()
            results["incremental"] = []
            for w in range(waves):
                _mizu(publisher, "put", "--lines", stdin=_messages(added, messages + w * added))
                results["incremental"].append(_wave(repos, serve.address, _feed(publisher)))
            results["stalled"] = _stalled_peer(serve.address, sub, serve)
        finally:
            results["serve"] = serve.stop()
        results["log_drops"] = [x.strip() for x in serve.log if x.startswith("dropped ")][:5]
        results["log_other"] = [x.strip() for x in serve.log
                                if not x.startswith(("dropped ", "provider of ", "stopping on "))][:5]
    return results


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:])), indent=2))
