"""Blocks that come from elsewhere (peers, CAR files): checked, then stored.

Every block is re-hashed; messages are validated and their signatures verified exactly as
a local publish would; dag-pb blocks must be UnixFS; other codecs are refused. Nothing is
stored until a whole batch has been checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW
from mizu_core.message.dagpb import decode_node
from mizu_core.message.validate import schema_cids
from mizu_core.repo import blockstore
from mizu_core.repo.ingest import Ingest, Prepared, prepare_block
from mizu_core.repo.kv import Txn


@dataclass(frozen=True, slots=True)
class Checked:
    cid: CID
    data: bytes
    signers: tuple[bytes, ...] | None  # None: a file block, not a message
    links: tuple[CID, ...]
    schemas: tuple[CID, ...] = ()  # the schema messages a message's `$schema` names


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
        return Checked(cid, data, prepared.signers, links, schemas)
    if cid.codec == DAG_PB:
        return Checked(cid, data, None, tuple(link.cid.to_v1() for link in decode_node(data).links))
    if cid.codec == RAW:
        return Checked(cid, data, None, ())
    raise InvalidMessage(f"{cid}: codec 0x{cid.codec:x} is not supported")


def store_checked(txn: Txn, blocks: Iterable[Checked]) -> int:
    """Store checked blocks in the caller's write transaction; returns how many were new."""
    ingest = Ingest(txn)
    files = 0
    for block in blocks:
        if block.signers is None:
            files += blockstore.put(txn, block.cid.raw, block.data)
        else:
            message = codec.decode_trusted(block.data)
            ingest.store(Prepared(block.cid, block.data, message, block.signers), pin=None)
    ingest.finish()
    return ingest.added + files
