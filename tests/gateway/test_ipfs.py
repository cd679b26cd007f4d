"""`/ipfs/…` in process: the trustless formats (raw, car and its dag-scope), caching
headers, ranges, folders, messages, the probe, and what is refused."""

from __future__ import annotations

import io
import random
from pathlib import Path

from mizu_core import Repository
from mizu_core.files.car import read_car
from mizu_core.message.cid import CID
from tests.gateway.test_api import client, error, repo  # noqa: F401 (the fixture)

IMMUTABLE = "public, max-age=29030400, immutable"


def tree(tmp: Path) -> Path:
    root = tmp / "site"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("hello\n")
    (root / "sub" / "pic").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (root / "big.bin").write_bytes(random.Random(1).randbytes(600_000))
    return root


def test_trustless_answers(repo: Repository, tmp_path: Path) -> None:  # noqa: F811
    root = repo.add(tree(tmp_path))
    web = client(repo)
    raw = web.get(f"/ipfs/{root}?format=raw")
    assert raw.status_code == 200 and raw.content == repo.block(root)
    assert raw.headers["content-type"] == "application/vnd.ipld.raw"
    assert raw.headers["etag"] == f'"{root}.raw"' and raw.headers["cache-control"] == IMMUTABLE
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert web.get(f"/ipfs/{root}", headers={"Accept": "application/vnd.ipld.raw"}).content == raw.content
    assert web.get(f"/ipfs/{root}?format=raw", headers={"If-None-Match": f'"{root}.raw"'}).status_code == 304
    leaf = web.get(f"/ipfs/{root}/sub/a.txt?format=raw")
    assert CID.for_block(leaf.content, codec=0x70).digest == repo.add(tmp_path / "site" / "sub" / "a.txt").digest

    def car_blocks(query: str) -> list[CID]:
        answer = web.get(f"/ipfs/{root}{query}")
        assert answer.headers["content-type"] == "application/vnd.ipld.car; version=1; order=dfs; dups=n"
        other = Repository.memory()
        imported = read_car(other, io.BytesIO(answer.content))  # re-hashes every block
        assert list(imported.roots) == [root]
        return [cid for cid, _ in other.scan_blocks()]

    everything = car_blocks("?format=car")
    assert len(everything) == len({c for c in everything}) > 5  # every block once
    assert len(car_blocks("/sub?format=car&dag-scope=block")) == 2  # the path's block, then sub's
    assert len(car_blocks("/big.bin?format=car&dag-scope=entity")) > 2  # the whole file
    assert len(car_blocks("?format=car&dag-scope=entity")) == 1  # a folder's own node
    error(web.get(f"/ipfs/{root}?format=car&dag-scope=most"), 400, "dag-scope is one of")
    error(web.get(f"/ipfs/{root}?format=tar"), 400, "format is raw or car")
    leaf_cid = repo.add(tmp_path / "site" / "sub" / "a.txt")
    v0 = CID(leaf_cid.raw[2:]).encode("base58btc")  # what a folder's links name (Qm…)
    for form in (v0, leaf_cid.encode("base58btc"), "B" + str(leaf_cid)[1:].upper()):
        assert web.get(f"/ipfs/{form}?format=raw").content == leaf.content, form
    probe = web.get("/ipfs/bafkqaaa?format=raw")
    assert probe.status_code == 200 and probe.content == b""


def test_deserialized_answers(repo: Repository, tmp_path: Path) -> None:  # noqa: F811
    root = repo.add(tree(tmp_path))
    data = (tmp_path / "site" / "big.bin").read_bytes()
    web = client(repo)
    moved = web.get(f"/ipfs/{root}/sub", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == f"/ipfs/{root}/sub/"
    listing = web.get(f"/ipfs/{root}/sub/")
    assert listing.headers["content-type"] == "text/html; charset=utf-8" and '<a href="a.txt">a.txt</a>' in listing.text
    assert listing.headers["content-security-policy"].startswith("sandbox;")
    text = web.get(f"/ipfs/{root}/sub/a.txt")
    assert text.text == "hello\n" and text.headers["content-type"].startswith("text/plain")
    assert text.headers["etag"] == f'"{repo.add(tmp_path / "site" / "sub" / "a.txt")}"'
    assert web.get(f"/ipfs/{root}/sub/pic").headers["content-type"] == "image/png"  # sniffed
    whole = web.get(f"/ipfs/{root}/big.bin")
    assert whole.content == data and whole.headers["accept-ranges"] == "bytes"
    part = web.get(f"/ipfs/{root}/big.bin", headers={"Range": "bytes=300000-300009"})
    assert part.status_code == 206 and part.content == data[300000:300010]
    assert part.headers["content-range"] == f"bytes 300000-300009/{len(data)}"
    assert web.get(f"/ipfs/{root}/big.bin", headers={"Range": "bytes=-3"}).content == data[-3:]
    beyond = web.get(f"/ipfs/{root}/big.bin", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    head = web.head(f"/ipfs/{root}/big.bin")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
    message = repo.publish({"title": "hi", "site": root})
    assert web.get(f"/ipfs/{message}").json()["title"] == "hi"
    assert web.get(f"/ipfs/{message}/title").json() == "hi"
    assert web.get(f"/ipfs/{message}/site/sub/a.txt").text == "hello\n"  # through the message's link
    error(web.get(f"/ipfs/{root}/nope"), 404, "no 'nope' in")
    error(web.get(f"/ipfs/{message}/nope"), 404, "no 'nope' in")
    error(web.get("/ipfs/not-a-cid"), 400, "is not a CID")


def test_a_private_message_is_never_served_over_ipfs(repo: Repository) -> None:  # noqa: F811
    secret = repo.publish({"title": "secret", "secret": True})
    holder = repo.publish({"title": "holder", "see": secret})
    repo.config.repo_file.set("filters.private", '{"secret": true}')
    web = client(repo)
    for path in (f"/ipfs/{secret}", f"/ipfs/{secret}?format=raw", f"/ipfs/{holder}/see", f"/ipfs/{holder}/see?format=raw"):
        error(web.get(path), 404, "not in the repository")
    car = web.get(f"/ipfs/{holder}?format=car")
    other = Repository.memory()
    read_car(other, io.BytesIO(car.content))
    assert other.find_block(holder) is not None and other.find_block(secret) is None
