"""Sync benchmark: `mizu pull` between two real nodes on 127.0.0.1, beside OrbitDB.

1. Initial pull of N signed messages (5 triples each) from one `mizu serve`: messages/s,
   bytes on the wire, peak memory of the pulling process. Target >= 3,000 messages/s.
2. Incremental pull of one new record into a LARGE-record subscription: blocks, bytes and
   wall time after connect. Targets: <= 1% of the full pull's bytes, <= 500 ms.
3. The same N-entry replication between two OrbitDB nodes (bench/orbitdb.py), as a ratio.
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


def _publisher(root: Path, n: int) -> tuple[Path, subprocess.Popen[bytes], str]:
    repo = root / f"publisher-{n}"
    repo.mkdir()
    _mizu(repo, "init")
    _mizu(repo, "put", "--lines", stdin=_messages(n))
    _mizu(repo, "subscribe", QUERY)
    node = subprocess.Popen([MIZU, "--quiet", "serve", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert node.stdout is not None
    return repo, node, node.stdout.readline().decode().strip()


def _subscriber(root: Path, name: str) -> Path:
    repo = root / name
    repo.mkdir()
    _mizu(repo, "init")
    _mizu(repo, "subscribe", QUERY)
    return repo


def _pull(repo: Path, address: str) -> dict[str, Any]:
    wall, memory, out = _run([MIZU, "--json", "pull", "--from", address], repo)
    return {"wall_s": wall, **memory, **json.loads(out)}


def run(messages: int = 10_000, large: int = 100_000, orbitdb_n: int | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {"messages": messages, "large": large}
    with tempfile.TemporaryDirectory(prefix="mizu-bench-sync-") as tmp:
        root = Path(tmp)
        # 1. initial pull
        _, node, address = _publisher(root, messages)
        try:
            full = _pull(_subscriber(root, "initial"), address)
        finally:
            node.terminate()
            node.wait()
        full["messages_per_s"] = full["records"] / full["seconds"]
        results["initial"] = full
        # 2. incremental pull into a large subscription
        publisher, node, address = _publisher(root, large)
        try:
            subscriber = _subscriber(root, "incremental")
            results["large_pull"] = _pull(subscriber, address)
            _mizu(publisher, "put", stdin=_messages(1, start=large))
            one = _pull(subscriber, address)
        finally:
            node.terminate()
            node.wait()
        one["bytes_share"] = one["bytes_received"] / max(results["large_pull"]["bytes_received"], 1)
        results["incremental"] = one
    # 3. OrbitDB, the same number of entries, in the same run
    from orbitdb import run_orbitdb

    results["orbitdb"] = run_orbitdb(orbitdb_n or messages, runs=1)
    rate = results["orbitdb"].get("replicate_per_s")
    results["ratio_vs_orbitdb"] = full["messages_per_s"] / rate if rate else None
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
