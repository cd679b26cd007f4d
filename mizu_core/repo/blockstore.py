"""Blocks by CID, wherever the store keeps them.

A message's block is kept under its arrival number (`message_blocks`: seq → block, the
same key as its `log` entry). Messages arrive in order, so a put appends their blocks at
the end of that table; kept by CID, each block would go to a random page, and every batch
would rewrite most of the table (docs/decisions.md). Every other block (file chunks and
nodes, blocks received that are not messages) is kept by CID in `blocks`, as are the
messages of stores written before `message_blocks` existed, which stay readable as they are.
"""

from __future__ import annotations

from collections.abc import Iterator

from mizu_core.repo.kv import Txn
from mizu_core.repo.tables import BLOCKS, LOG, MESSAGE_BLOCKS, MESSAGES, SEQ


def get(txn: Txn, raw: bytes) -> bytes | None:
    """The block whose binary CIDv1 is `raw`, or None."""
    info = txn.get(MESSAGES, raw)
    if info is not None:
        data = txn.get(MESSAGE_BLOCKS, bytes(info[:SEQ.size]))  # a MessageInfo starts with it
        if data is not None:
            return data
    return txn.get(BLOCKS, raw)


def has(txn: Txn, raw: bytes) -> bool:
    """Whether the block is stored (a stored message always has its block)."""
    return txn.get(MESSAGES, raw) is not None or txn.get(BLOCKS, raw) is not None


def is_message(txn: Txn, raw: bytes) -> bool:
    """Whether a message with this CID is stored as one (with its arrival number and
    signers), not only a block kept by CID."""
    return txn.get(MESSAGES, raw) is not None


def put(txn: Txn, raw: bytes, data: bytes) -> bool:
    """Keep a block that is not a message's (a file's chunk or node, a block received) by
    its CID; False if it was stored already. Messages go in through `ingest.Ingest`."""
    return txn.put(BLOCKS, raw, data, overwrite=False)


def scan(txn: Txn) -> Iterator[tuple[bytes, bytes]]:
    """(binary CID, block) of every block: those kept by CID in CID order, then the
    messages' in arrival order. A message block whose log entry is missing is skipped
    (fsck reports it)."""
    for key, data in txn.scan(BLOCKS):
        yield bytes(key), data
    for seq_key, data in txn.scan(MESSAGE_BLOCKS):
        raw = txn.get(LOG, seq_key)
        if raw is not None:
            yield bytes(raw), data


def count(txn: Txn) -> int:
    return txn.count(BLOCKS) + txn.count(MESSAGE_BLOCKS)


def delete_message(txn: Txn, raw: bytes, seq_key: bytes) -> None:
    """Drop a message's block, kept by arrival or (older stores) by CID."""
    txn.delete(MESSAGE_BLOCKS, seq_key)
    txn.delete(BLOCKS, raw)
