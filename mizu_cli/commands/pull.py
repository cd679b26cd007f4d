"""mizu pull / push: sync subscriptions with peers, git-fetch style."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from mizu_cli.render import human_size, print_json, warn
from mizu_cli.state import state

if TYPE_CHECKING:
    from mizu_core.api import Repository
    from mizu_core.message.cid import CID
    from mizu_core.sync.exchange import Report, Result
    from mizu_core.sync.session import Progress

    Exchange = Callable[[Repository, CID | None, list[str], Progress | None], Report]

TIMEOUT = typer.Option(5.0, "--timeout", metavar="SECONDS", help="Give up on a peer that does not connect within this, or answer within this plus 1 s per 16 KiB moved (default 5).")


def pull(
    ctx: typer.Context,
    sub: str = typer.Argument(None, metavar="[SUB]", help="The subscription (default: all)."),
    peers: list[str] = typer.Option(None, "--from", metavar="PEER", help="A remote name or peer multiaddr (repeatable; default: every remote)."),
    timeout: float = TIMEOUT,
) -> None:
    """Fetch new records of subscriptions from peers: roots, then the differing tree
    nodes, then the missing records and the blocks they link, each batch verified."""
    from mizu_core.sync import exchange

    _sync(ctx, sub, peers, lambda repo, cid, addrs, progress: exchange.pull(repo, cid, addrs, progress, timeout, check=False), "pulled")


def push(
    ctx: typer.Context,
    sub: str = typer.Argument(None, metavar="[SUB]", help="The subscription (default: all)."),
    peers: list[str] = typer.Option(None, "--to", metavar="PEER", help="A remote name or peer multiaddr (repeatable; default: every remote)."),
    timeout: float = TIMEOUT,
) -> None:
    """Send peers the records of subscriptions they track and lack."""
    from mizu_core.sync import exchange

    _sync(ctx, sub, peers, lambda repo, cid, addrs, _: exchange.push(repo, cid, addrs, timeout, check=False), "pushed")


def _sync(ctx: typer.Context, sub: str | None, peers: list[str] | None, run: Exchange, verb: str) -> None:
    from mizu_core.message.cid import parse_cid
    from mizu_core.sync.exchange import NO_RECORDS, PULLED, PUSHED, UNREACHABLE, UP_TO_DATE
    from mizu_core.sync.remotes import remote_addresses, resolve_peers

    st = state(ctx)
    repo = st.repository()
    addresses = resolve_peers(repo, peers or [])
    progress = _progress_bar() if sys.stderr.isatty() and not st.quiet and not st.json else None
    report = run(repo, parse_cid(sub) if sub else None, addresses, progress)
    if progress:
        sys.stderr.write("\n")
    failure = report.failure()
    if report.peers == 0 and failure is not None:  # no peer answered well: one error line
        if st.json and any(r.status != UNREACHABLE for r in report.results):  # and what those reached said
            print_json(report.as_json(), pretty=False)
        raise failure
    names = {address: name for name, address in remote_addresses(repo).items()}
    for result in report.results:
        if result.status in (UP_TO_DATE, NO_RECORDS):  # notes: what a pull that moved nothing found
            if not st.quiet and not st.json:
                warn(_line(result, names))
        elif result.status not in (PULLED, PUSHED):  # failures: always
            warn(_line(result, names))
    if st.json:
        print_json(report.as_json(), pretty=False)
    elif not st.quiet:
        size = report.bytes_received if verb == "pulled" else report.bytes_sent
        target = str(report.subscriptions[0]) if len(report.subscriptions) == 1 else f"{len(report.subscriptions)} subscriptions"
        direction = "from" if verb == "pulled" else "to"
        plural = "" if report.peers == 1 else "s"
        print(f"{verb} {report.records} records ({human_size(size)}) for {target} {direction} "
              f"{report.peers} peer{plural} in {report.seconds:.1f} s")
    if failure is not None:
        raise failure


def _line(result: Result, names: dict[str, str]) -> str:
    """One peer and subscription, as a line on standard error: the peer by its remote
    name, else its address."""
    from mizu_core.sync.exchange import NO_RECORDS, NOT_TRACKED, REFUSED, UP_TO_DATE

    peer = names.get(result.peer, result.peer)
    if result.status == UP_TO_DATE:
        return f"up to date with {peer} for {result.sub}"
    if result.status == REFUSED:
        return f"{peer} refused {result.sub}: {result.reason}"
    reason = result.reason or result.status
    if result.status in (NO_RECORDS, NOT_TRACKED):  # the session's words, after the peer id
        peer_id = result.peer.rsplit("/p2p/", 1)[-1]
        return f"{peer} {reason.removeprefix(peer_id + ' ')}"
    return f"{peer}: {reason}"


def _progress_bar() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} blocks")
        sys.stderr.flush()

    return show
