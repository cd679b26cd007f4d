"""Which messages a subscription carries (SPEC §6): those matching a subject pattern of
its query on their own, their `$prev` ancestors, the blocks they link, and the query.

It over-approximates on purpose: the exact answer is computed by whoever runs the query.
"""

from __future__ import annotations

from collections.abc import Iterable

from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.update import prev_cids
from mizu_core.repo.ingest import read_message
from mizu_core.repo.kv import Txn


def closure(txn: Txn, messages: Iterable[CID]) -> set[CID]:
    """The messages, their `$prev` ancestors (those held here), and the blocks each links."""
    records: set[CID] = set()
    stack = list(messages)
    while stack:
        cid = stack.pop()
        if cid in records:
            continue
        records.add(cid)
        message = read_message(txn, cid)
        if message is None:
            continue
        stack.extend(prev_cids(message))
        records.update(link.to_v1() for link in codec.iter_links(message))
    return records
