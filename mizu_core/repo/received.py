"""Blocks that come from elsewhere (peers, CAR files): checked, then stored.

Every block is re-hashed; messages are validated and their signatures verified exactly as
a local publish would; dag-pb blocks must be UnixFS; other codecs are refused. Nothing is
stored until a whole batch has been checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW
from mizu_core.message.dagpb import decode_node
from mizu_core.message.triples import triple_terms
from mizu_core.message.validate import schema_cids
from mizu_core.repo import blockstore
from mizu_core.repo.index import TermCache
from mizu_core.repo.ingest import Ingest, prepare_block
from mizu_core.repo.kv import Txn

T = TypeVar("T")
# Messages stored at a time, and between releases of the store's mapped pages (as a
# publish does, publish/batches.py's STORE_SLICE).
_STORE_SLICE = 128


@dataclass(frozen=True, slots=True)
class Checked:
    cid: CID
    data: bytes
    signers: tuple[bytes, ...] | None  # None: a file block, not a message
    links: tuple[CID, ...]
    schemas: tuple[CID, ...] = ()  # the schema messages a message's `$schema` names
    # The decoded message, kept from the check for the store (not pickled by CAR import)
    message: dict[str, Any] | None = field(default=None, compare=False, repr=False)


def check_block(
    cid: CID, data: bytes, schema_lookup: Callable[[Any], dict[str, Any] | None] | None = None,
    missing_schemas: list[CID] | None = None,
) -> Checked:
    """A block checked as `put` checks a message (`validate_message` judges both). A
    `$schema` not found raises `MissingSchema`; with `missing_schemas` it is added there
    instead (the caller checks the block again once it has the schema)."""
    cid = cid.to_v1()
    if not cid.matches(data):
        raise InvalidMessage(f"block does not hash to its CID {cid}")
    if cid.codec == DAG_CBOR:
        prepared = prepare_block(cid, data, schema_lookup, missing_schemas)
        links = tuple(dict.fromkeys(link.to_v1() for link in codec.iter_links(prepared.message)))
        schemas = tuple(schema_cids(prepared.message)) if b"$schema" in data else ()
        return Checked(cid, data, prepared.signers, links, schemas, prepared.message)
    if cid.codec == DAG_PB:
        return Checked(cid, data, None, tuple(link.cid.to_v1() for link in decode_node(data).links))
    if cid.codec == RAW:
        return Checked(cid, data, None, ())
    raise InvalidMessage(f"{cid}: codec 0x{cid.codec:x} is not supported")


def check_many(blocks: Iterable[T], check: Callable[[T], Checked | None]) -> list[Checked | None]:
    """`check` of each block, in order: the one loop a pull and a CAR import check their
    batches with (checking on two threads gained nothing measurable: docs/performance.md)."""
    return [check(block) for block in blocks]


def store_checked(txn: Txn, blocks: Iterable[Checked], release: Callable[[], None] | None = None,
                  terms: TermCache | None = None) -> int:
    """Store checked blocks in the caller's write transaction; returns how many were new.
    `release`: the store's `release_pages`, called between slices of messages so that a
    long transaction does not keep every index page it read mapped; `terms`: as `Ingest`
    takes them (a pull's batches share them)."""
    ingest = Ingest(txn, release, terms)
    files = 0
    pending: list[Any] = []
    for block in blocks:
        if block.signers is None:
            files += blockstore.put(txn, block.cid.raw, block.data)
            continue
        message = block.message if block.message is not None else codec.decode_trusted(block.data)
        pending.append((block.cid.raw, block.data, block.signers, triple_terms(block.cid, message)))
        if len(pending) == _STORE_SLICE:
            ingest.store_many(pending, pin=None)
            pending = []
            if release is not None:
                release()
    if pending:
        ingest.store_many(pending, pin=None)
    ingest.finish()
    return ingest.added + files
