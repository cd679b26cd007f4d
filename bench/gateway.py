"""Gateway benchmark (issue 24): `mizu serve --offline --http` under load, beside the floor.

1. Requests/s and p50/p99 latency with `wrk` (Debian's; installed with apt-get if absent)
   at 1, 10 and 50 connections for `/v0/view-raw/<cid>`, `/ipfs/<cid>?format=raw`, a stored
   query with a `$var`, a SPARQL point query, and the floor: a hello-world route on the same
   stack (Starlette on Hypercorn's trio worker, the same Hypercorn config as
   mizu_gateway/server.py) in its own process. The runs interleave, floor first, at each
   connection count, so drift in the machine's speed hits all alike; ROUNDS rounds, the
   median kept, and the ratio to the floor is the median of each round's ratio. Targets:
   view-raw and raw blocks >= 50% of the floor's requests/s at the same connection count.
2. A 1 GiB file of random bytes (`mizu add`) fetched from `/ipfs/<cid>` by curl from a
   fresh gateway: MB/s and the gateway's peak RSS (VmHWM). Targets >= 200 MB/s, < 300 MB.
3. 50 live watchers (`Accept: text/event-stream` on the stored query) on a fresh gateway:
   its VmRSS before and after they all have their first event (target: < 50 MB more), then
   the time from publishing one record that changes their rows until all 50 have it.

Everything is on 127.0.0.1; wrk (one thread) and the server share the machine's cores.
Run as a script for this benchmark alone:
`python bench/gateway.py [--seconds S] [--rounds R] [--file-size SIZE]` (JSON on stdout).
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ingest import _MemorySampler

MIZU = str(Path(sys.executable).parent / "mizu")
CONNECTIONS = (1, 10, 50)
SECONDS = 3  # wrk's duration for every measured run
ROUNDS = 5  # measured runs of each URL at each connection count (the median is kept)
WARMUP_S = 1  # one untimed wrk run per URL before its first measured one
MESSAGES = 3000
AUTHORS = 100  # the stored query's $var picks one: MESSAGES / AUTHORS rows
FILE_SIZE = 1 << 30
WATCHERS = 50
TARGET_FLOOR_SHARE = 0.5
TARGET_STREAM_MB_S = 200
TARGET_STREAM_RSS_MB = 300
TARGET_WATCHERS_MB = 50
SSE_TIMEOUT_S = 60.0

# The floor: Starlette's hello world on Hypercorn-trio, served exactly as
# mizu_gateway/server.py serves the gateway (Config() defaults, no access log, the
# sockets made and listened on by hand, worker_serve, wrap_app), without Mizu's Guard
# and routes. It prints its URL, as `mizu serve` does, and runs until SIGTERM.
FLOOR = r"""
import sys, trio
from functools import partial
from hypercorn.config import Config
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("hello, world\n")

async def main():
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    sockets = config.create_sockets()
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
    app = wrap_app(Starlette(routes=[Route("/", hello)]), config.wsgi_max_body_size, None)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(partial(worker_serve, app, config, sockets=sockets,
                                            shutdown_trigger=trio.Event().wait))
        print(bound[0].rstrip("/") + "/", flush=True)

trio.run(main)
"""

STREAM = {"name": "bench", "queries": {
    "by": {"@select": ["?m", "?title"], "@where": {"@id": "?m", "author": {"$var": "who"}, "title": "?title"}}}}
SPARQL_POINT = "PREFIX m: <https://mizu.stream/> SELECT ?title WHERE { ?m m:n 1234 ; m:title ?title }"


# --- the repository and the servers ---------------------------------------------------------


def _mizu(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    out = subprocess.run([MIZU, *args], cwd=repo, input=stdin, capture_output=True, check=False)
    if out.returncode:
        raise RuntimeError(f"mizu {' '.join(args)}: {out.stderr.decode()[-500:]}")
    return out.stdout.decode()


def _post(i: int, ref: dict[str, str]) -> dict[str, Any]:
    return {"feed": "bench", "title": f"post {i}", "author": f"a{i % AUTHORS}", "n": i,
            "tags": ["x", f"t{i % 7}"], "stream": ref,
            "body": f"Post number {i} of the gateway benchmark, a short paragraph of text. " * 3}


def _repository(root: Path) -> dict[str, str]:
    """A repository of MESSAGES signed posts and a stream message holding a stored query
    with a $var; returns the CIDs the URLs name."""
    repo = root / "repo"
    repo.mkdir()
    _mizu(repo, "init")
    (stream,) = _mizu(repo, "put", "--lines", stdin=json.dumps(STREAM).encode() + b"\n").split()
    ref = {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}
    lines = b"".join(json.dumps(_post(i, ref)).encode() + b"\n" for i in range(MESSAGES))
    posts = _mizu(repo, "put", "--lines", stdin=lines).split()
    assert len(posts) == MESSAGES, len(posts)
    return {"repo": str(repo), "stream": stream, "post": posts[MESSAGES // 2]}


class Server:
    """A child process that prints its URL on its first line of output, with stderr to a file."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop(), after the child)
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=self.err)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().decode().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"{' '.join(argv)} printed {self.url!r}: {self.stderr()[-1000:]}")
        self.pid = self.process.pid

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def status(self) -> dict[str, int]:
        """The memory lines of /proc/PID/status, in kB."""
        kb = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.startswith(("Vm", "Rss")):
                kb[key] = int(value.split()[0])
        return kb

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.err.close()


def _gateway(repo: Path) -> Server:
    return Server([MIZU, "serve", "--offline", "--http", "127.0.0.1:0"], repo)


# --- wrk --------------------------------------------------------------------------------------


def _wrk() -> str:
    """wrk's path; installed from Debian (apt-get) the first time, with a message saying so."""
    path = shutil.which("wrk")
    if path:
        return path
    print("bench/gateway.py: wrk is not installed; running `apt-get install -y wrk` (Debian)", file=sys.stderr)
    done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, text=True)
    if done.returncode:  # a stale package list, as .ci/run does for ipfs-cid
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, text=True)
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError(f"cannot install wrk (apt-get exited {done.returncode}): {done.stderr[-500:]}"
                           " -- install it (`apt-get install wrk`) and run again")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _parse_wrk(out: str) -> dict[str, Any]:
    """Requests, errors and latency percentiles from `wrk --latency` output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    if done is None:
        raise RuntimeError(f"cannot read wrk's output: {out[-500:]}")
    requests, seconds = int(done.group(1)), _ms(done.group(2) + done.group(3)) / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    if "50" not in pct or "99" not in pct:
        raise RuntimeError(f"no latency percentiles in wrk's output: {out[-800:]}")
    bad = int(non2xx.group(1)) if non2xx else 0
    return {"requests": requests, "seconds": seconds, "non2xx": bad,
            "socket_errors": sum(map(int, socket_errors.groups())) if socket_errors else 0,
            # 2xx answers a second: a 503 (gateway.max-queries) is quick and would flatter it
            "ok_per_s": (requests - bad) / seconds,
            "p50_ms": _ms(pct["50"]), "p99_ms": _ms(pct["99"])}


def _load(wrk: str, url: str, connections: int, seconds: float, server: Server) -> dict[str, Any]:
    """One wrk run (one thread: it shares the cores with the server), with the CPU seconds
    the server and wrk used meanwhile."""
    argv = [wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "--latency", url]
    server_cpu = server.cpu_s()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr[-500:]}")
    result = _parse_wrk(done.stdout)
    result["server_cores"] = (server.cpu_s() - server_cpu) / result["seconds"]
    result["wrk_cores"] = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / result["seconds"]
    return result


def _check(url: str) -> tuple[int, int]:
    """One GET before the load: its status and body length (a 404 would make a fast bench)."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.status, len(answer.read())


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (the lower middle one of an even number), with every
    round's rate beside it."""
    ordered = sorted(runs, key=lambda x: x["ok_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds_ok_per_s": [x["ok_per_s"] for x in runs]}


def _throughput(root: Path, ids: dict[str, str], seconds: int, rounds: int) -> dict[str, Any]:
    wrk = _wrk()
    repo = Path(ids["repo"])
    gateway = _gateway(repo)
    floor = Server([sys.executable, "-c", FLOOR], root)
    try:
        sparql = quote(SPARQL_POINT, safe="")
        targets = {
            "floor: hello world": (floor, floor.url),
            "view-raw": (gateway, f"{gateway.url}v0/view-raw/{ids['post']}"),
            "raw block": (gateway, f"{gateway.url}ipfs/{ids['post']}?format=raw"),
            "stored query": (gateway, f"{gateway.url}v0/query/{ids['stream']}/queries/by?who=a7"),
            "SPARQL point": (gateway, f"{gateway.url}v0/sparql?query={sparql}"),
        }
        answers = {}
        for name, (server, url) in targets.items():
            status, size = _check(url)
            if status != 200:
                raise RuntimeError(f"{url}: status {status}")
            answers[name] = size
            _load(wrk, url, 10, WARMUP_S, server)  # warm-up: imports, caches, the thread pool
        # Other work on the machine comes and goes: ROUNDS short rounds, each URL after the
        # floor at every connection count, and the median round of each kept.
        every: dict[str, dict[int, list[Any]]] = {name: {c: [] for c in CONNECTIONS} for name in targets}
        for _ in range(rounds):
            for connections in CONNECTIONS:
                for name, (server, url) in targets.items():
                    every[name][connections].append(_load(wrk, url, connections, seconds, server))
        runs = {name: {c: _median(every[name][c]) for c in CONNECTIONS} for name in targets}
        # The ratio to the floor is taken in each round (the two runs seconds apart), then
        # the median of those: a busy spell in one round does not pair a slow floor run
        # with a fast one of another round.
        floor_runs = every["floor: hello world"]
        ratios = {name: {c: statistics.median(x["ok_per_s"] / f["ok_per_s"]
                                              for x, f in zip(every[name][c], floor_runs[c], strict=True))
                         for c in CONNECTIONS} for name in targets}
        return {"seconds": seconds, "rounds": rounds, "connections": list(CONNECTIONS), "answer_bytes": answers,
                "urls": {name: url for name, (_, url) in targets.items()}, "runs": runs, "ratios": ratios,
                "gateway_rss_mb": gateway.status()["VmRSS"] // 1024}
    finally:
        gateway.stop()
        floor.stop()


# --- a large file, streamed -------------------------------------------------------------------


def _stream(root: Path, ids: dict[str, str], size: int) -> dict[str, Any]:
    repo = Path(ids["repo"])
    big = root / "big.bin"
    with big.open("wb") as f:  # random bytes: no chunk repeats, so none is stored once for many
        for left in range(size, 0, -(1 << 20)):
            f.write(os.urandom(min(left, 1 << 20)))
    t0 = time.perf_counter()
    cid = _mizu(repo, "add", "-Q", str(big)).strip()
    add_s = time.perf_counter() - t0
    big.unlink()
    gateway = _gateway(repo)  # fresh: its VmHWM is this fetch's peak (and its start-up's)
    try:
        start = gateway.status()
        sampler = _MemorySampler(gateway.pid)
        sampler.start()
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                              f"{gateway.url}ipfs/{cid}"], capture_output=True, text=True, check=True).stdout
        sampler.stop()
        end = gateway.status()
    finally:
        gateway.stop()
    code, got, seconds = out.split()
    if code != "200" or int(got) != size:
        raise RuntimeError(f"GET /ipfs/{cid}: status {code}, {got} of {size} bytes")
    return {"bytes": size, "cid": cid, "add_s": add_s, "seconds": float(seconds),
            "mb_per_s": size / 1e6 / float(seconds), "start_rss_mb": start["VmRSS"] // 1024,
            "peak_rss_mb": end["VmHWM"] // 1024, **sampler.memory()}


# --- live watchers ------------------------------------------------------------------------------


def _watch(url: str) -> socket.socket:
    """An open live answer (its request sent; its events read by the caller)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    sock.sendall(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    sock.setblocking(False)
    return sock


def _read_events(socks: list[socket.socket], seen: dict[socket.socket, bytes], want: int) -> None:
    """Read until every socket has had `want` rows events (counted in all it sent)."""
    selector = selectors.DefaultSelector()
    for sock in socks:
        if seen[sock].count(b"event: rows") < want:
            selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + SSE_TIMEOUT_S
    while selector.get_map():
        ready = selector.select(timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            raise RuntimeError(f"{len(selector.get_map())} watchers had no event in {SSE_TIMEOUT_S:.0f} s")
        for key, _ in ready:
            sock = key.fileobj
            data = sock.recv(1 << 16)  # type: ignore[union-attr]
            if not data:
                raise RuntimeError(f"a watcher's connection closed: {seen[sock][-300:]!r}")
            seen[sock] += data  # type: ignore[index]
            if seen[sock].count(b"event: rows") >= want:  # type: ignore[index]
                selector.unregister(sock)
    selector.close()


def _watchers(ids: dict[str, str]) -> dict[str, Any]:
    repo = Path(ids["repo"])
    gateway = _gateway(repo)
    try:
        url = f"{gateway.url}v0/query/{ids['stream']}/queries/by?who=a7"
        _check(url)  # the query engine imported and warm before the "before" figure
        one = _watch(url)
        _read_events([one], {one: b""}, 1)
        one.close()
        time.sleep(0.5)
        before = gateway.status()
        t0 = time.perf_counter()
        socks = [_watch(url) for _ in range(WATCHERS)]
        seen = {sock: b"" for sock in socks}
        _read_events(socks, seen, 1)
        open_s = time.perf_counter() - t0
        time.sleep(0.5)
        after = gateway.status()
        token = (repo / ".mizu" / "gateway-token").read_text().strip()
        record = {**_post(MESSAGES, {"$ref": f"https://mizu.stream/v0/view-raw/{ids['stream']}"}),
                  "author": "a7"}  # one more row in every watcher's answer
        request = urllib.request.Request(f"{gateway.url}v0/publish", json.dumps(record).encode(), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 201, answer.status
        published_s = time.perf_counter() - t0
        _read_events(socks, seen, 2)
        all_s = time.perf_counter() - t0
        for sock in socks:
            sock.close()
    finally:
        gateway.stop()
    return {"watchers": WATCHERS, "open_s": open_s, "before_rss_mb": before["VmRSS"] / 1024,
            "after_rss_mb": after["VmRSS"] / 1024, "added_mb": (after["VmRSS"] - before["VmRSS"]) / 1024,
            "added_anon_mb": (after.get("RssAnon", 0) - before.get("RssAnon", 0)) / 1024,
            "publish_s": published_s, "all_notified_s": all_s}


def run(seconds: int = SECONDS, file_size: int = FILE_SIZE, rounds: int = ROUNDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mizu-bench-gateway-") as tmp:
        root = Path(tmp)
        ids = _repository(root)
        results: dict[str, Any] = {"messages": MESSAGES, "cores": os.cpu_count(),
                                   "load": _throughput(root, ids, seconds, rounds)}
        results["watch"] = _watchers(ids)  # before the big file: the same repository as the load
        results["stream"] = _stream(root, ids, file_size)
    results["ratios"] = results["load"]["ratios"]
    stream, watch = results["stream"], results["watch"]
    results["targets"] = {
        **{f"{name} >= {TARGET_FLOOR_SHARE:.0%} of the floor, {c} connections": results["ratios"][name][c]
           >= TARGET_FLOOR_SHARE for name in ("view-raw", "raw block") for c in CONNECTIONS},
        f"stream >= {TARGET_STREAM_MB_S} MB/s": stream["mb_per_s"] >= TARGET_STREAM_MB_S,
        f"stream peak RSS < {TARGET_STREAM_RSS_MB} MB": stream["peak_rss_mb"] < TARGET_STREAM_RSS_MB,
        f"{WATCHERS} watchers < {TARGET_WATCHERS_MB} MB": watch["added_mb"] < TARGET_WATCHERS_MB,
    }
    return results


if __name__ == "__main__":
    import argparse

    from files import parse_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=SECONDS, help="duration of each wrk run")
    parser.add_argument("--file-size", type=parse_size, default=FILE_SIZE, help="streamed file (K/M/G)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured runs per URL and connection count")
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.file_size, args.rounds), indent=2))
