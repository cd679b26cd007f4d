"""What feeds keep alive: the roots gc keeps besides the repository's pins."""

from __future__ import annotations

from collections.abc import Callable

from mizu_core.feeds import filters
from mizu_core.feeds.subscriptions import forget_asked, record_cids
from mizu_core.message.cid import CID
from mizu_core.repo import subscription_tables
from mizu_core.repo.kv import Txn
from mizu_core.repo.repository import Repository


def gc_roots(repo: Repository) -> Callable[[Txn], list[CID]]:
    """Each followed subscription's query and records (read in gc's own transaction, so
    none that arrives meanwhile is lost) and the messages the pin filter covers (judged
    now). The feeds peers asked for keep nothing: gc drops them, so that none is left with
    records gc collected (a peer's next ask builds it again over what is left)."""
    pinned_by_filter = list(filters.covered(repo, "pin"))

    def roots(txn: Txn) -> list[CID]:
        forget_asked(txn)
        subscribed = [CID(raw) for raw, _ in subscription_tables.states(txn)]
        return [*pinned_by_filter, *subscribed,
                *(record for sub in subscribed for record in record_cids(txn, sub))]

    return roots
