"""Start-up benchmark: median wall time of short commands, each a fresh child process.

Measures `python -c pass` (the floor), `mizu --help` and `mizu view CID` (a message in a
small repository made for the purpose). One untimed warm-up run precedes each series.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIZU = str(Path(sys.executable).with_name("mizu"))


def _times(argv: list[str], cwd: Path, runs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "MIZU_DIR"}
    out = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
        if i:  # the first run only warms the caches
            out.append(time.perf_counter() - t0)
    return out


def run(runs: int = 15) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mizu-startup-") as tmp:
        repo = Path(tmp)
        subprocess.run([MIZU, "init", str(repo)], check=True, capture_output=True)
        put = subprocess.run([MIZU, "put", "-"], cwd=repo, check=True, capture_output=True,
                             input=b'{"text": "Hello, world!", "tags": ["a", "b"]}')
        cid = put.stdout.decode().split()[0]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "mizu --help": [MIZU, "--help"],
            "mizu view CID": [MIZU, "view", cid],
        }
        results = {}
        for name, argv in commands.items():
            times = _times(argv, repo, runs)
            results[name] = {"median_ms": statistics.median(times) * 1000,
                             "min_ms": min(times) * 1000, "max_ms": max(times) * 1000,
                             "runs": runs}
    return results
