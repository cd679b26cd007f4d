"""CAR v1 export and import: round trips, an independent reader, and whole rejection."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mizu_core import Repository
from mizu_core.errors import InvalidMessage
from mizu_core.files.car import reachable, read_car, write_car
from mizu_core.files.tree import add_path, read_file
from mizu_core.message import codec
from mizu_core.message.cid import CID
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


# -- imports that report success and lose data (issue 21, class 3) -------------------------


def _sections(archive: bytes) -> list[int]:
    """The offsets where the archive's sections start, and its end."""
    from mizu_core.message.cid import read_varint

    length, pos = read_varint(archive, 0)
    bounds = [pos + length]
    while bounds[-1] < len(archive):
        length, pos = read_varint(archive, bounds[-1])
        bounds.append(pos + length)
    return bounds


def _stored(repo: Repository) -> tuple[int, int, int]:
    with repo.store.reader() as txn:
        return txn.count("blocks"), txn.count("messages"), txn.count("pins")


def test_a_cut_at_any_section_boundary_is_refused_or_reported(tmp_path: Path) -> None:
    source, roots = filled(tmp_path)
    archive = car_of(source, roots)
    bounds = _sections(archive)
    for cut in bounds[:-1]:
        target = Repository.memory()
        try:
            result = read_car(target, io.BytesIO(archive[:cut]))
        except InvalidMessage as e:
            assert "neither in the archive nor in the repository" in str(e)
            assert _stored(target) == (0, 0, 0)
            continue
        assert result.missing, f"a cut at {cut} imported in silence"
        report = fsck(target)
        assert report.ok and report.incomplete
        assert set(target.pins()) == {r.to_v1() for r in roots}
    whole = read_car(Repository.memory(), io.BytesIO(archive))
    assert whole.missing == () and whole.unrooted == 0


def test_damaged_header_roots_fail_and_store_nothing(tmp_path: Path) -> None:
    source = Repository.memory()
    (tmp_path / "d").mkdir()
    for i in range(3):
        (tmp_path / "d" / f"f{i}").write_bytes(os.urandom(1000))
    folder = add_path(source, tmp_path / "d")[-1].link.cid
    archive = car_of(source, [folder])
    damaged = archive.replace(folder.raw, folder.raw[:-1] + bytes([folder.raw[-1] ^ 1]), 1)
    target = Repository.memory()
    with pytest.raises(InvalidMessage, match=r"CAR root .* is neither in the archive nor in the repository"):
        read_car(target, io.BytesIO(damaged))
    assert _stored(target) == (0, 0, 0)


def test_a_root_that_is_not_a_cid_is_refused() -> None:
    header = codec.encode({"roots": ["not a cid"], "version": 1})
    with pytest.raises(InvalidMessage, match="not a CID"):
        read_car(Repository.memory(), io.BytesIO(bytes([len(header)]) + header))


def test_a_root_already_stored_is_pinned_and_blocks_no_root_reaches_are_counted() -> None:
    repo = Repository.memory()
    stored = repo.publish({"a": 1}, sign=False)
    loose = codec.encode({"b": 2})
    out = io.BytesIO()
    write_car(out, [stored], [(CID.for_block(loose), loose)])
    repo.unpin([stored])
    result = read_car(repo, io.BytesIO(out.getvalue()))
    assert result.unrooted == 1 and result.missing == ()
    assert repo.pins() == [stored]


def test_a_schema_travels_with_its_message_and_may_come_after_it() -> None:
    source = Repository.memory()
    schema = source.publish({"kind": "json-schema", "schema": {"type": "object", "required": ["t"]}})
    message = source.publish({"$schema": f"https://mizu.stream/v0/view-raw/{schema}", "t": 1})
    blocks = list(reachable(source, [message]))
    assert [c for c, _ in blocks] == [message, schema]  # export follows $schema, message first
    target = Repository.memory()
    out = io.BytesIO()
    write_car(out, [message], blocks)
    result = read_car(target, io.BytesIO(out.getvalue()))
    assert result.messages == 2 and target.message(message) == source.message(message)
    assert fsck(target).ok and fsck(target).incomplete == []


def test_a_schema_in_neither_archive_nor_repository_fails_naming_both() -> None:
    source = Repository.memory()
    schema = source.publish({"kind": "json-schema", "schema": {"type": "object"}})
    message = source.publish({"$schema": f"https://mizu.stream/v0/view-raw/{schema}"})
    out = io.BytesIO()
    write_car(out, [message], [(message, source.block(message))])
    target = Repository.memory()
    with pytest.raises(InvalidMessage, match=r"CAR block 1: \$schema .* neither in the archive nor in the repository"):
        read_car(target, io.BytesIO(out.getvalue()))
    assert _stored(target) == (0, 0, 0)


def test_export_skips_linked_blocks_not_held_when_asked() -> None:
    repo = Repository.memory()
    absent = CID.parse(SPEC_VECTORS[0][1])
    cid = repo.publish({"cover": absent})
    with pytest.raises(Exception, match="not in the repository"):
        list(reachable(repo, [cid]))
    missing: list[CID] = []
    assert [c for c, _ in reachable(repo, [cid], missing)] == [cid] and missing == [absent]


def test_an_overlong_cid_in_a_section_is_refused() -> None:
    from mizu_core.message.cid import varint

    header = codec.encode({"roots": [], "version": 1})
    data = b"x" * 1000
    cid = bytes([1, 0x55, 0]) + varint(len(data)) + data  # an identity CID of 1000 bytes
    section = cid + data
    archive = varint(len(header)) + header + varint(len(section)) + section
    with pytest.raises(InvalidMessage, match="CAR section with a malformed CID"):
        read_car(Repository.memory(), io.BytesIO(archive))
