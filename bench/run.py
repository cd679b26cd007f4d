"""Run Mizu's benchmarks, print results tables, write bench/results/latest.json and bench/RESULTS.md.

Usage: python bench/run.py [--messages N] [--only NAME[,NAME…]] [--runs R]
                           [--triples T] [--seed S] [--query-runs R] [--fresh] [--cache DIR]
                           [--profile slow|all|none] [--files-size SIZE] [--markdown PATH]
                           [--sync-messages N] [--sync-large N]
                           [--gateway-seconds S] [--gateway-rounds R] [--gateway-file-size SIZE]
                           [--pullers P] [--pullers-messages N]

Ingest (bench/ingest.py): `mizu put --lines` signed and unsigned vs pyoxigraph bulk load
and rdflib parse of the same triples, with each child's peak RSS (`ru_maxrss`) and its
sampled peak anonymous and file-backed memory. Start-up (bench/startup.py): median wall
time of `python -c pass`, `mizu --help`, `mizu view CID`. Query (bench/query.py): 15
json-rql queries on a BSBM-like data set of about --triples triples, against the same queries
in SPARQL on pyoxigraph and rdflib (result counts checked, median of --query-runs warm runs in
process), plus a cold `mizu query` point lookup; the loaded stores are cached by size and seed
under --cache (--fresh rebuilds them). Files (bench/files.py): `sha256sum`, `ipfs_cid`,
`mizu add -Q` and `mizu cat` on one --files-size file of random bytes (CIDv1 checked against
ipfs_cid's), then `mizu backup` of a generated 10,000-file site, first run and unchanged
re-run, with the mizu children's peak memory; --profile also picks whether `mizu add` and
the backup re-run are profiled (slow: when a files throughput target is missed). Targets are
printed with PASS/FAIL. Sync (bench/sync.py): `mizu pull` from a `mizu serve` on 127.0.0.1
(initial pull of --sync-messages, then one new record into a --sync-large subscription), and
OrbitDB replicating the same number of entries (bench/orbitdb.py) for the ratio; both initial
pulls beside `mizu import` of a CAR of the same records (pull/import, peak RSS of each). Pullers
(bench/pullers.py): one `mizu serve` holding a --pullers-messages feed, --pullers concurrent
first pulls (separate processes), waves of incremental pulls, serve's peak RSS, and a peer
that stops reading, dropped after the write deadline. Native
(bench/native.py, only with --only native): the C speedups, and the libraries Mizu uses in
their place, against libipld, cbrrr and hashlib on the ingest benchmark's messages.
Gateway (bench/gateway.py): `mizu serve --offline --http` under `wrk` (apt-get installs it
if absent) at 1, 10 and 50 connections, view-raw, a raw block, a stored query and a SPARQL
point query beside a hello-world route on the same web stack (the floor), --gateway-rounds
runs of --gateway-seconds each (the median kept); a --gateway-file-size file streamed from
/ipfs (MB/s, peak RSS); 50 live watchers (memory, and the time until all have a new record).

bench/RESULTS.md (committed; bench/results/ is not) is written from a full run (all
benchmarks); with --only it is written only when --markdown PATH is given.
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import files
import gateway
import ingest
import native
import pullers
import query
import startup
import sync

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
MARKDOWN = BENCH / "RESULTS.md"
BUSY_CORES = 0.25  # other processes' average CPU use above which the machine counts as busy


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]  # first column left-aligned, the others right-aligned


@dataclass
class Section:
    title: str  # Markdown heading
    intro: str  # first printed line
    blocks: list[Table | str] = field(default_factory=list)  # a str is a note


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _ingest_section(r: dict[str, Any]) -> Section:
    mu, ms, ox, rl = r["mizu_unsigned"], r["mizu_signed"], r["pyoxigraph"], r["rdflib"]
    section = Section(
        "Ingest",
        f"Ingest: {r['messages']:,} messages, {r['reference_triples']:,} triples unsigned "
        f"(unsigned CIDs match: {r['checks']['cids_match']}, "
        f"triple count matches: {r['checks']['triples_match']})")
    rows = []
    for name, x in (("mizu put --no-sign", mu), ("mizu put (signed)", ms),
                    ("pyoxigraph bulk_load", ox), ("rdflib Graph.parse nt", rl)):
        msgs = f"{x['messages'] / x['seconds']:,.0f}" if "messages" in x else ""
        rows.append([name, f"{x['seconds']:.2f}", msgs, f"{x['triples']:,}",
                     f"{x['triples_per_s']:,.0f}", _mb(x["peak_rss_mb"]),
                     _mb(x["peak_anon_mb"]), _mb(x["peak_file_mb"])])
    section.blocks.append(Table(["system", "seconds", "msgs/s", "triples", "triples/s",
                                 "peak RSS MB", "anon MB", "file MB"], rows))
    if rl.get("scaled_from"):
        section.blocks.append(
            f"rdflib projected > {ingest.RDFLIB_BUDGET_S:.0f} s, so it ran at "
            f"{rl['scaled_from']:,} messages (N/10); its time is scaled to N, "
            "its memory peaks are at N/10")
    section.blocks += [
        "mizu is timed as a whole process (start-up included), the references around the "
        "load only",
        "signed messages carry 3 more triples each (their `$signatures` node)",
        "peak RSS is ru_maxrss; anon MB = peak RssAnon, file MB = peak RssFile+RssShmem, "
        f"sampled from /proc/PID/status every {ingest.SAMPLE_S * 1000:.0f} ms",
    ]

    u_ox = mu["triples_per_s"] / ox["triples_per_s"]
    s_ox = ms["triples_per_s"] / ox["triples_per_s"]
    u_rl = mu["triples_per_s"] / rl["triples_per_s"]
    s_rl = ms["triples_per_s"] / rl["triples_per_s"]
    peak = max(mu["peak_rss_mb"], ms["peak_rss_mb"])
    anons = [x["peak_anon_mb"] for x in (mu, ms) if x["peak_anon_mb"] is not None]
    anon = max(anons) if len(anons) == 2 else None
    r["ratios"] = {"unsigned/pyoxigraph": u_ox, "signed/pyoxigraph": s_ox,
                   "unsigned/rdflib": u_rl, "signed/rdflib": s_rl}
    r["targets"] = {
        "unsigned >= 1x pyoxigraph": u_ox >= 1, "signed >= 0.5x pyoxigraph": s_ox >= 0.5,
        "unsigned >= 5x rdflib": u_rl >= 5, "signed >= 5x rdflib": s_rl >= 5,
        "mizu peak memory < 300 MB": peak < 300,
    }
    anon_ok = anon is not None and anon < 300
    r["informative"] = {"mizu peak anonymous memory < 300 MB": anon_ok if anon is not None
                        else None}
    section.blocks += [
        Table(["target", "measured", "result"], [
            ["unsigned / pyoxigraph >= 1x", f"{u_ox:.2f}x", _verdict(u_ox >= 1)],
            ["signed / pyoxigraph >= 0.5x", f"{s_ox:.2f}x", _verdict(s_ox >= 0.5)],
            ["unsigned / rdflib >= 5x", f"{u_rl:.2f}x", _verdict(u_rl >= 5)],
            ["signed / rdflib >= 5x", f"{s_rl:.2f}x", _verdict(s_rl >= 5)],
            ["mizu peak memory < 300 MB", f"{peak:,} MB", _verdict(peak < 300)],
            ["mizu peak anonymous memory < 300 MB", f"{_mb(anon)} MB",
             _verdict(anon_ok) if anon is not None else "n/a"],
        ]),
        "the memory target is on total peak RSS (larger of signed and unsigned); the "
        "anonymous-memory line is informative",
    ]
    return section


def _startup_section(r: dict[str, Any]) -> Section:
    targets = {"mizu --help": 150.0, "mizu view CID": 200.0}
    runs = next(iter(r.values()))["runs"]
    rows = []
    for name, x in r.items():
        limit = targets.get(name)
        verdict = f"<= {limit:.0f} ms {_verdict(x['median_ms'] <= limit)}" if limit else "(floor)"
        x["target_ms"], x["pass"] = limit, (x["median_ms"] <= limit) if limit else None
        rows.append([name, f"{x['median_ms']:.1f}", f"{x['min_ms']:.1f}",
                     f"{x['max_ms']:.1f}", verdict])
    return Section("Start-up", f"Start-up: median of {runs} runs",
                   [Table(["command", "median ms", "min", "max", "target"], rows)])


def _native_section(r: dict[str, Any]) -> Section:
    headers, rows = native.table(r)
    return Section("Native code", "Native code: ops/s of each candidate, best of "
                   f"{native.ROUNDS} rounds, and its ratio to what Mizu runs (the first)",
                   [Table(headers, rows)])


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 10:
        return f"{value:.3f}"
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _query_section(r: dict[str, Any]) -> Section:
    d, loads = r["dataset"], r["loads"]
    rl = loads["rdflib"]
    section = Section(
        "Query",
        f"Query: {d['triples']:,} triples in {d['messages']:,} messages ({d['products']:,} "
        f"products, {d['offers']:,} offers, {d['reviews']:,} reviews, {d['producers']:,} "
        f"producers, {d['vendors']:,} vendors; seed {d['seed']}); median of {r['runs']} warm "
        "runs in process")
    rows = []
    for name, x in (("mizu put --lines --no-sign", loads["mizu"]),
                    ("pyoxigraph bulk_load", loads["pyoxigraph"]),
                    ("rdflib Graph.parse nt", rl)):
        cached = "cached (earlier run)" if x.get("cached") else "this run"
        rows.append([name, f"{x['seconds']:.2f}", f"{x['triples']:,}",
                     f"{x['triples'] / x['seconds']:,.0f}", cached])
    section.blocks.append(Table(["load", "seconds", "triples", "triples/s", "when"], rows))
    if rl["sliced"]:
        section.blocks.append(
            f"RDFLIB HOLDS A SLICE: its full parse was projected at {rl['projected_full_s']:.0f} s "
            f"(> {query.RDFLIB_BUDGET_S:.0f} s), so rdflib loaded only the first "
            f"{rl['triples']:,} triples; its times and row counts are over that slice")
    section.blocks.append(
        f"cache: {r['folder']} (kept between runs; --fresh rebuilds it); mizu and pyoxigraph "
        "loads are timed when the cache is built, rdflib (in memory) is parsed on every run")

    rows = []
    for e in r["queries"]:
        m, o, x = e["mizu"], e["pyoxigraph"], e["rdflib"]
        count = o.get("count", m.get("count"))
        if "error" in m:
            check = "MIZU ERROR"
        elif "error" in o:
            check = "pyoxigraph error"
        else:
            check = "ok" if e["counts_match"] else f"MISMATCH mizu {m['count']:,}"
        if not rl["sliced"] and "count" in x and "count" in o and x["count"] != o["count"]:
            check += f"; rdflib {x['count']:,}"
        rdflib_ms = _ms(x.get("median_ms")) + ("*" if x.get("runs") == 1 else "")
        rows.append([e["name"], "n/a" if count is None else f"{count:,}",
                     _ms(m.get("median_ms")), _ms(o.get("median_ms")), rdflib_ms,
                     _ratio(e["mizu_over_pyoxigraph"]), _ratio(e["rdflib_over_mizu"]), check])
    section.blocks.append(Table(["query", "rows", "mizu ms", "pyoxigraph ms", "rdflib ms",
                                 "mizu/pyoxigraph", "rdflib/mizu", "counts"], rows))
    geo = r["geomean"]
    left_out = [e["name"] for e in r["queries"] if not e["counts_match"]]
    section.blocks.append(
        f"geometric mean of mizu/pyoxigraph over {r['geomean_queries']} queries: {_ratio(geo)}"
        + (f" (left out, wrong or no count: {', '.join(left_out)})" if left_out else ""))
    section.blocks += [
        "rows = result count (DESCRIBE and CONSTRUCT: triples), mizu's checked against "
        "pyoxigraph's; times are the median of warm runs of the whole call "
        f"({r['runs']} rounds; {r['runs'] * query.FAST_ROUNDS} for queries whose first runs "
        f"all took under {query.FAST_S * 1000:.0f} ms, each timed run after an untimed one, "
        "since the other systems' runs in between empty the CPU caches): mizu "
        "`list(repo.query(json_rql))` on an open Repository, pyoxigraph "
        "`list(store.query(sparql))`, rdflib `list(graph.query(sparql))` (parse included, "
        "rdflib in its own process with its graph frozen out of the garbage collector); "
        "the runs interleave, one of each system per round, and all three run on the same "
        "core, so drift in the machine's speed during the run, or steal on one virtual "
        "core, slows all three alike",
    ]
    if any(e["rdflib"].get("runs") == 1 for e in r["queries"]):
        section.blocks.append(f"* rdflib ran once: its first run took more than "
                              f"{query.RDFLIB_QUERY_BUDGET_S:.0f} s")
    for e in r["queries"]:
        for system in ("mizu", "pyoxigraph", "rdflib"):
            if "error" in e[system]:
                section.blocks.append(f"{system} raised on {e['name']}: {e[system]['error']}")
    section.blocks.append(Table(["query", "what"], [[e["name"], e["what"]] for e in r["queries"]]))

    cli = r["cli_point"]
    targets = r["targets"]
    point = [e for e in r["queries"] if e["point"]]
    point_ms = max((e["mizu"].get("median_ms", math.inf) for e in point), default=None)
    worst = min((e["rdflib_over_mizu"] for e in r["queries"] if e["rdflib_over_mizu"]),
                default=None)
    section.blocks.append(Table(["target", "measured", "result"], [
        ["geomean mizu/pyoxigraph <= 3x", _ratio(geo),
         _verdict(targets["geomean mizu/pyoxigraph <= 3x"])],
        ["point lookup < 1 ms in process", f"{_ms(point_ms)} ms",
         _verdict(targets["point lookup < 1 ms in process"])],
        ["every query >= 10x faster than rdflib", f"slowest {_ratio(worst)}",
         _verdict(targets["every query >= 10x faster than rdflib"])],
        ["cold CLI point lookup <= 300 ms",
         f"{_ms(cli.get('median_ms'))} ms" if "median_ms" in cli else "error",
         _verdict(targets["cold CLI point lookup <= 300 ms"])],
        ["every mizu count agrees with pyoxigraph",
         f"{sum(e['counts_match'] for e in r['queries'])}/{len(r['queries'])}",
         _verdict(targets["every mizu count agrees with pyoxigraph"])],
    ]))
    if "median_ms" in cli:
        section.blocks.append(
            f"cold CLI: `mizu query '<point lookup>'` as a fresh process in the repository, "
            f"JSON to a pipe: median {_ms(cli['median_ms'])} ms (min {_ms(cli['min_ms'])}, "
            f"max {_ms(cli['max_ms'])}) over {cli['runs']} runs after one warm-up")
    else:
        section.blocks.append(f"cold CLI point lookup failed: {cli['error']}")
    for name, prof in r["profiles"].items():
        section.blocks.append(Table(
            [f"mizu cProfile {name}: top 10 by cumulative (typer/click frames left out)",
             "calls", "tottime s", "cumtime s"],
            [[f, f"{n:,}", f"{tt:.4f}", f"{ct:.4f}"] for f, n, tt, ct in prof["cumulative"]]))
        section.blocks.append(f"{name}, top 5 by own time: " + "; ".join(
            f"{f} {tt:.4f} s ({n:,} calls)" for f, n, tt, _ in prof["tottime"][:5]))
    return section


def _files_section(r: dict[str, Any]) -> Section:
    large, site, backup = r["large"], r["site"], r["backup"]
    add, cat, sha = large["mizu_add"], large["mizu_cat"], large["sha256sum"]
    checks = large["checks"]
    section = Section(
        "Files",
        f"Files: a {files._size_label(large['bytes'])} file of random bytes, page cache warm "
        f"(mizu add CIDv1 equals ipfs_cid's: {checks['cids_match']}, "
        f"mizu cat gives the same bytes: {checks['cat_bytes_match']})")
    if not checks["cids_match"]:
        section.blocks.append(
            f"CID MISMATCH: mizu add -Q gave {large['root']}, ipfs_cid's CIDv1 is "
            f"{large['ipfs_cid'].get('CIDv1')}")
    if not checks["cat_bytes_match"]:
        section.blocks.append(f"BYTES MISMATCH: mizu cat {large['root']} does not give back "
                              "the file")
    rows = []
    for name, x in (("sha256sum FILE", sha), ("ipfs_cid FILE", large["ipfs_cid_tool"]),
                    ("mizu add -Q FILE", add), ("mizu cat ROOT > /dev/null", cat)):
        rows.append([name, f"{x['seconds']:.2f}", f"{x['mb_per_s']:,.0f}",
                     _mb(x["peak_rss_mb"]), _mb(x["peak_anon_mb"]), _mb(x["peak_file_mb"])])
    section.blocks += [
        Table(["command", "seconds", "MB/s", "peak RSS MB", "anon MB", "file MB"], rows),
        "each command is a whole child process (start-up included); mizu add runs in a fresh "
        "repository; MB/s counts 10^6 bytes of the file; peak RSS is ru_maxrss, anon MB = peak "
        "RssAnon, file MB = peak RssFile+RssShmem, sampled from /proc/PID/status every "
        f"{ingest.SAMPLE_S * 1000:.0f} ms",
        "Linux counts a child's memory before exec (its spawner's) in ru_maxrss, so every "
        "child here is spawned by a small helper process; its own peak, "
        f"{r['helper_peak_rss_mb']:,} MB, is the floor of the peak RSS column",
        f"tools: {r['tools']['sha256sum']}; {r['tools']['ipfs_cid']}",
    ]

    first, rerun = backup["first"], backup["rerun"]
    rows = []
    for name, x in (("first run (fresh repository)", first), ("unchanged re-run", rerun)):
        rows.append([name, f"{x['seconds']:.2f}", f"{x['files_per_s']:,.0f}",
                     f"{x['mb_per_s']:,.1f}", "n/a" if x["pages"] is None else f"{x['pages']:,}",
                     "n/a" if x["new_file_blocks"] is None else f"{x['new_file_blocks']:,}",
                     _mb(x["peak_rss_mb"]), _mb(x["peak_anon_mb"]), _mb(x["peak_file_mb"])])
    section.blocks += [
        f"mizu backup SITE: {site['files']:,} files, {site['bytes'] / files.MB:,.0f} MB in "
        f"{site['folders']:,} folders up to {site['depth']} deep (median file "
        f"{site['median_bytes']:,} bytes, largest {site['max_bytes']:,}, "
        f"{site['over_one_chunk']:,} over one 256 KiB chunk; random bytes, seed {site['seed']})",
        Table(["mizu backup SITE", "seconds", "files/s", "MB/s", "pages", "new file blocks",
               "peak RSS MB", "anon MB", "file MB"], rows),
    ]
    if rerun["new_file_blocks"] != 0:
        section.blocks.append(
            f"RE-RUN STORED NEW BLOCKS: the unchanged re-run printed "
            f"{'no block count' if rerun['new_file_blocks'] is None else rerun['new_file_blocks']}"
            ", not \"0 new file blocks\"")

    ratio, speedup = r["add_over_sha256sum"], backup["speedup"]
    peak = max(add["peak_rss_mb"], cat["peak_rss_mb"])
    anons = [x["peak_anon_mb"] for x in (add, cat) if x["peak_anon_mb"] is not None]
    anon = max(anons) if len(anons) == 2 else None
    r["targets"] = {
        "add >= 50% of sha256sum MB/s": ratio >= 0.5, "cat >= 200 MB/s": cat["mb_per_s"] >= 200,
        "mizu peak memory < 200 MB": peak < 200,
        "backup re-run >= 5x faster than the first run": speedup >= 5,
        "backup re-run stores 0 new file blocks": rerun["new_file_blocks"] == 0,
    }
    r["informative"] = {"mizu peak anonymous memory < 200 MB": anon < 200 if anon is not None
                        else None}
    section.blocks += [
        Table(["target", "measured", "result"], [
            ["mizu add >= 50% of sha256sum MB/s",
             f"{add['mb_per_s']:,.0f} MB/s = {ratio:.0%}",
             _verdict(r["targets"]["add >= 50% of sha256sum MB/s"])],
            ["mizu cat >= 200 MB/s", f"{cat['mb_per_s']:,.0f} MB/s",
             _verdict(r["targets"]["cat >= 200 MB/s"])],
            ["mizu peak memory < 200 MB", f"{peak:,} MB",
             _verdict(r["targets"]["mizu peak memory < 200 MB"])],
            ["mizu peak anonymous memory < 200 MB", f"{_mb(anon)} MB",
             _verdict(anon < 200) if anon is not None else "n/a"],
            ["backup re-run >= 5x faster than first", f"{speedup:.1f}x",
             _verdict(r["targets"]["backup re-run >= 5x faster than the first run"])],
            ["backup re-run: 0 new file blocks",
             "n/a" if rerun["new_file_blocks"] is None else f"{rerun['new_file_blocks']:,}",
             _verdict(r["targets"]["backup re-run stores 0 new file blocks"])],
        ]),
        "the memory target is judged on total peak RSS (ru_maxrss, the larger of mizu add "
        "and mizu cat), mapped store pages included; the anonymous-memory line is informative",
    ]
    for name, prof in r["profiles"].items():
        section.blocks.append(Table(
            [f"mizu cProfile {name}: top 10 by cumulative (typer/click frames left out)",
             "calls", "tottime s", "cumtime s"],
            [[f, f"{n:,}", f"{tt:.4f}", f"{ct:.4f}"] for f, n, tt, ct in prof["cumulative"]]))
        section.blocks.append(f"{name}, top 5 by own time: " + "; ".join(
            f"{f} {tt:.4f} s ({n:,} calls)" for f, n, tt, _ in prof["tottime"][:5]))
    return section


def _sync_section(r: dict[str, Any]) -> Section:
    full, one, big, orbit = r["initial"], r["incremental"], r["large_pull"], r["orbitdb"]
    wire = full["bytes_received"] + full["bytes_sent"]
    rate_ok = full["messages_per_s"] >= sync.TARGET_RATE
    share_ok = one["bytes_share"] <= sync.TARGET_BYTES_SHARE
    time_ok = one["exchange_seconds"] <= sync.TARGET_INCREMENTAL_S
    rows = [
        [f"initial pull, {r['messages']:,} messages", f"{full['messages_per_s']:,.0f} msg/s",
         f"{wire / 1e6:.1f} MB", f"{full['peak_rss_mb']} MB",
         f">= {sync.TARGET_RATE:,} msg/s {_verdict(rate_ok)}"],
        [f"full pull, {r['large']:,} records", f"{big['records'] / big['exchange_seconds']:,.0f} msg/s",
         f"{big['bytes_received'] / 1e6:.1f} MB", f"{big['peak_rss_mb']} MB", ""],
        [f"incremental pull, 1 record into {r['large']:,}",
         f"{one['exchange_seconds'] * 1000:.0f} ms after connect",
         f"{one['bytes_received']:,} B ({one['bytes_share']:.3%})", f"{one['peak_rss_mb']} MB",
         f"<= 1% {_verdict(share_ok)}, <= 500 ms {_verdict(time_ok)}"],
    ]
    if "error" in orbit:
        note = f"OrbitDB could not run here: {orbit['error']}"
    else:
        note = (f"OrbitDB (@orbitdb/core, Helia) replicating {orbit.get('entries', r['messages']):,} "
                f"entries on loopback: {orbit['replicate_per_s']:,.0f} entries/s; Mizu's initial "
                f"pull is {r['ratio_vs_orbitdb']:.1f}x that rate")
    section = Section("Sync", f"Sync over libp2p on 127.0.0.1 (blocks {one['blocks']}, tree "
                      f"nodes {one['nodes']} for the incremental pull)",
                      [Table(["pull", "rate / time", "bytes", "peak RSS", "target"], rows), note])
    pairs = r.get("pull_vs_import")
    if pairs:
        section.blocks += _pull_vs_import(r, pairs)
    return section


def _pull_vs_import(r: dict[str, Any], pairs: list[dict[str, Any]]) -> list[Table | str]:
    """Issue 23 item 5: each initial pull beside `mizu import` of a CAR of the same records."""
    rows = []
    for x in pairs:
        imp = x["import"]
        rows.append([f"{x['records']:,} records", f"{x['pull_per_s']:,.0f}",
                     f"{x['pull_in_process_per_s']:,.0f}", f"{x.get('pull_exchange_per_s', 0):,.0f}",
                     f"{imp['messages_per_s']:,.0f}",
                     f"{x['ratio']:.2f}x", f"{x['pull_wall_s']:.2f} / {imp['wall_s']:.2f}",
                     f"{x['pull_peak_rss_mb']:,} MB (anon {_mb(x['pull_peak_anon_mb'])})",
                     f"{imp['peak_rss_mb']:,} MB (anon {_mb(imp['peak_anon_mb'])})"])
    small = min(pairs, key=lambda x: x["records"])
    big = max(pairs, key=lambda x: x["records"])
    checks: list[tuple[str, str, bool]] = [
        (f"pull >= {sync.TARGET_PULL_OVER_IMPORT}x import, {x['records']:,}", f"{x['ratio']:.2f}x",
         x["ratio"] >= sync.TARGET_PULL_OVER_IMPORT) for x in pairs]
    checks += [
        (f"pull >= {sync.TARGET_PULL_RATE:,} msg/s, {small['records']:,}",
         f"{small['pull_per_s']:,.0f} msg/s", small["pull_per_s"] >= sync.TARGET_PULL_RATE),
        (f"pull peak RSS < {sync.TARGET_PULL_RSS_MB} MB, {big['records']:,}",
         f"{big['pull_peak_rss_mb']:,} MB", big["pull_peak_rss_mb"] < sync.TARGET_PULL_RSS_MB),
    ]
    r["targets"] = {name: ok for name, _, ok in checks}
    return [
        Table(["pull against import", "pull msg/s", "pull msg/s, own s", "pull msg/s, exchange",
               "import msg/s", "pull/import",
               "seconds pull / import", "pull peak RSS", "import peak RSS"], rows),
        "pull against import: the initial pulls above, and `mizu --json import FEED.car` into "
        "a fresh repository of a CAR of the same feed (`mizu export --car --subscription`, from "
        "the publisher, not timed; the import checks every block's hash and every signature, "
        "and stores all, with no network and no serve running); pull msg/s and import msg/s "
        "are records over the whole process's wall time (start-up included, for the pull also "
        "connecting and libp2p's import), by the same clock; own s = records over the "
        "pull's own `seconds` (node start, connecting and the exchange; no interpreter start-up "
        "or imports), as the first row above; exchange = records over `exchange_seconds` (after "
        "connecting: what the transfer itself took); the import counts the query message too (one more); "
        "peak RSS is ru_maxrss of each process (the target is on it), anon its sampled peak "
        "RssAnon: the rest is mostly the mapped LMDB store",
        Table(["target (issue 23, item 5)", "measured", "result"],
              [[name, measured, _verdict(ok)] for name, measured, ok in checks]),
        "the incremental targets (one new record: <= 1% of the bytes, <= 500 ms) are in the "
        "first table",
    ]


def _gateway_section(r: dict[str, Any]) -> Section:
    load, stream, watch = r["load"], r["stream"], r["watch"]
    floor = load["runs"]["floor: hello world"]
    rows = []
    for connections in load["connections"]:
        for name, runs in load["runs"].items():
            x = runs[connections]
            errors = x["non2xx"] + x["socket_errors"]
            spread = x["rounds_ok_per_s"]
            rows.append([name, f"{connections}", f"{x['ok_per_s']:,.0f}",
                         f"{min(spread):,.0f}-{max(spread):,.0f}",
                         "(floor)" if runs is floor else _ratio(r["ratios"][name][connections]),
                         _ms(x["p50_ms"]), _ms(x["p99_ms"]), f"{errors:,}" if errors else "",
                         f"{x['server_cores']:.2f}",
                         f"{x['server_cores'] * x['seconds'] / max(x['requests'], 1) * 1000:.2f}"])
    wrk_cores = max(x["wrk_cores"] for runs in load["runs"].values() for x in runs.values())
    section = Section(
        "Gateway",
        f"Gateway: `mizu serve --offline --http` on 127.0.0.1 under wrk (1 thread), "
        f"median of {load['rounds']} runs of {load['seconds']} s, {r['messages']:,} signed messages",
        [Table(["URL", "connections", "req/s", "rounds' range", "/ floor", "p50 ms", "p99 ms", "non-2xx",
                "server cores", "CPU ms/req"], rows)])
    section.blocks += [
        "req/s counts 2xx answers only (a 503 from gateway.max-queries is quick and would "
        "flatter the rate), the median of the rounds (their range beside it), and p50, p99, "
        "non-2xx and cores are that median run's; / floor is the median of each round's "
        "ratio (the URL's run over the floor's run just before it, at the same connection "
        "count), so it need not equal the ratio of the medians; p50 and p99 are wrk's, over "
        "every answer; non-2xx are those 503s (and any socket errors); server cores = CPU seconds of the "
        "server process (all its threads) over the run's wall time, CPU ms/req the same CPU "
        "over the answers (503s included): on a machine others share, the steadier figure",
        f"the load generator (wrk, one thread) and the server share the machine's "
        f"{r['cores']} cores, on 127.0.0.1 (wrk used at most "
        f"{wrk_cores:.2f} of a core); each run follows the floor's at the same connection "
        "count in each round, so the ratios are side by side; one untimed warm-up run per URL "
        "first",
        "floor: Starlette's hello world (one route, a 13-byte text) on Hypercorn's trio worker "
        "in its own process, served with the same Hypercorn config as mizu_gateway/server.py; "
        "view-raw: /v0/view-raw/CID of a post ("
        f"{load['answer_bytes']['view-raw']:,} bytes); raw block: /ipfs/CID?format=raw of the "
        f"same post ({load['answer_bytes']['raw block']:,} bytes); stored query: "
        f"/v0/query/STREAM/queries/by?who=a7 ($var who; {gateway.MESSAGES // gateway.AUTHORS} "
        f"rows, {load['answer_bytes']['stored query']:,} bytes); SPARQL point: GET "
        f"/v0/sparql?query= `{gateway.SPARQL_POINT}` (one row)",
        Table(["streamed from /ipfs/CID", "seconds", "MB/s", "peak RSS MB", "anon MB", "file MB"],
              [[f"{stream['bytes'] / 2**20:,.0f} MiB file, random bytes", f"{stream['seconds']:.2f}",
                f"{stream['mb_per_s']:,.0f}", _mb(stream["peak_rss_mb"]), _mb(stream["peak_anon_mb"]),
                _mb(stream["peak_file_mb"])]]),
        "fetched by curl (to /dev/null) from a fresh gateway; MB/s counts 10^6 bytes; peak RSS "
        f"is the gateway's VmHWM (start-up included: {stream['start_rss_mb']} MB before the "
        "fetch), anon and file its sampled peaks of RssAnon and RssFile+RssShmem",
        f"{watch['watchers']} live watchers (`Accept: text/event-stream` on the stored query, "
        f"one connection each) on a fresh gateway: all had their first event in "
        f"{watch['open_s'] * 1000:,.0f} ms; VmRSS {watch['before_rss_mb']:.1f} MB before, "
        f"{watch['after_rss_mb']:.1f} MB after (+{watch['added_mb']:.1f} MB, anonymous "
        f"+{watch['added_anon_mb']:.1f} MB); one record published (POST /v0/publish, "
        f"{watch['publish_s'] * 1000:,.0f} ms) reached all {watch['watchers']} in "
        f"{watch['all_notified_s'] * 1000:,.0f} ms from the publish request",
    ]
    checks = [(f"{name} >= {gateway.TARGET_FLOOR_SHARE:.0%} of floor, {c} conn.",
               _ratio(r["ratios"][name][c]), r["ratios"][name][c] >= gateway.TARGET_FLOOR_SHARE)
              for name in ("view-raw", "raw block") for c in load["connections"]]
    checks += [
        (f"stream from /ipfs >= {gateway.TARGET_STREAM_MB_S} MB/s", f"{stream['mb_per_s']:,.0f} MB/s",
         stream["mb_per_s"] >= gateway.TARGET_STREAM_MB_S),
        (f"stream peak RSS < {gateway.TARGET_STREAM_RSS_MB} MB", f"{stream['peak_rss_mb']:,} MB",
         stream["peak_rss_mb"] < gateway.TARGET_STREAM_RSS_MB),
        (f"{watch['watchers']} watchers < {gateway.TARGET_WATCHERS_MB} MB",
         f"{watch['added_mb']:.1f} MB", watch["added_mb"] < gateway.TARGET_WATCHERS_MB),
    ]
    section.blocks.append(Table(["target (issue 24)", "measured", "result"],
                                [[name, measured, _verdict(ok)] for name, measured, ok in checks]))
    if stream["bytes"] != 1 << 30:
        section.blocks.append(f"the streamed file was {stream['bytes'] / 2**20:,.0f} MiB, not the "
                              "1 GiB the target names (--gateway-file-size)")
    return section


def _pullers_section(r: dict[str, Any]) -> Section:
    """Issue 23 item 6: one node, many pullers."""
    def row(name: str, w: dict[str, Any]) -> list[str]:
        return [name, f"{w['ok']}/{w['pullers']}", f"{w['records']:,}", f"{w['wall_s']:.1f}",
                f"{w['slowest_s']:.1f}", f"{w['summed_per_s']:,.0f}", f"{w['wave_per_s']:,.0f}"]

    rows = [row(f"first pulls, {r['messages']:,} records each", r["first"])]
    rows += [row(f"incremental wave {i + 1}, {r['added']:,} new records", w)
             for i, w in enumerate(r["incremental"])]
    serve, stalled = r["serve"], r["stalled"]
    waves = [r["first"], *r["incremental"]]
    verified = all(w["ok"] == w["pullers"] for w in waves)
    rss_ok = serve["peak_rss_mb"] < pullers.TARGET_RSS_MB
    dropped = "dropped_after_s" in stalled
    checks = [
        [f"every puller exits 0 holding exactly the feed ({len(waves)} waves)",
         "all" if verified else f"{sum(w['pullers'] - w['ok'] for w in waves)} pulls failed, first: "
         + next(f for w in waves for f in w["failures"])[:150], _verdict(verified)],
        [f"serve peak RSS < {pullers.TARGET_RSS_MB} MB", f"{serve['peak_rss_mb']} MB (anon {_mb(serve['peak_anon_mb'])})",
         _verdict(rss_ok)],
        ["a peer that stops reading is dropped",
         f"after {stalled['dropped_after_s']:.1f} s" if dropped else stalled.get("error", "?"), _verdict(dropped)],
    ]
    r["targets"] = {name: ok == "PASS" for name, _, ok in checks}
    return Section("Many pullers", f"One node, many pullers: {r['pullers']} `mizu pull` processes at once "
                   f"against one `mizu serve` holding {r['messages']:,} signed records", [
        Table(["wave", "verified", "records", "wall s", "slowest s", "msg/s summed", "msg/s wave"], rows),
        "wall s: first puller started to last exited; msg/s summed: each puller's records over its "
        "own process wall time (interpreter start-up and libp2p's import included), added up; "
        "msg/s wave: all records over the wave's wall time; verified: exit 0, and the puller's "
        "subscription root equal to the publisher's (the same record set) with the same count; "
        f"each pull ran with --timeout {pullers.TIMEOUT} (serve's own wait, not pull's default 5 s): "
        "the pullers run on serve's cores, and 50 interpreters starting at once starve it",
        Table(["target (issue 23, item 6)", "measured", "result"], checks),
        f"serve's peak RSS is its VmHWM after the last wave; anon its sampled peak RssAnon; the "
        f"stalled peer (tests/e2e/hostile_peer.py stall) asks for blocks on 2 streams and stops "
        f"reading its connection; serve logged: {stalled.get('line', 'nothing')}",
    ])


def _text(sections: list[Section]) -> str:
    lines: list[str] = []
    for section in sections:
        lines.append(section.intro)
        for block in section.blocks:
            if isinstance(block, str):
                lines.append(f"  note: {block}")
                continue
            cols = list(zip(block.headers, *block.rows, strict=True))
            widths = [max(len(c) for c in col) for col in cols]
            for row in (block.headers, *block.rows):
                cells = [c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))]
                lines.append("  " + "  ".join(cells).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip()


def _markdown_table(table: Table) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rule = ["---"] + ["---:"] * (len(table.headers) - 1)
    return [row(table.headers), "| " + " | ".join(rule) + " |", *map(row, table.rows)]


# --- machine facts and load -----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, check=True,
                               capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}, with uncommitted changes" if dirty else head


def _machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": mem_kb / 2**20,
            "os": platform.platform(), "python": platform.python_version(),
            "pyoxigraph": _version("pyoxigraph"), "rdflib": _version("rdflib"),
            "mizu": _version("mizu"), "git": _git()}


def _cpu_seconds() -> tuple[float, float, float]:
    """(machine-wide busy CPU s, hypervisor steal s, this process and its reaped children)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    hz = os.sysconf("SC_CLK_TCK")
    ours = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))
    return (user + nice + system + irq + softirq) / hz, steal / hz, ours


def _load(before: tuple[float, float, float], wall: float) -> dict[str, Any]:
    after = _cpu_seconds()
    other = max(0.0, (after[0] - before[0]) - (after[2] - before[2]))
    return {"wall_s": wall, "other_cpu_s": other, "other_cores": other / wall,
            "steal_s": after[1] - before[1], "busy": other / wall > BUSY_CORES,
            "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


def _load_line(load: dict[str, Any], cores: int | None) -> str:
    line = (f"other processes (kernel threads included) used {load['other_cpu_s']:.1f} CPU s "
            f"during the {load['wall_s']:.0f} s run: {load['other_cores']:.2f} of {cores} "
            f"cores on average; hypervisor steal {load['steal_s']:.1f} s")
    if load["busy"]:
        line += " -- the machine was busy, so the numbers may be pessimistic"
    return line


def _command() -> str:
    exe = Path(sys.executable)
    cwd = Path.cwd()
    if exe.is_relative_to(cwd):
        exe = exe.relative_to(cwd)
    argv = shlex.join([str(exe), *sys.argv])
    return argv if cwd == ROOT else f"cd {shlex.quote(str(cwd))} && {argv}"


def _markdown(results: dict[str, Any], sections: list[Section]) -> str:
    m, load = results["machine"], results["load"]
    lines = [
        "# Mizu benchmark results",
        "",
        "Written by `bench/run.py` from its last full run; re-run it to update this file "
        "(raw numbers go to `bench/results/latest.json`, which is not committed).",
        "",
        f"- **Date**: {results['date']}",
        f"- **CPU**: {m['cpu']}, {m['cores']} cores (logical CPUs), "
        f"{m['memory_gib']:.1f} GiB RAM",
        f"- **OS**: {m['os']}",
        f"- **Python** {m['python']}, **pyoxigraph** {m['pyoxigraph']}, "
        f"**rdflib** {m['rdflib']}, **mizu** {m['mizu']} (git {m['git']})",
        f"- **Load**: {_load_line(load, m['cores'])}",
        "- **Command** (from the repository root unless it says otherwise):",
        "",
        "  ```sh",
        f"  {results['command']}",
        "  ```",
        "",
        "## How to run",
        "",
        "`pip install -e '.[bench]'` (pyoxigraph, rdflib, psutil), then "
        "`.venv/bin/python bench/run.py` from the repository root runs every benchmark and "
        "rewrites this file; `--only ingest,query` (any of ingest, startup, query, files, sync, "
        "pullers, gateway) runs those (this file is then written only with `--markdown PATH`), and "
        "`--help` lists the sizes and run counts. The sync benchmark needs Node.js and npm for "
        "its OrbitDB comparison (`bench/anchors/orbitdb/`); the files benchmark, `ipfs_cid`; the gateway benchmark, "
        "`wrk` and `curl` (it runs `apt-get install -y wrk` if wrk is absent).",
        "",
        "## How to read this",
        "",
        "Ratios are measured side by side in the same run, never against an earlier run's "
        "figure: a virtual machine's speed drifts, by up to 2x within minutes on the one "
        "these figures come from, and not every program alike. Earlier runs and what they "
        "showed are in `docs/performance.md`.",
        "",
        "Mizu's ingest time is the wall time of the whole `mizu --json put --lines FILE` "
        "process: interpreter start-up, then JSON parsing, validation, encoding, hashing (CID) "
        "and, when signed, signing of every message, before its triples are indexed. The "
        "references (pyoxigraph `Store.bulk_load`, rdflib `Graph.parse`) are timed around the "
        "load call only and load an N-Triples file already produced from the same messages "
        "(the same triples as unsigned Mizu). Signed messages carry 3 more triples each "
        "(their `$signatures` node), counted in Mizu's triples/s. Each system runs in its own "
        "child process. *Peak RSS* is the child's `ru_maxrss`: all resident memory. It splits "
        "into *anonymous* memory (`RssAnon`: the process's own heap, stacks and private "
        "allocations, which cannot be given back without freeing them) and *file-backed* "
        "memory (`RssFile + RssShmem`: pages of mapped files and shared memory; for Mizu "
        "mostly its memory-mapped LMDB store, page cache the kernel can drop and re-read "
        f"under memory pressure). Those two peaks are sampled every "
        f"{ingest.SAMPLE_S * 1000:.0f} ms from `/proc/PID/status` and need not occur at the "
        "same moment, so they need not add up to the peak RSS. The memory target is on peak "
        "RSS; the anonymous-memory line is informative.",
    ]
    for section in sections:
        lines += ["", f"## {section.title}", "", section.intro, ""]
        notes: list[str] = []
        for block in section.blocks:
            if isinstance(block, str):
                notes.append(f"- {block[0].upper()}{block[1:]}.")
                continue
            if notes:
                lines += [*notes, ""]
                notes = []
            lines += [*_markdown_table(block), ""]
        lines += notes
    return "\n".join(lines).rstrip() + "\n"


BENCHMARKS = ("ingest", "startup", "query", "files", "sync", "pullers", "gateway", "native")
FULL_RUN = BENCHMARKS[:-1]  # native measures the C, not the product


def _benchmarks(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown benchmark {', '.join(unknown) or text!r}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="messages to ingest")
    parser.add_argument("--only", type=_benchmarks, metavar="NAME[,NAME…]",
                        help=f"run these benchmarks only (of {', '.join(BENCHMARKS)}; native "
                             "runs only when named)")
    parser.add_argument("--sync-messages", type=int, default=10_000,
                        help="sync benchmark: messages in the initial pull")
    parser.add_argument("--sync-large", type=int, default=100_000,
                        help="sync benchmark: records in the subscription for the incremental pull")
    parser.add_argument("--gateway-seconds", type=int, default=gateway.SECONDS,
                        help="gateway benchmark: seconds of each wrk run (default: %(default)s)")
    parser.add_argument("--gateway-rounds", type=int, default=gateway.ROUNDS,
                        help="gateway benchmark: wrk runs per URL and connection count, the "
                             "median kept (default: %(default)s)")
    parser.add_argument("--gateway-file-size", type=files.parse_size, default=gateway.FILE_SIZE,
                        metavar="SIZE", help="gateway benchmark: size of the file streamed from "
                                             "/ipfs, in bytes or with K/M/G (default: 1G)")
    parser.add_argument("--pullers", type=int, default=50,
                        help="pullers benchmark: concurrent `mizu pull` processes")
    parser.add_argument("--pullers-messages", type=int, default=10_000,
                        help="pullers benchmark: records in the feed they pull")
    parser.add_argument("--runs", type=int, default=15, help="start-up runs per command (>= 10)")
    parser.add_argument("--triples", type=int, default=1_000_000,
                        help="query benchmark: approximate size of the data set")
    parser.add_argument("--seed", type=int, default=query.SEED,
                        help="query benchmark: data generator seed")
    parser.add_argument("--query-runs", type=int, default=5,
                        help="query benchmark: warm runs per query and system (>= 5)")
    parser.add_argument("--fresh", action="store_true",
                        help="query benchmark: delete the cached data and stores, rebuild them")
    parser.add_argument("--cache", type=Path, default=query.CACHE,
                        help="query benchmark: cache folder (default: %(default)s)")
    parser.add_argument("--profile", choices=("slow", "all", "none"), default="slow",
                        help="query benchmark: cProfile the queries where mizu misses a "
                             "target (slow), every query, or none; files benchmark: profile "
                             "mizu add and the backup re-run when a throughput target is "
                             "missed (slow), always (all), or never (none)")
    parser.add_argument("--files-size", type=files.parse_size, default=files.SIZE,
                        metavar="SIZE",
                        help="files benchmark: size of the random file, in bytes or with "
                             "K/M/G (binary) (default: 1G)")
    parser.add_argument("--markdown", type=Path, metavar="PATH",
                        help=f"Markdown report (default: {MARKDOWN.relative_to(ROOT)} after "
                             "a full run, none with --only)")
    args = parser.parse_args()
    # Time mizu as pip installs it, byte-compiled (an editable install is not, and where
    # PYTHONDONTWRITEBYTECODE is set every start-up would compile it again).
    for package in ("mizu_core", "mizu_cli", "mizu_gateway"):
        if not compileall.compile_dir(ROOT / package, quiet=1):
            sys.exit(f"cannot byte-compile {package} (see above)")

    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "command": _command(), "python": platform.python_version(),
                               "machine": _machine()}
    before, t0 = _cpu_seconds(), time.perf_counter()
    sections: list[Section] = []
    chosen = args.only or FULL_RUN
    if "ingest" in chosen:
        results["ingest"] = ingest.run(args.messages)
        sections.append(_ingest_section(results["ingest"]))
    if "startup" in chosen:
        results["startup"] = startup.run(max(10, args.runs))
        sections.append(_startup_section(results["startup"]))
    if "query" in chosen:
        results["query"] = query.run(args.triples, args.seed, args.query_runs, args.cache,
                                     args.fresh, args.profile)
        sections.append(_query_section(results["query"]))
    if "files" in chosen:
        results["files"] = files.run(args.files_size, args.profile)
        sections.append(_files_section(results["files"]))
    if "sync" in chosen:
        results["sync"] = sync.run(args.sync_messages, args.sync_large)
        sections.append(_sync_section(results["sync"]))
    if "gateway" in chosen:
        results["gateway"] = gateway.run(args.gateway_seconds, args.gateway_file_size, args.gateway_rounds)
        sections.append(_gateway_section(results["gateway"]))
    if "pullers" in chosen:
        results["pullers"] = pullers.run(args.pullers_messages, args.pullers)
        sections.append(_pullers_section(results["pullers"]))
    if "native" in chosen:
        results["native"] = native.run()
        sections.append(_native_section(results["native"]))
    results["load"] = _load(before, time.perf_counter() - t0)

    print(_text(sections))
    print(f"\nLoad: {_load_line(results['load'], results['machine']['cores'])}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = args.markdown or (MARKDOWN if args.only is None else None)
    if markdown:
        markdown.write_text(_markdown(results, sections))
        print(f"Wrote {markdown}")


if __name__ == "__main__":
    main()
