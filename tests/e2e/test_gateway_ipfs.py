"""The IPFS side of the gateway, judged by IPFS clients nobody here wrote: verified-fetch
(which hashes every block it is sent) reads a file, a folder's entry and a message through
`mizu serve --offline --http`, and refuses a tampered block from a test double; ipfs-car
unpacks a `?format=car` answer into the very files that were added."""

from __future__ import annotations

import base64
import filecmp
import http.server
import json
import random
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import mizu
from tests.e2e.test_gateway import Gateway
from tests.e2e.test_sync import init, put_lines

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).parent / "ipfs_clients"
NODE = CLIENTS / "node_modules" / ".bin" / "node"  # Node 22, from npm (verified-fetch needs it)


def site(tmp: Path) -> Path:
    root = tmp / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>hello</h1>\n")
    (root / "sub" / "a.txt").write_text("a small file\n")
    (root / "sub" / "big.bin").write_bytes(random.Random(3).randbytes(1_100_000))  # several leaves
    return root


def verified_fetch(gateway: str, requests: list[dict[str, str]], timeout_ms: int = 20_000) -> list[dict[str, Any]]:
    out = subprocess.run([str(NODE), "fetch.mjs", gateway.rstrip("/"), str(timeout_ms), json.dumps(requests)],
                         cwd=CLIENTS, capture_output=True, timeout=120, check=True)
    results: list[dict[str, Any]] = json.loads(out.stdout)
    for result in results:
        result["bytes"] = base64.b64decode(result.get("body", ""))
    return results


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, Gateway, str]]:
    repo = init(tmp_path, "a")
    added = mizu("add", "-q", str(site(tmp_path)), cwd=repo).stdout.decode().split()
    gateway = Gateway(repo)
    try:
        yield repo, gateway, added[-1]
    finally:
        gateway.stop()


def test_verified_fetch_reads_files_folders_and_messages(served: tuple[Path, Gateway, str], tmp_path: Path) -> None:
    repo, gateway, root = served
    (message,) = put_lines(repo, [json.dumps({"title": "a message", "n": 1})])
    results = verified_fetch(gateway.url, [
        {"url": f"ipfs://{root}/sub/a.txt"},
        {"url": f"ipfs://{root}/sub/big.bin"},
        {"url": f"ipfs://{root}/index.html"},
        {"url": f"ipfs://{message}", "accept": "application/vnd.ipld.dag-cbor"},
    ])
    assert [r.get("status") for r in results] == [200] * 4, results
    assert results[0]["bytes"] == (tmp_path / "site" / "sub" / "a.txt").read_bytes()
    assert results[1]["bytes"] == (tmp_path / "site" / "sub" / "big.bin").read_bytes()
    assert results[2]["bytes"] == b"<h1>hello</h1>\n" and results[2]["type"].startswith("text/html")
    block = mizu("view", message, cwd=repo).stdout
    import cbor2

    assert cbor2.loads(results[3]["bytes"]) == json.loads(block)  # the message, verified against its CID


def test_a_tampered_block_is_refused_by_verified_fetch(served: tuple[Path, Gateway, str], tmp_path: Path) -> None:
    _, gateway, root = served
    tampered: list[str] = []

    class Tampering(http.server.BaseHTTPRequestHandler):
        """A test double gateway: Mizu's answers, with every raw block's last byte flipped."""

        def do_GET(self) -> None:
            request = urllib.request.Request(gateway.url + self.path.lstrip("/"), headers=dict(self.headers))
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, headers, body = response.status, response.headers, response.read()
            except urllib.error.HTTPError as e:
                status, headers, body = e.code, e.headers, e.read()
            if status == 200 and body and ("format=raw" in self.path or "vnd.ipld.raw" in self.headers.get("accept", "")):
                body = body[:-1] + bytes([body[-1] ^ 1])
                tampered.append(self.path)
            self.send_response(status)
            for name in ("Content-Type", "Etag", "Cache-Control"):
                if headers.get(name):
                    self.send_header(name, headers[name])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    double = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tampering)
    threading.Thread(target=double.serve_forever, daemon=True).start()
    try:
        (result,) = verified_fetch(f"http://127.0.0.1:{double.server_address[1]}/",
                                   [{"url": f"ipfs://{root}/sub/a.txt"}], timeout_ms=5000)
    finally:
        double.shutdown()
    assert tampered, "verified-fetch asked the double for no block"
    assert "error" in result or result.get("status", 200) >= 400, result  # refused, never served
    assert b"a small file" not in result.get("bytes", b"")


def test_ipfs_car_unpacks_a_car_answer(served: tuple[Path, Gateway, str], tmp_path: Path) -> None:
    _, gateway, root = served
    car = tmp_path / "site.car"
    with urllib.request.urlopen(f"{gateway.url}ipfs/{root}?format=car", timeout=30) as response:
        assert response.headers["content-type"].startswith("application/vnd.ipld.car")
        car.write_bytes(response.read())
    out = tmp_path / "unpacked"
    subprocess.run([str(NODE), "node_modules/.bin/ipfs-car", "unpack", str(car), "--output", str(out)],
                   cwd=CLIENTS, check=True, capture_output=True, timeout=120)
    comparison = filecmp.dircmp(tmp_path / "site", out)
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files
    assert filecmp.cmp(tmp_path / "site" / "sub" / "big.bin", out / "sub" / "big.bin", shallow=False)
