"""The OrbitDB anchor of the sync benchmark: bench/anchors/orbitdb (two OrbitDB nodes replicating
N entries over 127.0.0.1, see its README), npm-installed once into a cache under $TMPDIR.
Every failure comes back as {"error": "<why, one line>"} so the Mizu side still reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ANCHOR = Path(__file__).resolve().parent / "anchors" / "orbitdb"
CACHE = Path(tempfile.gettempdir()) / "mizu-bench-orbitdb"


def _one_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "warn" not in ln.lower()]
    return " | ".join(lines)[:limit] or "(no output)"


def _run(cmd: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
    # Own session, so a timeout kills the whole group: replicate.mjs measures each run in a
    # child node (and npm spawns helpers), which subprocess.run's kill() would leave running.
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return proc.returncode, out, err


def _prepare(timeout: float) -> float | None:
    """Refresh the cache copy; run `npm install` unless done for this package.json. Returns its seconds."""
    CACHE.mkdir(exist_ok=True)
    CACHE.chmod(0o755)  # a copytree of the read-only anchor (an older cache) would stop npm writing
    for name in ("package.json", "replicate.mjs"):
        (CACHE / name).unlink(missing_ok=True)
        shutil.copyfile(ANCHOR / name, CACHE / name)  # copyfile: the anchor's files are mode 0444
    stamp = hashlib.sha256((ANCHOR / "package.json").read_bytes()).hexdigest()
    if (CACHE / ".stamp").is_file() and (CACHE / ".stamp").read_text() == stamp:
        return None
    for stale in ("node_modules", "package-lock.json", ".stamp"):
        shutil.rmtree(CACHE / stale, ignore_errors=True)
        (CACHE / stale).unlink(missing_ok=True)
    start = time.perf_counter()
    code, _, err = _run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], CACHE, timeout)
    if code != 0:
        raise RuntimeError(f"npm install failed (exit {code}): {_one_line(err)}")
    (CACHE / ".stamp").write_text(stamp)  # only after success, so a broken install is retried
    return round(time.perf_counter() - start, 1)


def _why_incomplete(n: int, stdout: str, stderr: str) -> str:
    """The first child's reason for not replicating all N (its RESULT line goes to stderr)."""
    for line in stderr.splitlines() + stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            if res.get("error"):
                return _one_line(res["error"].splitlines()[0])
            return f"B held {res.get('countB', '?')} of {n} entries (timed out: {bool(res.get('timedOut'))})"
        if line.startswith('{"run"'):
            return json.loads(line).get("error", line)
    return _one_line(stderr)


def run_orbitdb(n: int = 10_000, runs: int = 1, timeout: float = 900) -> dict[str, Any]:
    """Medians over `runs` runs; `timeout` bounds everything, npm install included."""
    if not ANCHOR.is_dir():
        return {"error": f"the OrbitDB anchor is not at {ANCHOR}"}
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return {"error": f"{' and '.join(missing)} not found on PATH"}
    start = time.perf_counter()
    try:
        install_s = _prepare(timeout)
        left = timeout - (time.perf_counter() - start)
        # --deadline (B's wait, default 600 s) follows our budget, so a large n is not cut short
        # by the script's own default while the budget still has room.
        code, out, err = _run(["node", "replicate.mjs", "--n", str(n), "--runs", str(runs),
                               "--deadline", str(max(int(left), 1))], CACHE, left)
        line = next((ln[8:] for ln in out.splitlines() if ln.startswith("SUMMARY ")), None)
        if line is None:
            return {"error": f"replicate.mjs printed no SUMMARY (exit {code}): {_one_line(err)}"}
        s = json.loads(line)
        if not s.get("complete"):
            return {"error": f"no run replicated all {n} entries: {_why_incomplete(n, out, err)}"}
        return {
            "entries": s["n"], "runs": s["complete"],
            "add_per_s": s["addRate"]["median"], "add_seconds": s["addSec"]["median"],
            "replicate_per_s": s["replRate"]["median"], "replicate_seconds": s["replSec"]["median"],
            "head_seen_seconds": s.get("headSeenSec", {}).get("median"),
            "peak_rss_mb": s["peakRssMiB"]["median"],  # both nodes, one process (MiB, as Mizu's)
            "npm_install_seconds": install_s,  # None: the cached install was re-used
            "wall_seconds": round(time.perf_counter() - start, 1),
        }
    except subprocess.TimeoutExpired as e:
        return {"error": f"`{' '.join(map(str, e.cmd[:2]))}` did not finish within the {timeout:.0f} s budget"}
    except Exception as e:  # the benchmark must still report the Mizu side
        return {"error": _one_line(f"{type(e).__name__}: {e}")}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    print(json.dumps(run_orbitdb(args.n, args.runs, args.timeout), indent=2))
