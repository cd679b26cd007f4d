"""The CAR reader on archives exported from real repositories and then damaged: cut at
every kind of boundary, header roots changed, sections swapped, duplicated or dropped,
length varints corrupted, blocks whose bytes do not match their CID. An import either
fails with one line (an InvalidMessage, exit 1) and stores nothing, or succeeds, and then
`fsck` passes, every root is pinned, and each root's DAG is complete (surviving `gc`) or
its incompleteness was reported."""

from __future__ import annotations

import functools
import io
import os
import tempfile
from pathlib import Path

from hypothesis import event, given
from hypothesis import strategies as st

from mizu_core import Repository
from mizu_core.errors import InvalidMessage, MizuError
from mizu_core.files.car import reachable, read_car, write_car
from mizu_core.files.tree import add_path
from mizu_core.message import codec
from mizu_core.message.cid import CID, read_varint, varint
from mizu_core.message.keys import PrivateKey
from mizu_core.repo.upkeep import fsck, gc
from tests.fuzz import fuzz_settings

KEY = PrivateKey.generate()


@functools.cache
def archives() -> tuple[bytes, ...]:
    """Archives of one repository: a message linking a folder, the folder and messages as
    roots, and every block."""
    repo = Repository.memory(KEY)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        (site / "sub").mkdir(parents=True)
        (site / "big").write_bytes(os.urandom(300_000))  # two chunks
        (site / "small").write_bytes(b"hello")
        (site / "sub" / "x").write_bytes(os.urandom(2000))
        folder = add_path(repo, site)[-1].link.cid
    schema = repo.publish({"kind": "json-schema", "schema": {"type": "object"}})
    first = repo.publish({"title": "site", "folder": folder, "$schema": f"https://mizu.stream/v0/view-raw/{schema}"})
    second = repo.publish({"$prev": f"https://mizu.stream/v0/view-raw/{first}", "title": "site, again"})
    out = []
    for roots in ([first], [folder, second], [second, first]):
        buffer = io.BytesIO()
        write_car(buffer, roots, reachable(repo, roots))
        out.append(buffer.getvalue())
    buffer = io.BytesIO()
    with repo.store.reader() as txn:
        from mizu_core.repo import blockstore

        every = [(CID(bytes(k)), bytes(v)) for k, v in blockstore.scan(txn)]
    write_car(buffer, repo.pins(), every)
    out.append(buffer.getvalue())
    return tuple(out)


def sections(archive: bytes) -> tuple[bytes, list[bytes]]:
    """The header (with its length) and each section (with its length)."""
    length, pos = read_varint(archive, 0)
    header, rest = archive[: pos + length], []
    at = pos + length
    while at < len(archive):
        length, pos = read_varint(archive, at)
        rest.append(archive[at: pos + length])
        at = pos + length
    return header, rest


def _header(roots: list[CID]) -> bytes:
    data = codec.encode({"roots": roots, "version": 1})
    return varint(len(data)) + data


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    archive = draw(st.sampled_from(archives()))
    header, parts = sections(archive)
    kind = draw(st.sampled_from([
        "cut at a section", "cut anywhere", "flip a header byte", "flip any byte", "swap sections",
        "duplicate a section", "drop a section", "bad length", "other block's bytes", "other roots",
        "intact",
    ]))
    event(kind)
    i = draw(st.integers(0, len(parts) - 1))
    j = draw(st.integers(0, len(parts) - 1))
    if kind == "cut at a section":
        return header + b"".join(parts[:i])
    if kind == "cut anywhere":
        return archive[: draw(st.integers(0, len(archive) - 1))]
    if kind in ("flip a header byte", "flip any byte"):
        at = draw(st.integers(0, (len(header) if kind == "flip a header byte" else len(archive)) - 1))
        out = bytearray(archive)
        out[at] ^= draw(st.integers(1, 255))
        return bytes(out)
    if kind == "swap sections":
        parts[i], parts[j] = parts[j], parts[i]
    elif kind == "duplicate a section":
        parts.insert(j, parts[i])
    elif kind == "drop a section":
        del parts[i]
    elif kind == "bad length":
        _, pos = read_varint(parts[i], 0)
        parts[i] = draw(st.sampled_from([b"\x00", b"\x01", b"\xff", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
                                         varint(len(parts[i]) - pos + 1), varint(max(0, len(parts[i]) - pos - 1))])) + parts[i][pos:]
    elif kind == "other block's bytes":  # keep block i's CID, take block j's data
        section = _split(parts[i])[0] + _split(parts[j])[1]
        parts[i] = varint(len(section)) + section
    elif kind == "other roots":
        cids = [CID(_split(p)[0]) for p in parts]
        absent = CID.for_block(os.urandom(8))
        header = _header(draw(st.lists(st.sampled_from([*cids, absent]), max_size=3)))
    return header + b"".join(parts)


def _split(section: bytes) -> tuple[bytes, bytes]:
    """A section's CID and data (the archives above hold sha2-256 CIDs only)."""
    _, pos = read_varint(section, 0)
    body = section[pos:]
    size = 34 if body[:2] == b"\x12\x20" else 36
    return body[:size], body[size:]


def _counts(repo: Repository) -> tuple[int, ...]:
    with repo.store.reader() as txn:
        return tuple(txn.count(t) for t in ("blocks", "messages", "message_blocks", "log", "pins", "spo"))


@fuzz_settings(400)
@given(damaged())
def test_a_damaged_archive_is_refused_whole_or_imported_whole(archive: bytes) -> None:
    repo = Repository.memory(KEY)
    before = _counts(repo)
    try:
        result = read_car(repo, io.BytesIO(archive))
    except MizuError as e:
        assert isinstance(e, InvalidMessage) and e.exit_code == 1, repr(e)
        assert "\n" not in str(e) and len(str(e)) < 300, str(e)
        assert _counts(repo) == before, "a failed import stored something"
        event("refused")
        return
    event("imported, incomplete" if result.missing else "imported")
    report = fsck(repo)
    assert report.ok, report.problems
    roots = {r.to_v1() for r in result.roots}
    assert roots <= set(repo.pins())
    if result.missing:
        assert report.incomplete, "the import reported missing blocks that fsck does not see"
        return
    held = list(reachable(repo, result.roots))  # complete: raises if a block is missing
    gc(repo)
    assert len(list(reachable(repo, result.roots))) == len(held)  # and gc keeps it all
    assert fsck(repo).ok


def test_every_cut_at_a_section_boundary_is_refused_or_reported() -> None:
    for archive in archives():
        header, parts = sections(archive)
        for n in range(len(parts)):
            repo = Repository.memory(KEY)
            try:
                result = read_car(repo, io.BytesIO(header + b"".join(parts[:n])))
            except InvalidMessage:
                assert _counts(repo) == (0,) * 6
                continue
            assert result.missing and fsck(repo).incomplete
