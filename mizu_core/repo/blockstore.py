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

_SEQ_LEN = 8  # a MessageInfo starts with the message's seq, packed as its `log` key is


def get(txn: Txn, raw: bytes) -> bytes | None:
    """The block whose binary CIDv1 is `raw`, or None."""
    info = txn.get("messages", raw)
    if info is not None:
        data = txn.get("message_blocks", bytes(info[:_SEQ_LEN]))
        if data is not None:
            return data
    return txn.get("blocks", raw)


def has(txn: Txn, raw: bytes) -> bool:
    """Whether the block is stored (a stored message always has its block)."""
    return txn.get("messages", raw) is not None or txn.get("blocks", raw) is not None


def scan(txn: Txn) -> Iterator[tuple[bytes, bytes]]:
    """(binary CID, block) of every block: those kept by CID in CID order, then the
    messages' in arrival order. A message block whose log entry is missing is skipped
    (fsck reports it)."""
    for key, data in txn.scan("blocks"):
        yield bytes(key), data
    for seq_key, data in txn.scan("message_blocks"):
        raw = txn.get("log", seq_key)
        if raw is not None:
            yield bytes(raw), data


def count(txn: Txn) -> int:
    return txn.count("blocks") + txn.count("message_blocks")


def delete_message(txn: Txn, raw: bytes, seq_key: bytes) -> None:
    """Drop a message's block, kept by arrival or (older stores) by CID."""
    txn.delete("message_blocks", seq_key)
    txn.delete("blocks", raw)
