"""Ingest benchmark: `mizu put --lines` (signed and unsigned) against pyoxigraph and rdflib.

Each system runs in its own child process, so its peak RSS is its own (`os.wait4`
`ru_maxrss`). While a child runs, a sampler thread polls `/proc/PID/status` every
`SAMPLE_S` seconds and keeps the peaks of `RssAnon` (the process's own heap and stacks) and
of `RssFile + RssShmem` (file-backed pages, for mizu mostly its memory-mapped LMDB store:
page cache the kernel can drop), and of `VmRSS` as a cross-check of `ru_maxrss`.
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
import threading
import time
from pathlib import Path
from typing import Any

import datagen

MIZU = str(Path(sys.executable).with_name("mizu"))
RDFLIB_BUDGET_S = 120.0  # above this (projected), rdflib runs at N/10 and is scaled


SAMPLE_S = 0.025  # polling period of the /proc/PID/status memory sampler
_STATUS_KEYS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")


class _MemorySampler(threading.Thread):
    """Poll /proc/PID/status until stopped; keep peak VmRSS, RssAnon, RssFile+RssShmem (kB)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._path = f"/proc/{pid}/status"
        self._done = threading.Event()
        self.samples = 0
        self.peak_kb = {"vmrss": 0, "anon": 0, "file": 0}

    def run(self) -> None:
        while True:
            self._sample()
            if self._done.wait(SAMPLE_S):
                return

    def stop(self) -> None:
        self._done.set()
        self.join()

    def _sample(self) -> None:
        try:
            with open(self._path, encoding="ascii") as f:
                text = f.read()
        except OSError:
            return
        kb = {}
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in _STATUS_KEYS:
                kb[key] = int(value.split()[0])
        if len(kb) < len(_STATUS_KEYS):  # a zombie has no memory lines
            return
        self.samples += 1
        peak = self.peak_kb
        peak["vmrss"] = max(peak["vmrss"], kb["VmRSS"])
        peak["anon"] = max(peak["anon"], kb["RssAnon"])
        peak["file"] = max(peak["file"], kb["RssFile"] + kb["RssShmem"])

    def memory(self) -> dict[str, Any]:
        """Sampled peaks in MB (None without a sample) and the number of samples."""
        def mb(key: str) -> int | None:
            return self.peak_kb[key] // 1024 if self.samples else None

        return {"peak_anon_mb": mb("anon"), "peak_file_mb": mb("file"),
                "peak_vmrss_sampled_mb": mb("vmrss"), "memory_samples": self.samples}


def _run(argv: list[str], cwd: Path,
         stdout: int | None = None) -> tuple[float, dict[str, Any], str]:
    """Run a child; return (wall seconds, memory peaks in MB, stdout).

    The clock stops when the child exits (`waitid` with `WNOWAIT` leaves it unreaped, so the
    sampler can never read a reused PID); then the sampler is stopped and the child reaped.
    With `stdout` (a file descriptor, or `subprocess.DEVNULL`) the child writes there
    instead and "" is returned as its output.
    """
    env = {k: v for k, v in os.environ.items() if k != "MIZU_DIR"}
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out if stdout is None else stdout,
                                stderr=subprocess.PIPE)
        sampler = _MemorySampler(proc.pid)
        sampler.start()
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - t0
        sampler.stop()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {err[-2000:]}")
        out.seek(0)
        memory = {"peak_rss_mb": usage.ru_maxrss // 1024, **sampler.memory()}
        return wall, memory, out.read().decode() if stdout is None else ""


def _mizu_put(ndjson: Path, root: Path, sign: bool) -> dict[str, Any]:
    repo = root / ("signed" if sign else "unsigned")
    repo.mkdir()
    _run([MIZU, "init", str(repo)], root)
    argv = [MIZU, "--json", "put", "--lines"] + ([] if sign else ["--no-sign"]) + [str(ndjson)]
    wall, memory, out = _run(argv, repo)
    result = json.loads(out)
    n = len(result["cids"])
    return {"seconds": wall, "messages": n, "triples": result["triples"], **memory,
            "messages_per_s": n / wall, "triples_per_s": result["triples"] / wall,
            "cids": result["cids"]}


def _reference(system: str, nt: Path, triples: int, root: Path) -> dict[str, Any]:
    store = root / f"{system}-{nt.stem}"
    _, memory, out = _run([sys.executable, __file__, system, str(nt), str(store)], root)
    seconds = json.loads(out)["seconds"]
    return {"seconds": seconds, "triples": triples, **memory,
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
