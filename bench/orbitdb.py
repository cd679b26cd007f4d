"""The OrbitDB anchor of the sync benchmark: two OrbitDB nodes (Helia, libp2p) replicating
N entries on 127.0.0.1, run from ../shared/anchors/orbitdb (see its README).

`npm install` runs once into a cache folder under $TMPDIR; every failure becomes
{"error": one line saying why}, so the Mizu side of the benchmark still reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "orbitdb"
CACHE = Path(tempfile.gettempdir()) / "mizu-bench-orbitdb"


def _prepared() -> Path:
    """A copy of the anchor with its packages installed (re-used while package.json is the same)."""
    stamp = hashlib.sha256((ANCHOR / "package.json").read_bytes()).hexdigest()
    if (CACHE / ".stamp").is_file() and (CACHE / ".stamp").read_text() == stamp:
        shutil.copy2(ANCHOR / "replicate.mjs", CACHE / "replicate.mjs")
        return CACHE
    shutil.rmtree(CACHE, ignore_errors=True)
    shutil.copytree(ANCHOR, CACHE)
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=CACHE, check=True, capture_output=True, timeout=900)
    (CACHE / ".stamp").write_text(stamp)
    return CACHE


def run_orbitdb(n: int = 10_000, runs: int = 1, timeout: float = 1800) -> dict[str, Any]:
    if not ANCHOR.is_dir():
        return {"error": f"the anchor is not at {ANCHOR}"}
    if shutil.which("node") is None or shutil.which("npm") is None:
        return {"error": "node and npm are not installed"}
    try:
        folder = _prepared()
        out = subprocess.run(["node", "replicate.mjs", "--n", str(n), "--runs", str(runs)],
                             cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as e:
        return {"error": f"npm install failed: {(e.stderr or b'').decode()[-300:].strip()}"}
    except subprocess.TimeoutExpired as e:
        return {"error": f"{e.cmd[0]} did not finish within {e.timeout:.0f} s"}
    summary = next((line[8:] for line in out.stdout.splitlines() if line.startswith("SUMMARY ")), None)
    if summary is None:
        return {"error": f"no SUMMARY line from replicate.mjs (exit {out.returncode}): {out.stderr[-300:].strip()}"}
    s = json.loads(summary)
    if not s.get("complete"):
        return {"error": f"no run replicated all {n} entries: {summary[:300]}"}
    return {
        "entries": n, "runs": s["complete"], "add_per_s": s["addRate"]["median"],
        "replicate_per_s": s["replRate"]["median"], "replicate_seconds": s["replSec"]["median"],
        "peak_rss_mb": s["peakRssMiB"]["median"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run_orbitdb(args.n, args.runs), indent=2))
