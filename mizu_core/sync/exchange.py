"""Porcelain of sync: pull, push and network queries over a list of peers, summed up in
one report. No peer reachable is a PeerError (exit 4); only bad data is RejectedData (1).

A pull or push reports, for each peer and subscription, what came of it (`Result`): it
moved records, was up to date, the peer holds no records for the feed (or does not track
it, for a push), refused (an error frame, naming why), sent bad data, failed on the way,
or could not be reached. A subscription that no peer answered well fails the command.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mizu_core.errors import MizuError, NotServed, PeerError, RejectedData, shorten
from mizu_core.feeds import subscriptions
from mizu_core.message.cid import CID
from mizu_core.repo.repository import Repository
from mizu_core.sync.session import Progress, Refused, SyncSession, Transfer

# What came of one subscription with one peer (Result.status):
PULLED, PUSHED, UP_TO_DATE, NO_RECORDS = "pulled", "pushed", "up-to-date", "no-records"
NOT_TRACKED, REFUSED, REJECTED, FAILED, UNREACHABLE = "not-tracked", "refused", "rejected", "failed", "unreachable"
ANSWERED = frozenset({PULLED, PUSHED, UP_TO_DATE, NO_RECORDS})  # the peer answered well


@dataclass
class Result:
    """One subscription with one peer."""

    peer: str  # the address contacted
    sub: CID
    status: str
    records: int = 0  # records new here (pulled) or the peer lacked (pushed)
    reason: str | None = None  # why, for no-records and every failure: the peer's words for a refusal
    error: MizuError | None = None

    def as_json(self) -> dict[str, Any]:
        return {"peer": self.peer, "subscription": str(self.sub), "status": self.status,
                "records": self.records, "reason": self.reason}


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
    results: list[Result] = field(default_factory=list)  # pull and push: per peer and subscription

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
            "results": [r.as_json() for r in self.results],
        }

    def failure(self) -> MizuError | None:
        """The error a pull or push ends with: None when every subscription was answered
        well by some peer; else the worst failure of those that were not (bad data, exit
        1, outranks the others, exit 4: cron tells "no peers" from "bad data")."""
        answered = {r.sub for r in self.results if r.status in ANSWERED}
        failed = [r for r in self.results if r.sub not in answered]
        if not failed:
            return None
        unanswered = list(dict.fromkeys(r.sub for r in failed))
        what = "" if len(unanswered) == len(self.subscriptions) else \
            f" for {unanswered[0]}" if len(unanswered) == 1 else f" for {len(unanswered)} subscriptions"
        error = _worst([r.error for r in failed if r.error is not None], what)
        kept = sum(r.records for r in failed)  # stored from a peer before it failed (a pull)
        if kept:  # the one line says what a pull cut short kept, and that it resumes
            error = _like(error, f"{error} ({kept} new records kept; the next pull fetches the rest)")
        return error


def _worst(errors: list[MizuError], what: str = "") -> MizuError:
    """The one error for failures where no peer answered well: bad data (exit 1)
    outranks the others (exit 4), so cron tells "bad data" from "no peers"."""
    worst = next((e for e in errors if isinstance(e, RejectedData)), errors[0] if errors else None)
    if worst is None:
        return PeerError("no peer answered")
    return _like(worst, f"no peer answered well{what}: {worst}")


def _like(error: MizuError, message: str) -> MizuError:
    """An error of `error`'s kind (so its exit code) with another message."""
    if isinstance(error, Refused):
        return PeerError(message, error.hint)
    try:
        return type(error)(message, hint=error.hint)
    except TypeError:  # a constructor of its own
        return (RejectedData if isinstance(error, RejectedData) else
                PeerError if isinstance(error, PeerError) else MizuError)(message, error.hint)


def broken(peer: str, error: Exception) -> PeerError:
    """An exchange that ended in a library's error, as one line: a connection reset or
    closed under a request is a StreamReset or a StreamEOF, with no text of its own."""
    name = type(error).__name__
    text = shorten(" ".join(str(error).split()), 200)
    lost = any(c.__name__ in _LOST for c in type(error).__mro__)
    what = "the connection was lost" if lost else "the exchange failed"
    return PeerError(f"{peer}: {what} ({name}{': ' + text if text else ''})")


# What libp2p's and trio's errors for a connection or stream gone derive from (by name:
# libp2p is not imported here)
_LOST = frozenset({"IOException", "MuxedConnError", "MuxedStreamError", "OSError", "EOFError",
                   "BrokenResourceError", "ClosedResourceError"})


def _subs(repo: Repository, sub: CID | None) -> list[CID]:
    if sub is not None:
        return [subscriptions.get(repo, sub).cid]
    subs = [s.cid for s in subscriptions.listing(repo)]
    if not subs:
        raise MizuError("no subscriptions", hint="subscribe first: mizu subscribe QUERY|CID")
    return subs


@dataclass
class _Step:
    """One subscription with the peer of a session (the peer's address comes later)."""

    sub: CID
    status: str
    transfer: Transfer
    reason: str | None = None
    error: MizuError | None = None


def _over_subs(subs: list[CID], each: Callable[[SyncSession, CID, Transfer], Awaitable[Transfer]],
               done: str, not_served: str) -> Callable[[SyncSession], Awaitable[list[_Step]]]:
    """An action that runs `each` for every subscription over one session. A feed the
    peer does not hold, or a refusal, moves on to the next feed (the stream is fine);
    any other failure ends the exchange with that peer, the feeds not reached untried."""
    async def action(session: SyncSession) -> list[_Step]:
        steps = []
        for sub in subs:
            transfer = Transfer()
            try:
                await each(session, sub, transfer)
            except NotServed as e:
                steps.append(_Step(sub, not_served, transfer, str(e), None if not_served in ANSWERED else e))
                continue
            except Refused as e:
                steps.append(_Step(sub, REFUSED, transfer, e.reason, e))
                continue
            except MizuError as e:
                steps.append(_Step(sub, REJECTED if isinstance(e, RejectedData) else FAILED, transfer, str(e), e))
                break
            except Exception as e:  # a broken connection
                error = broken(session.peer, e)
                steps.append(_Step(sub, FAILED, transfer, str(error), error))
                break
            steps.append(_Step(sub, UP_TO_DATE if transfer.up_to_date else done, transfer))
        return steps

    return action


def pull(repo: Repository, sub: CID | None, peers: list[str], progress: Progress | None = None,
         timeout: float = 5.0, check: bool = True) -> Report:
    """Fetch what the peers have for one subscription (or all), peer after peer, then from
    the other providers the DHT of those peers knows. With `check`, raise the report's
    failure (else the caller shows the report, then calls `failure`)."""
    subs = _subs(repo, sub)
    action = _over_subs(subs, lambda s, c, t: s.pull(c, progress, t), PULLED, NO_RECORDS)
    return _sync(repo, Report(subs), peers, action, timeout, subs, check)


def push(repo: Repository, sub: CID | None, peers: list[str], timeout: float = 5.0,
         check: bool = True) -> Report:
    """Send the peers what they lack of one subscription (or all) they track."""
    subs = _subs(repo, sub)
    action = _over_subs(subs, lambda s, c, t: s.push(c, t), PUSHED, NOT_TRACKED)
    return _sync(repo, Report(subs), peers, action, timeout, None, check)


def _sync(repo: Repository, report: Report, peers: list[str],
          action: Callable[[SyncSession], Awaitable[list[_Step]]], timeout: float,
          discover: list[CID] | None, check: bool) -> Report:
    from mizu_core.sync.node import with_peers

    started = time.monotonic()
    outcomes = with_peers(repo, peers, action, timeout, discover)
    report.seconds = time.monotonic() - started
    answered: set[str] = set()
    for outcome in outcomes:
        if outcome.error is not None:  # not reached: every subscription alike
            report.results.extend(Result(outcome.address, sub, UNREACHABLE, reason=str(outcome.error),
                                         error=outcome.error) for sub in report.subscriptions)
            report.errors.append((outcome.address, str(outcome.error)))
            continue
        report.connect_seconds += outcome.connect_seconds
        report.exchange_seconds += outcome.exchange_seconds
        steps: list[_Step] = outcome.result
        for step in steps:
            report.add(step.transfer)
            report.results.append(Result(outcome.address, step.sub, step.status, step.transfer.records,
                                         step.reason, step.error))
            if step.status in ANSWERED:
                answered.add(outcome.address)
            elif (outcome.address, str(step.error)) not in report.errors:
                report.errors.append((outcome.address, str(step.error)))
        if len(steps) < len(report.subscriptions) and steps and steps[-1].error is not None:
            last = steps[-1]  # the exchange ended there: the feeds after it were not tried
            report.results.extend(
                Result(outcome.address, sub, FAILED, reason=f"not tried after: {last.error}", error=last.error)
                for sub in report.subscriptions[len(steps):])
    report.peers = len(answered)
    failure = report.failure() if check else None
    if failure is not None:
        raise failure
    return report


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
        raise _worst([o.error for o in outcomes if o.error is not None])
    return report
