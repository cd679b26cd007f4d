"""Pins: the blocks gc keeps, with what they link (`pins`: binary CID → why pinned)."""

from __future__ import annotations

from collections.abc import Iterator

from mizu_core.repo.kv import Txn
from mizu_core.repo.tables import PIN_USER, PINS


def pin(txn: Txn, raw: bytes, why: bytes = PIN_USER) -> bool:
    """Pin the block with this binary CID; False if it was pinned already (it keeps the
    reason it had)."""
    return txn.put(PINS, raw, why, overwrite=False)


def unpin(txn: Txn, raw: bytes) -> bool:
    """False if it was not pinned."""
    return txn.delete(PINS, raw)


def is_pinned(txn: Txn, raw: bytes) -> bool:
    return txn.get(PINS, raw) is not None


def pinned(txn: Txn) -> Iterator[bytes]:
    """The binary CIDs of every pin, in CID order."""
    for key, _ in txn.scan(PINS):
        yield bytes(key)
