"""CAR v1 archives: export blocks (with everything they link) and import them back.

Format: a varint-prefixed DAG-CBOR header `{"roots": [CID…], "version": 1}`, then one
section per block: varint(len(cid) + len(data)), the binary CID, the data. Importing
re-hashes every block and validates every message through the same path as a publish;
one bad block rejects the whole archive and nothing is stored.

A CAR v1 has no length, so a cut at a section boundary reads as a shorter archive. What
an import can check, it checks before storing anything: every root must be in the archive
or in the repository (else the header is damaged or the archive cut), and each root's DAG
is walked over the archive and the store; what it references that neither holds is
reported as incomplete (partial replication makes that normal), never pinned in silence,
and so are the archive's blocks that no root reaches (stored unpinned: the next gc
removes them).
"""

from __future__ import annotations

import itertools
import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from mizu_core.errors import InvalidMessage, NotFound
from mizu_core.message import codec
from mizu_core.message.cid import CID, MAX_CID_BYTES, read_varint, varint
from mizu_core.message.links import block_references
from mizu_core.message.validate import MissingSchema
from mizu_core.repo import blockstore
from mizu_core.repo.kv import Txn
from mizu_core.repo.received import Checked, check_block, check_many
from mizu_core.repo.repository import Repository

MAX_SECTION = 2 << 20  # a block is at most 1 MiB (messages) or 256 KiB + header (files)
_BATCH = 10_000
_CHECK_BLOCKS, _CHECK_BYTES = 512, 4 << 20  # blocks checked together, at most


def reachable(
    repo: Repository, roots: Iterable[CID], missing: list[CID] | None = None
) -> Iterator[tuple[CID, bytes]]:
    """Every block the roots reach (links, and the schema messages of `$schema`), each
    once, roots first (depth first). A linked block not stored raises NotFound, or with
    `missing` is added there and skipped (partial replication)."""
    seen: set[bytes] = set()
    stack = list(reversed(list(roots)))
    while stack:
        cid = stack.pop()
        key = cid.to_v1().raw
        if key in seen:
            continue
        seen.add(key)
        try:
            data = repo.block(cid)
        except NotFound:
            if missing is None:
                raise
            missing.append(cid)
            continue
        yield cid, data
        stack.extend(reversed(block_references(cid, data)))


def all_blocks(repo: Repository) -> Iterator[tuple[CID, bytes]]:
    return repo.scan_blocks()


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
    missing: tuple[CID, ...] = ()  # referenced under the roots, in neither archive nor store
    unrooted: int = 0  # blocks of the archive no root reaches: stored, not pinned


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
        if pos + length > min(MAX_CID_BYTES, len(section)):
            raise ValueError(f"it would take {pos + length} bytes (at most {MAX_CID_BYTES})")
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
    if any(type(r) is not CID for r in header["roots"]):
        raise InvalidMessage("not a CAR v1 file (a root in its header is not a CID)")
    roots = tuple(header["roots"])

    count = messages = 0
    references: dict[bytes, tuple[CID, ...]] = {}  # each block of the archive → what it references
    schemas: dict[CID, dict[str, object]] = {}  # schema messages of the archive
    waiting: list[tuple[int, CID, bytes]] = []  # messages whose schema may come later

    def schema(ref: Any) -> dict[str, object] | None:
        return schemas.get(ref.cid.to_v1()) or _stored_schema(repo, ref.cid)

    def check(item: tuple[int, CID, bytes]) -> Checked | None:
        """The block checked, or None if a `$schema` it names is not known yet."""
        n, cid, data = item
        missing: list[CID] = []
        try:
            checked = check_block(cid, data, schema, missing)
        except InvalidMessage as e:
            raise InvalidMessage(f"CAR block {n}: {e}") from None
        return None if missing else checked

    with tempfile.SpooledTemporaryFile(max_size=32 << 20) as spool:

        def keep(items: list[tuple[int, CID, bytes]]) -> list[tuple[int, CID, bytes]]:
            """Check `items`, spool the good ones; those waiting for a schema are
            returned."""
            nonlocal count, messages
            waits, kept = [], []
            for item, checked in zip(items, check_many(items, check), strict=True):
                if checked is None:
                    waits.append(item)
                    continue
                if checked.signers is not None and b"json-schema" in checked.data:
                    message = checked.message or codec.decode_trusted(checked.data)
                    if message.get("kind") == "json-schema" and type(message.get("schema")) is dict:
                        schemas[checked.cid] = message
                # Plain tuples: pickling the dataclass, its CIDs and the decoded message
                # would cost more than storing.
                kept.append((checked.cid.raw, checked.data, checked.signers))
                references[checked.cid.raw] = checked.links + checked.schemas
                messages += checked.signers is not None
            count += len(kept)
            if kept:
                pickle.dump(kept, spool, pickle.HIGHEST_PROTOCOL)
            return waits

        n = 0
        chunk: list[tuple[int, CID, bytes]] = []
        size = 0
        while (length := _read_varint(stream)) is not None:
            n += 1
            if length > MAX_SECTION:
                raise InvalidMessage(f"CAR block {n} is {length} bytes, over the limit")
            cid, data = _split_cid(_read_exact(stream, length, f"block {n}"))
            chunk.append((n, cid, data))
            size += length
            if len(chunk) >= _CHECK_BLOCKS or size >= _CHECK_BYTES:
                waiting += keep(chunk)
                chunk, size = [], 0
        waiting += keep(chunk)
        while waiting:  # messages whose schema message comes later in the archive
            still = keep(waiting)
            if len(still) == len(waiting):  # no schema came: the first one waiting fails
                n, cid, data = still[0]
                try:
                    check_block(cid, data, schema)
                except MissingSchema as e:
                    raise MissingSchema(
                        f"CAR block {n}: $schema {e.cid} is neither in the archive nor in the repository",
                        "import the schema message first", e.cid,
                    ) from None
            waiting = still
        with repo.store.reader() as txn:  # the roots' DAGs walked over one snapshot
            missing, unrooted = _completeness(txn, roots, references)
        spool.seek(0)
        # Everything is verified: store in batches as `put` does (a crash leaves whole
        # batches, and importing the same archive again completes it); roots pinned last.
        spooled = _unspool(spool, count)
        for start in range(0, count, _BATCH):
            repo.store_received(itertools.islice(spooled, min(_BATCH, count - start)))
        repo.pin(roots)  # each is stored: checked above, and gc waits for unpinned_writes
    return Imported(roots, count, messages, tuple(missing), unrooted)


def _unspool(spool: IO[bytes], count: int) -> Iterator[Checked]:
    left = count
    while left > 0:
        for raw, data, signers in pickle.load(spool):
            yield Checked(CID(raw), data, signers, ())
            left -= 1


def _completeness(
    txn: Txn, roots: tuple[CID, ...], references: dict[bytes, tuple[CID, ...]]
) -> tuple[list[CID], int]:
    """What the roots' DAGs reference that neither the archive nor the store holds, and how
    many blocks of the archive no root reaches. A root held by neither fails the import:
    the header was damaged, or the archive cut before it."""
    for root in roots:
        key = root.to_v1().raw
        if key not in references and not blockstore.has(txn, key):
            raise InvalidMessage(
                f"CAR root {root} is neither in the archive nor in the repository",
                hint="the archive is truncated or its header damaged",
            )
    missing: list[CID] = []
    seen: set[bytes] = set()
    stack = [root.to_v1() for root in roots]
    while stack:
        cid = stack.pop()
        key = cid.raw
        if key in seen:
            continue
        seen.add(key)
        links = references.get(key)
        if links is None:
            data = blockstore.get(txn, key)
            if data is None:
                missing.append(cid)
                continue
            links = tuple(block_references(cid, bytes(data)))
        stack.extend(link.to_v1() for link in links)
    return missing, sum(key not in seen for key in references)


def _stored_schema(repo: Repository, cid: CID) -> dict[str, object] | None:
    try:
        return repo.message(cid.to_v1())
    except NotFound:
        return None
