"""CAR v1 archives: export blocks (with everything they link) and import them back.

Format: a varint-prefixed DAG-CBOR header `{"roots": [CID…], "version": 1}`, then one
section per block: varint(len(cid) + len(data)), the binary CID, the data. Importing
re-hashes every block and validates every message through the same path as a publish;
one bad block rejects the whole archive and nothing is stored.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from mizu_core.errors import InvalidMessage, NotFound
from mizu_core.message import codec
from mizu_core.message.cid import CID, read_varint, varint
from mizu_core.repo import blockstore
from mizu_core.repo.ingest import PIN_USER
from mizu_core.repo.received import check_block, store_checked
from mizu_core.repo.repository import Repository
from mizu_core.repo.upkeep import block_links

MAX_SECTION = 2 << 20  # a block is at most 1 MiB (messages) or 256 KiB + header (files)
_BATCH = 10_000


def reachable(repo: Repository, roots: Iterable[CID]) -> Iterator[tuple[CID, bytes]]:
    """Every block the roots reach, each once, roots first (depth first)."""
    seen: set[bytes] = set()
    stack = list(reversed(list(roots)))
    while stack:
        cid = stack.pop()
        key = cid.to_v1().raw
        if key in seen:
            continue
        seen.add(key)
        data = repo.block(cid)
        yield cid, data
        stack.extend(reversed(block_links(cid, data)))


def all_blocks(repo: Repository) -> Iterator[tuple[CID, bytes]]:
    with repo.store.reader() as txn:
        for key, data in blockstore.scan(txn):
            yield CID(key), bytes(data)


def write_car(out: IO[bytes], roots: list[CID], blocks: Iterable[tuple[CID, bytes]]) -> int:
    header = codec.encode({"roots": roots, "version": 1})
    out.write(varint(len(header)) + header)
    count = 0
    for cid, data in blocks:
        out.write(varint(len(cid.raw) + len(data)) + cid.raw + data)
        count += 1
    return count


@dataclass(frozen=True)
class Imported:
    roots: tuple[CID, ...]
    blocks: int
    messages: int


def _read_exact(stream: IO[bytes], n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise InvalidMessage(f"CAR file ends inside {what}")
    return data


def _read_varint(stream: IO[bytes]) -> int | None:
    raw = b""
    while True:
        byte = stream.read(1)
        if not byte:
            if raw:
                raise InvalidMessage("CAR file ends inside a length")
            return None
        raw += byte
        if not byte[0] & 0x80:
            return read_varint(raw, 0)[0]
        if len(raw) > 9:
            raise InvalidMessage("CAR length varint is too long")


def _split_cid(section: bytes) -> tuple[CID, bytes]:
    """A section starts with a binary CID whose length its own fields tell."""
    try:
        if section[:2] == b"\x12\x20":
            return CID(section[:34]), section[34:]
        _, pos = read_varint(section, 0)  # version
        _, pos = read_varint(section, pos)  # codec
        _, pos = read_varint(section, pos)  # hash function
        length, pos = read_varint(section, pos)
        return CID(section[: pos + length]), section[pos + length:]
    except ValueError as e:
        raise InvalidMessage(f"CAR section with a malformed CID: {e}") from None


def read_car(repo: Repository, stream: IO[bytes]) -> Imported:
    """Verify every block of a CAR archive, then store them all; nothing if any is bad."""
    with repo.unpinned_writes():
        return _read_car(repo, stream)


def _read_car(repo: Repository, stream: IO[bytes]) -> Imported:
    length = _read_varint(stream)
    if length is None or length > MAX_SECTION:
        raise InvalidMessage("not a CAR file (no header)")
    try:
        header = codec.decode(_read_exact(stream, length, "the header"))
    except InvalidMessage as e:
        raise InvalidMessage(f"not a CAR file (header: {e})") from None
    if type(header) is not dict or header.get("version") != 1 or type(header.get("roots")) is not list:
        raise InvalidMessage("not a CAR v1 file (bad header)")
    roots = tuple(r for r in header["roots"] if type(r) is CID)

    count = messages = 0
    with tempfile.SpooledTemporaryFile(max_size=32 << 20) as spool:
        n = 0
        while (size := _read_varint(stream)) is not None:
            n += 1
            if size > MAX_SECTION:
                raise InvalidMessage(f"CAR block {n} is {size} bytes, over the limit")
            cid, data = _split_cid(_read_exact(stream, size, f"block {n}"))
            try:
                checked = check_block(cid, data, lambda ref: _stored_schema(repo, ref.cid))
            except InvalidMessage as e:
                raise InvalidMessage(f"CAR block {n}: {e}") from None
            pickle.dump(checked, spool)
            messages += checked.signers is not None
            count += 1
        spool.seek(0)
        # Everything is verified: store in batches as `put` does (a crash leaves whole
        # batches, and importing the same archive again completes it); roots pinned last.
        for start in range(0, count, _BATCH):
            with repo.store.writer() as txn:
                store_checked(txn, (pickle.load(spool) for _ in range(min(_BATCH, count - start))))
        with repo.store.writer() as txn:
            for root in roots:
                if blockstore.has(txn, root.to_v1().raw):
                    txn.put("pins", root.to_v1().raw, PIN_USER, overwrite=False)
    return Imported(roots, count, messages)


def _stored_schema(repo: Repository, cid: CID) -> dict[str, object] | None:
    try:
        return repo.message(cid.to_v1())
    except NotFound:
        return None
