"""The arrival log: each message stored gets the next arrival number (its `seq`), and
`log` maps the number to the message's CID. `ingest.Ingest` writes it; a reader that
wants what arrived since it last looked reads it here.
"""

from __future__ import annotations

from collections.abc import Iterator

from mizu_core.repo.kv import Txn
from mizu_core.repo.tables import LOG, META, NEXT_SEQ, seq_key, seq_of


def next_seq(txn: Txn) -> int:
    """The arrival number the next new message gets: 1 in an empty store, and it only
    grows (gc does not give numbers back), so it also tells one store state from a later
    one that holds more messages."""
    raw = txn.get(META, NEXT_SEQ)
    return seq_of(raw) if raw else 1


def arrived_after(txn: Txn, seq: int) -> Iterator[bytes]:
    """The binary CIDs of the messages that arrived after arrival number `seq`, in order
    (those gc removed are not there)."""
    for _, raw in txn.scan(LOG, seq_key(seq + 1)):
        yield bytes(raw)
