"""Hostile HTTP clients against a real `mizu serve --offline --http`: each is refused or
bounded, and the gateway answers a normal request afterwards (issue 24)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import mizu, wait_for
from tests.e2e.test_gateway import Gateway, refused
from tests.e2e.test_sync import init, put_lines

pytestmark = pytest.mark.slow


def normal(gateway: Gateway, cid: str) -> None:
    code, _, body = gateway.request(f"v0/view-raw/{cid}/n")
    assert (code, body) == (200, b"0\n")


def port(gateway: Gateway) -> int:
    return int(gateway.url.rstrip("/").rsplit(":", 1)[1])


def test_bodies_hosts_and_endless_queries(tmp_path: Path) -> None:
    repo = init(tmp_path, "a")
    cids = put_lines(repo, [json.dumps({"n": i, "title": f"t{i}"}) for i in range(2000)])
    mizu("config", "set", "gateway.max-body", "1000", cwd=repo)
    mizu("config", "set", "gateway.query-timeout", "0.5", cwd=repo)
    gateway = Gateway(repo)
    try:
        token = (repo / ".mizu" / "gateway-token").read_text().strip()
        connection = http.client.HTTPConnection("127.0.0.1", port(gateway), timeout=10)
        connection.putrequest("POST", "/v0/publish")  # claims 100 MB, sends a little: refused at once
        for name, value in (("Content-Type", "application/json"), ("Content-Length", str(100 << 20)),
                            ("Authorization", f"Bearer {token}")):
            connection.putheader(name, value)
        connection.endheaders(b"{" * 500)
        answer = connection.getresponse()
        assert answer.status == 413 and "gateway.max-body" in json.loads(answer.read())["error"]
        connection.close()
        refused(gateway.request("v0/query", b"[" * 5000, **{"Content-Type": "application/json"}), 413, "max-body")
        refused(gateway.request(f"v0/view-raw/{cids[0]}", Host="rebind.attacker.example:80"), 403, "Host")
        endless = {"@select": ["?a"], "@where": [{"@id": "?a", "n": "?x"}, {"@id": "?b", "n": "?y"},
                                                {"@filter": {"@lt": [{"@plus": ["?x", "?y"]}, -1]}}]}  # no row, ever
        started = time.monotonic()
        refused(gateway.request("v0/query", json.dumps(endless).encode(), **{"Content-Type": "application/json"}),
                503, "query timed out after 0.5 s")
        assert time.monotonic() - started < 30  # bounded (the product's bound is 0.5 s of work)
        normal(gateway, cids[0])
    finally:
        gateway.stop()


def test_five_hundred_idle_connections_and_a_client_that_never_reads(tmp_path: Path) -> None:
    repo = init(tmp_path, "a")
    (first,) = put_lines(repo, [json.dumps({"n": 0})])
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(64 << 20))
    file_cid = mizu("add", "-q", str(big), cwd=repo).stdout.decode().split()[-1]
    mizu("config", "set", "gateway.client-timeout", "2", cwd=repo)
    gateway = Gateway(repo)
    idle: list[socket.socket] = []
    try:
        for i in range(500):  # connections that send nothing, or half a request
            s = socket.create_connection(("127.0.0.1", port(gateway)), timeout=10)
            if i % 2:
                s.sendall(b"GET /v0/view-raw/ HTTP/1.1\r\nHost: 127.0")
            idle.append(s)
        normal(gateway, first)  # answered beside them

        def all_closed() -> bool:  # by the server, within its keep-alive time-out (5 s)
            for s in list(idle):
                s.settimeout(0.01)
                try:
                    if s.recv(1) == b"":
                        idle.remove(s)
                        s.close()
                except (TimeoutError, BlockingIOError):
                    pass
                except ConnectionResetError:
                    idle.remove(s)
                    s.close()
            return not idle

        wait_for(all_closed, 30, "the idle connections to be closed by the gateway")

        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", port(gateway)))
        stalled.sendall(f"GET /ipfs/{file_cid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        normal(gateway, first)  # while 64 MiB wait for a reader that never comes

        def dropped() -> bool:  # the kernel gives up on the unread answer (client-timeout 2 s)
            with open(f"/proc/{gateway.process.pid}/net/tcp") as table:
                local = f":{port(gateway):04X} "
                return not any(local in line and " 01 " in line and _peer(line) == stalled.getsockname()[1]
                               for line in table)

        wait_for(dropped, 60, "the stalled reader's connection to be dropped")
        stalled.close()
        normal(gateway, first)
        with open(f"/proc/{gateway.process.pid}/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        assert peak < 300 * 1024, f"serve's peak RSS {peak} kB"  # the 64 MiB answer was never held
    finally:
        for s in idle:
            s.close()
        gateway.stop()


def _peer(line: str) -> int:
    """The remote port of a /proc/net/tcp line."""
    return int(line.split()[2].split(":")[1], 16)
