"""CAR v1 export and import: round trips, an independent reader, and whole rejection."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mizu_core.errors import InvalidMessage
from mizu_core.files.car import reachable, read_car, write_car
from mizu_core.files.tree import add_path, read_file
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.repo.repository import Repository
from mizu_core.repo.upkeep import fsck
from tests.conftest import SPEC_VECTORS, rsa_vector

QUERY = {"@select": ["?a", "?c"], "@where": {"author": "?a", "content": "?c"}, "@orderBy": "?c"}


def car_of(repo: Repository, roots: list[CID]) -> bytes:
    out = io.BytesIO()
    write_car(out, roots, reachable(repo, roots))
    return out.getvalue()


def filled(tmp_path: Path) -> tuple[Repository, list[CID]]:
    repo = Repository.memory()
    cids = list(repo.publish([m for m, _ in SPEC_VECTORS[1:]] + [rsa_vector()], sign=True).cids)
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    file_root = add_path(repo, tmp_path / "f")[-1].link.cid
    cids.append(repo.publish([{"title": "with a file", "file": file_root}]).cids[0])
    return repo, cids


def test_round_trip_answers_the_same(tmp_path: Path) -> None:
    source, roots = filled(tmp_path)
    archive = car_of(source, roots)
    target = Repository.memory()
    result = read_car(target, io.BytesIO(archive))
    assert result.roots == tuple(roots) and result.messages == len(roots)
    assert list(target.query(QUERY)) == list(source.query(QUERY))
    linked_file = target.message(roots[-1])["file"]
    assert b"".join(read_file(target, linked_file)) == b"".join(read_file(source, linked_file))
    assert fsck(target).ok


def test_an_independent_reader_reads_every_block() -> None:
    libipld = pytest.importorskip("libipld")
    repo = Repository.memory()
    roots = list(repo.publish([m for m, _ in SPEC_VECTORS]).cids)
    header, blocks = libipld.decode_car(car_of(repo, roots))  # CIDs come back binary
    assert header == {"version": 1, "roots": [r.raw for r in roots]}
    assert set(blocks) == {r.raw for r in roots}
    for cid in roots:
        assert blocks[cid.raw] == repo.message(cid)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "bad signature"])
def test_a_bad_block_rejects_the_whole_archive(tmp_path: Path, damage: str) -> None:
    source, roots = filled(tmp_path)
    archive = bytearray(car_of(source, roots))
    if damage == "flip a byte":
        archive[-10] ^= 0xFF  # inside the last block
        error = "does not hash"
    elif damage == "truncate":
        del archive[-5:]
        error = "ends inside"
    else:  # a block that hashes right but carries a forged signature
        data = codec.encode(codec.from_json(dict(rsa_vector(), content="roses are RED")))
        out = io.BytesIO()
        write_car(out, roots, [*reachable(source, roots), (CID.for_block(data), data)])
        archive = bytearray(out.getvalue())
        error = "signature"
    target = Repository.memory()
    with pytest.raises(InvalidMessage, match=error):
        read_car(target, io.BytesIO(bytes(archive)))
    with target.store.reader() as txn:
        assert txn.count("blocks") == 0 and txn.count("pins") == 0
