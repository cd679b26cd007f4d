"""Porcelain of sync: pull, push and network queries over a list of peers, summed up in
one report. No peer reachable is a PeerError (exit 4); only bad data is RejectedData (1).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mizu_core.errors import MizuError, NotServed, PeerError, RejectedData
from mizu_core.feeds import subscriptions
from mizu_core.message.cid import CID
from mizu_core.repo.repository import Repository
from mizu_core.sync.session import Progress, SyncSession, Transfer


@dataclass
class Report:
    subscriptions: list[CID]
    records: int = 0
    blocks: int = 0
    nodes: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    peers: int = 0  # peers that answered
    seconds: float = 0.0
    connect_seconds: float = 0.0
    exchange_seconds: float = 0.0  # after connecting: what the transfer itself took
    errors: list[tuple[str, str]] = field(default_factory=list)  # (peer address, why)

    def add(self, transfer: Transfer) -> None:
        self.records += transfer.records
        self.blocks += transfer.blocks
        self.nodes += transfer.nodes
        self.bytes_received += transfer.bytes_received
        self.bytes_sent += transfer.bytes_sent

    def as_json(self) -> dict[str, Any]:
        return {
            "subscriptions": [str(s) for s in self.subscriptions], "records": self.records,
            "blocks": self.blocks, "nodes": self.nodes, "bytes_received": self.bytes_received,
            "bytes_sent": self.bytes_sent, "peers": self.peers, "seconds": round(self.seconds, 3),
            "connect_seconds": round(self.connect_seconds, 3),
            "exchange_seconds": round(self.exchange_seconds, 3),
            "errors": [{"peer": p, "error": e} for p, e in self.errors],
        }


def _subs(repo: Repository, sub: CID | None) -> list[CID]:
    if sub is not None:
        return [subscriptions.get(repo, sub).cid]
    subs = [s.cid for s in subscriptions.listing(repo)]
    if not subs:
        raise MizuError("no subscriptions", hint="subscribe first: mizu subscribe QUERY|CID")
    return subs


def _over_subs(subs: list[CID], each: Callable[[SyncSession, CID], Awaitable[Transfer]]
               ) -> Callable[[SyncSession], Awaitable[list[Transfer]]]:
    async def action(session: SyncSession) -> list[Transfer]:
        transfers = []
        for sub in subs:
            with contextlib.suppress(NotServed):  # a peer without this feed: the next feed
                transfers.append(await each(session, sub))
        return transfers

    return action


def pull(repo: Repository, sub: CID | None, peers: list[str], progress: Progress | None = None,
         timeout: float = 5.0) -> Report:
    """Fetch what the peers have for one subscription (or all), peer after peer, then from
    the other providers the DHT of those peers knows."""
    subs = _subs(repo, sub)
    action = _over_subs(subs, lambda s, c: s.pull(c, progress))
    return _exchange(repo, Report(subs), peers, action, timeout, discover=subs)


def push(repo: Repository, sub: CID | None, peers: list[str], timeout: float = 5.0) -> Report:
    """Send the peers what they lack of one subscription (or all) they track."""
    subs = _subs(repo, sub)
    return _exchange(repo, Report(subs), peers, _over_subs(subs, lambda s, c: s.push(c)), timeout)


def network_query(repo: Repository, query: Any, peers: list[str], timeout: float = 5.0) -> Report:
    """Ask peers for the records an ad-hoc query needs; store what verifies."""
    return _exchange(repo, Report([]), peers, lambda s: s.query(query), timeout)


def fetch(repo: Repository, cids: list[CID], peers: list[str], timeout: float = 5.0) -> Report:
    """Fetch given blocks (and what they link) from the first peers that have them."""
    async def action(session: SyncSession) -> Transfer:
        transfer = Transfer()
        missing = [c for c in cids if not repo.has(c)]
        if missing:
            await session.fetch(missing, transfer)
        return transfer

    return _exchange(repo, Report([]), peers, action, timeout)


def fetch_ancestors(repo: Repository, cid: CID, peers: list[str], timeout: float = 5.0) -> Report:
    """Fetch the `$prev` ancestors of a message that are missing here (SPEC §5)."""
    from mizu_core.errors import MissingAncestor, NotFound

    async def action(session: SyncSession) -> Transfer:
        transfer = Transfer()
        while True:
            try:
                repo.update_view(cid)
                return transfer
            except MissingAncestor as e:
                await session.fetch([e.cid], transfer)
                if not repo.has(e.cid):
                    raise NotFound(f"{session.peer} does not have ancestor {e.cid}") from None

    return _exchange(repo, Report([]), peers, action, timeout)


def _exchange(repo: Repository, report: Report, peers: list[str],
              action: Callable[[SyncSession], Awaitable[Any]], timeout: float,
              discover: list[CID] | None = None) -> Report:
    from mizu_core.sync.node import with_peers

    started = time.monotonic()
    outcomes = with_peers(repo, peers, action, timeout, discover)
    report.seconds = time.monotonic() - started
    for outcome in outcomes:
        if outcome.error is not None:
            report.errors.append((outcome.address, str(outcome.error)))
            continue
        report.peers += 1
        report.connect_seconds += outcome.connect_seconds
        report.exchange_seconds += outcome.exchange_seconds
        for transfer in outcome.result if isinstance(outcome.result, list) else [outcome.result]:
            report.add(transfer)
    if report.peers == 0:
        errors = [o.error for o in outcomes if o.error is not None]
        # Bad data outranks unreachable peers: cron tells "no peers" (4) from "bad data" (1).
        worst = next((e for e in errors if isinstance(e, RejectedData)), errors[0] if errors else None)
        raise type(worst)(f"no peer answered well: {worst}") if worst else PeerError("no peer answered")
    return report
