"""The tables of subscriptions, for feeds/subscriptions.py, which owns what is in them:
each subscription's state (`subs`), its records (`sub_records`) and its prolly tree's nodes
(`sub_nodes`), the last two keyed under the subscription's CID. All CIDs here are binary
CIDv1; a subscription's is SUBSCRIPTION_CID_LEN bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

from mizu_core.repo.kv import Txn, prefix_end
from mizu_core.repo.tables import SUB_NODES, SUB_RECORDS, SUBS, member_of, subscription_key


def state(txn: Txn, sub: bytes) -> bytes | None:
    """The subscription's state as stored, or None if there is no such subscription."""
    return txn.get(SUBS, sub)


def states(txn: Txn) -> Iterator[tuple[bytes, bytes]]:
    """(CID, state) of every subscription, in CID order."""
    for key, value in txn.scan(SUBS):
        yield bytes(key), bytes(value)


def create(txn: Txn, sub: bytes, initial: bytes) -> bool:
    """Add a subscription in its `initial` state; False (and nothing changes) if it exists."""
    return txn.put(SUBS, sub, initial, overwrite=False)


def set_state(txn: Txn, sub: bytes, value: bytes) -> None:
    txn.put(SUBS, sub, value)


def drop(txn: Txn, sub: bytes) -> bool:
    """Remove a subscription with its records and tree; False if there was none."""
    if not txn.delete(SUBS, sub):
        return False
    for table in (SUB_RECORDS, SUB_NODES):
        for key, _ in list(txn.scan(table, sub, prefix_end(sub))):
            txn.delete(table, bytes(key))
    return True


def add_record(txn: Txn, sub: bytes, record: bytes) -> bool:
    """False if it was a record of the subscription already."""
    return txn.put(SUB_RECORDS, subscription_key(sub, record), b"", overwrite=False)


def has_record(txn: Txn, sub: bytes, record: bytes) -> bool:
    return txn.get(SUB_RECORDS, subscription_key(sub, record)) is not None


def records(txn: Txn, sub: bytes) -> Iterator[bytes]:
    """The CIDs of the subscription's records, in CID order."""
    for key, _ in txn.scan(SUB_RECORDS, sub, prefix_end(sub)):
        yield member_of(key)


def node(txn: Txn, sub: bytes, cid: bytes) -> bytes | None:
    """A node of the subscription's tree, or None."""
    data = txn.get(SUB_NODES, subscription_key(sub, cid))
    return bytes(data) if data is not None else None


def nodes(txn: Txn, sub: bytes) -> list[bytes]:
    """The CIDs of every node kept of the subscription's trees, in CID order."""
    return [member_of(key) for key, _ in txn.scan(SUB_NODES, sub, prefix_end(sub))]


def add_node(txn: Txn, sub: bytes, cid: bytes, data: bytes) -> None:
    txn.put(SUB_NODES, subscription_key(sub, cid), data, overwrite=False)


def drop_node(txn: Txn, sub: bytes, cid: bytes) -> None:
    txn.delete(SUB_NODES, subscription_key(sub, cid))
