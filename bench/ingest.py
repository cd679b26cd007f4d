"""Ingest benchmark: `mizu put --lines` (signed and unsigned) against pyoxigraph and rdflib.

Each system runs in its own child process, so its peak RSS is its own (`os.wait4`).
Mizu is timed as the whole `mizu --json put --lines FILE` process (start-up included);
pyoxigraph (`Store(dir).bulk_load` of an N-Triples file) and rdflib (`Graph().parse`, nt)
are timed around the load call only, inside their child. All load the same unsigned
triples; signing adds a `$signatures` node (3 more triples per message).

Run as a script (`python bench/ingest.py oxigraph|rdflib FILE.nt DIR`) it is that child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import datagen

MIZU = str(Path(sys.executable).with_name("mizu"))
RDFLIB_BUDGET_S = 120.0  # above this (projected), rdflib runs at N/10 and is scaled


def _run(argv: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run a child; return (wall seconds, peak RSS in MB, stdout)."""
    env = {k: v for k, v in os.environ.items() if k != "MIZU_DIR"}
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {err[-2000:]}")
        out.seek(0)
        return wall, usage.ru_maxrss // 1024, out.read().decode()


def _mizu_put(ndjson: Path, root: Path, sign: bool) -> dict[str, Any]:
    repo = root / ("signed" if sign else "unsigned")
    repo.mkdir()
    _run([MIZU, "init", str(repo)], root)
    argv = [MIZU, "--json", "put", "--lines"] + ([] if sign else ["--no-sign"]) + [str(ndjson)]
    wall, rss, out = _run(argv, repo)
    result = json.loads(out)
    n = len(result["cids"])
    return {"seconds": wall, "messages": n, "triples": result["triples"], "peak_rss_mb": rss,
            "messages_per_s": n / wall, "triples_per_s": result["triples"] / wall,
            "cids": result["cids"]}


def _reference(system: str, nt: Path, triples: int, root: Path) -> dict[str, Any]:
    store = root / f"{system}-{nt.stem}"
    _, rss, out = _run([sys.executable, __file__, system, str(nt), str(store)], root)
    seconds = json.loads(out)["seconds"]
    return {"seconds": seconds, "triples": triples, "peak_rss_mb": rss,
            "triples_per_s": triples / seconds}


def run(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mizu-bench-") as tmp:
        root = Path(tmp)
        ndjson, nt, nt_small = root / "msgs.ndjson", root / "all.nt", root / "tenth.nt"
        datagen.write_ndjson(ndjson, n)
        triples, cids = datagen.write_ntriples(nt, datagen.messages(n))
        small_n = max(1, n // 10)
        small_triples, _ = datagen.write_ntriples(nt_small, datagen.messages(small_n))

        unsigned = _mizu_put(ndjson, root, sign=False)
        signed = _mizu_put(ndjson, root, sign=True)
        oxigraph = _reference("oxigraph", nt, triples, root)

        rdflib = _reference("rdflib", nt_small, small_triples, root)
        projected = rdflib["seconds"] * triples / small_triples
        if projected <= RDFLIB_BUDGET_S:
            rdflib = _reference("rdflib", nt, triples, root)
            rdflib["scaled_from"] = None
        else:
            rdflib["scaled_from"] = small_n  # throughput measured at N/10, time projected
            rdflib["seconds"], rdflib["triples"] = projected, triples

    checks = {"cids_match": unsigned.pop("cids") == cids,
              "triples_match": unsigned["triples"] == triples}
    signed.pop("cids")
    return {"messages": n, "reference_triples": triples, "checks": checks,
            "mizu_unsigned": unsigned, "mizu_signed": signed,
            "pyoxigraph": oxigraph, "rdflib": rdflib}


def _load(system: str, nt: str, store_dir: str) -> float:
    if system == "oxigraph":
        from pyoxigraph import RdfFormat, Store

        store = Store(store_dir)
        t0 = time.perf_counter()
        store.bulk_load(path=nt, format=RdfFormat.N_TRIPLES)
        store.flush()
        return time.perf_counter() - t0
    from rdflib import Graph

    t0 = time.perf_counter()
    Graph().parse(nt, format="nt")
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(json.dumps({"seconds": _load(*sys.argv[1:4])}))
