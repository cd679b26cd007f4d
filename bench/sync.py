"""Sync benchmark: `mizu pull` between two real nodes on 127.0.0.1, beside OrbitDB.

1. Initial pull of N signed messages (5 triples each) from one `mizu serve`: messages/s,
   bytes on the wire, peak memory of the pulling process. Target >= 3,000 messages/s.
2. Incremental pull of one new record into a LARGE-record subscription: blocks, bytes and
   wall time after connect. Targets: <= 1% of the full pull's bytes, <= 500 ms.
3. The same N-entry replication between two OrbitDB nodes (bench/orbitdb.py), as a ratio.
4. Pull against import: each publisher's feed exported with `mizu export --car --subscription`
   and imported with `mizu import` into a fresh repository (every block re-hashed, every
   signature checked, everything stored, no network), for N and for the large subscription,
   beside the initial pulls of the same records (the pulls of 1. and 2.). Both sides are
   timed as whole processes by the same clock, with their peak RSS. Targets: pull >= 0.7x
   the import's messages/s at both sizes, >= 10,000 messages/s at N = 10,000, peak RSS
   < 300 MB at 100,000.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ingest import _run

MIZU = str(Path(sys.executable).parent / "mizu")
QUERY = json.dumps({"@select": ["?m", "?title"], "@where": {"@id": "?m", "feed": "bench", "title": "?title"}})
TARGET_RATE = 3000
TARGET_BYTES_SHARE = 0.01
TARGET_INCREMENTAL_S = 0.5
TARGET_PULL_OVER_IMPORT = 0.7  # issue 23 item 5: a pull at the speed of verification
TARGET_PULL_RATE = 10_000  # messages/s for the 10,000-message pull, process wall time
TARGET_PULL_RSS_MB = 300  # peak RSS of the 100,000-record pull


def _mizu(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run([MIZU, *args], cwd=repo, input=stdin, capture_output=True, check=False)
    if out.returncode:
        raise RuntimeError(f"mizu {' '.join(args)}: {out.stderr.decode()[-500:]}")
    return out.stdout.decode()


def _messages(n: int, start: int = 0) -> bytes:
    return b"".join(
        json.dumps({"feed": "bench", "title": f"post {i}", "n": i, "tags": ["x", f"t{i % 7}"]}).encode() + b"\n"
        for i in range(start, start + n)
    )


def _publisher(root: Path, n: int) -> tuple[Path, str, subprocess.Popen[bytes], str]:
    """The publisher's repository, its subscription's id, its `mizu serve` and address."""
    repo = root / f"publisher-{n}"
    repo.mkdir()
    _mizu(repo, "init")
    _mizu(repo, "put", "--lines", stdin=_messages(n))
    sub = _mizu(repo, "subscribe", QUERY).strip()
    node = subprocess.Popen([MIZU, "--quiet", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert node.stdout is not None
    return repo, sub, node, node.stdout.readline().decode().strip()


def _subscriber(root: Path, name: str) -> Path:
    repo = root / name
    repo.mkdir()
    _mizu(repo, "init")
    _mizu(repo, "subscribe", QUERY)
    return repo


def _pull(repo: Path, address: str) -> dict[str, Any]:
    wall, memory, out = _run([MIZU, "--json", "pull", "--from", address], repo)
    return {"wall_s": wall, **memory, **json.loads(out)}


def _export(publisher: Path, sub: str, car: Path) -> None:
    """The subscription's records (and its query message) as a CAR; not timed."""
    _mizu(publisher, "export", "--car", "--subscription", sub, "-o", str(car))


def _import(root: Path, car: Path, name: str) -> dict[str, Any]:
    """`mizu --json import CAR` into a fresh repository, timed as a whole process."""
    repo = root / name
    repo.mkdir()
    _mizu(repo, "init")
    wall, memory, out = _run([MIZU, "--json", "import", str(car)], repo)
    result = json.loads(out)
    return {"wall_s": wall, **memory, "blocks": result["blocks"], "messages": result["messages"],
            "car_bytes": car.stat().st_size, "messages_per_s": result["messages"] / wall}


def _against(pull: dict[str, Any], imported: dict[str, Any]) -> dict[str, Any]:
    """A pull beside the import of the same records: both rates over whole-process wall time."""
    pull_rate = pull["records"] / pull["wall_s"]
    return {"records": pull["records"], "pull_per_s": pull_rate,
            "pull_in_process_per_s": pull["records"] / pull["seconds"],
            # after connecting: the exchange alone, without start-up, libp2p's import and dial
            "pull_exchange_per_s": pull["records"] / max(pull["exchange_seconds"], 1e-9),
            "pull_wall_s": pull["wall_s"], "pull_peak_rss_mb": pull["peak_rss_mb"],
            "pull_peak_anon_mb": pull["peak_anon_mb"], "import": imported,
            "ratio": pull_rate / imported["messages_per_s"]}


def run(messages: int = 10_000, large: int = 100_000, orbitdb_n: int | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"messages": messages, "large": large}
    with tempfile.TemporaryDirectory(prefix="mizu-bench-sync-") as tmp:
        root = Path(tmp)
        # 1. initial pull
        publisher, sub, node, address = _publisher(root, messages)
        try:
            full = _pull(_subscriber(root, "initial"), address)
        finally:
            node.terminate()
            node.wait()
        full["messages_per_s"] = full["records"] / full["seconds"]
        results["initial"] = full
        # 4. (N) the same records through `mizu import`, with no serve running
        car = root / f"feed-{messages}.car"
        _export(publisher, sub, car)
        small_import = _import(root, car, f"import-{messages}")
        car.unlink()
        # 2. incremental pull into a large subscription
        publisher, sub, node, address = _publisher(root, large)
        try:
            subscriber = _subscriber(root, "incremental")
            results["large_pull"] = _pull(subscriber, address)
            large_car = root / f"feed-{large}.car"
            _export(publisher, sub, large_car)  # the same records as the pull, before one more
            _mizu(publisher, "put", stdin=_messages(1, start=large))
            one = _pull(subscriber, address)
        finally:
            node.terminate()
            node.wait()
        one["bytes_share"] = one["bytes_received"] / max(results["large_pull"]["bytes_received"], 1)
        results["incremental"] = one
        # 4. (large) import, with no serve running
        large_import = _import(root, large_car, f"import-{large}")
        results["pull_vs_import"] = [_against(full, small_import),
                                     _against(results["large_pull"], large_import)]
    # 3. OrbitDB, the same number of entries, in the same run
    from orbitdb import run_orbitdb

    results["orbitdb"] = run_orbitdb(orbitdb_n or messages, runs=1)
    rate = results["orbitdb"].get("replicate_per_s")
    results["ratio_vs_orbitdb"] = full["messages_per_s"] / rate if rate else None
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
