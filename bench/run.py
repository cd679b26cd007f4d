"""Run Mizu's benchmarks, print a results table, write bench/results/latest.json.

Usage: python bench/run.py [--messages N] [--only ingest|startup] [--runs R]

Ingest (bench/ingest.py): `mizu put --lines` signed and unsigned vs pyoxigraph bulk load
and rdflib parse of the same triples. Start-up (bench/startup.py): median wall time of
`python -c pass`, `mizu --help`, `mizu view CID`. Targets are printed with PASS/FAIL.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest
import startup

RESULTS = Path(__file__).resolve().parent / "results"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _ingest_table(r: dict[str, Any]) -> list[str]:
    mu, ms, ox, rl = r["mizu_unsigned"], r["mizu_signed"], r["pyoxigraph"], r["rdflib"]
    rows = [
        f"Ingest: {r['messages']:,} messages, {r['reference_triples']:,} triples unsigned "
        f"(unsigned CIDs match: {r['checks']['cids_match']}, "
        f"triple count matches: {r['checks']['triples_match']})",
        f"  {'system':<26}{'seconds':>9}{'msgs/s':>10}{'triples':>11}{'triples/s':>11}"
        f"{'peak MB':>9}",
    ]
    for name, x in (("mizu put --no-sign", mu), ("mizu put (signed)", ms),
                    ("pyoxigraph bulk_load", ox), ("rdflib Graph.parse nt", rl)):
        msgs = f"{x['messages'] / x['seconds']:>10,.0f}" if "messages" in x else f"{'':>10}"
        rows.append(f"  {name:<26}{x['seconds']:>9.2f}{msgs}{x['triples']:>11,}"
                    f"{x['triples_per_s']:>11,.0f}{x['peak_rss_mb']:>9}")
    if rl.get("scaled_from"):
        rows += [f"  note: rdflib projected > {ingest.RDFLIB_BUDGET_S:.0f} s, so it ran at "
                 f"{rl['scaled_from']:,} messages (N/10);",
                 "  its time is scaled to N, its peak MB is at N/10"]
    rows += ["  note: mizu is timed as a whole process (start-up included), the references "
             "around the load only;",
             "  signed messages carry 3 more triples each (their $signatures node)"]
    u_ox = mu["triples_per_s"] / ox["triples_per_s"]
    s_ox = ms["triples_per_s"] / ox["triples_per_s"]
    u_rl = mu["triples_per_s"] / rl["triples_per_s"]
    s_rl = ms["triples_per_s"] / rl["triples_per_s"]
    peak = max(mu["peak_rss_mb"], ms["peak_rss_mb"])
    r["ratios"] = {"unsigned/pyoxigraph": u_ox, "signed/pyoxigraph": s_ox,
                   "unsigned/rdflib": u_rl, "signed/rdflib": s_rl}
    r["targets"] = {
        "unsigned >= 1x pyoxigraph": u_ox >= 1, "signed >= 0.5x pyoxigraph": s_ox >= 0.5,
        "unsigned >= 5x rdflib": u_rl >= 5, "signed >= 5x rdflib": s_rl >= 5,
        "mizu peak memory < 300 MB": peak < 300,
    }
    rows += [
        f"  {'target':<34}{'measured':>12}  result",
        f"  {'unsigned / pyoxigraph >= 1x':<34}{u_ox:>11.2f}x  {_verdict(u_ox >= 1)}",
        f"  {'signed / pyoxigraph >= 0.5x':<34}{s_ox:>11.2f}x  {_verdict(s_ox >= 0.5)}",
        f"  {'unsigned / rdflib >= 5x':<34}{u_rl:>11.2f}x  {_verdict(u_rl >= 5)}",
        f"  {'signed / rdflib >= 5x':<34}{s_rl:>11.2f}x  {_verdict(s_rl >= 5)}",
        f"  {'mizu peak memory < 300 MB':<34}{peak:>9} MB  {_verdict(peak < 300)}",
    ]
    return rows


def _startup_table(r: dict[str, Any]) -> list[str]:
    targets = {"mizu --help": 150.0, "mizu view CID": 200.0}
    rows = [f"Start-up: median of {next(iter(r.values()))['runs']} runs",
            f"  {'command':<18}{'median ms':>10}{'min':>8}{'max':>8}  target"]
    for name, x in r.items():
        limit = targets.get(name)
        verdict = f"<= {limit:.0f} ms {_verdict(x['median_ms'] <= limit)}" if limit else "(floor)"
        x["target_ms"], x["pass"] = limit, (x["median_ms"] <= limit) if limit else None
        rows.append(f"  {name:<18}{x['median_ms']:>10.1f}{x['min_ms']:>8.1f}{x['max_ms']:>8.1f}"
                    f"  {verdict}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages to ingest")
    parser.add_argument("--only", choices=("ingest", "startup"))
    parser.add_argument("--runs", type=int, default=15, help="start-up runs per command (>= 10)")
    args = parser.parse_args()

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "python": platform.python_version(), "machine": platform.platform()}
    lines: list[str] = []
    if args.only in (None, "ingest"):
        results["ingest"] = ingest.run(args.messages)
        lines += [*_ingest_table(results["ingest"]), ""]
    if args.only in (None, "startup"):
        results["startup"] = startup.run(max(10, args.runs))
        lines += _startup_table(results["startup"])
    print("\n".join(lines).rstrip())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
