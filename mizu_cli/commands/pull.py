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
    from mizu_core.sync.exchange import Report
    from mizu_core.sync.session import Progress

    Exchange = Callable[[Repository, CID | None, list[str], Progress | None], Report]

TIMEOUT = typer.Option(5.0, "--timeout", metavar="SECONDS", help="Give up on a peer that does not connect, or answer a request, within this (default 5).")


def pull(
    ctx: typer.Context,
    sub: str = typer.Argument(None, metavar="[SUB]", help="The subscription (default: all)."),
    peers: list[str] = typer.Option(None, "--from", metavar="PEER", help="A remote name or peer multiaddr (repeatable; default: every remote)."),
    timeout: float = TIMEOUT,
) -> None:
    """Fetch new records of subscriptions from peers: roots, then the differing tree
    nodes, then the missing records and the blocks they link, each batch verified."""
    from mizu_core.sync import exchange

    _sync(ctx, sub, peers, lambda repo, cid, addrs, progress: exchange.pull(repo, cid, addrs, progress, timeout), "pulled")


def push(
    ctx: typer.Context,
    sub: str = typer.Argument(None, metavar="[SUB]", help="The subscription (default: all)."),
    peers: list[str] = typer.Option(None, "--to", metavar="PEER", help="A remote name or peer multiaddr (repeatable; default: every remote)."),
    timeout: float = TIMEOUT,
) -> None:
    """Send peers the records of subscriptions they track and lack."""
    from mizu_core.sync import exchange

    _sync(ctx, sub, peers, lambda repo, cid, addrs, _: exchange.push(repo, cid, addrs, timeout), "pushed")


def _sync(ctx: typer.Context, sub: str | None, peers: list[str] | None, run: Exchange, verb: str) -> None:
    from mizu_core.message.cid import parse_cid
    from mizu_core.sync.remotes import resolve_peers

    st = state(ctx)
    repo = st.repository()
    addresses = resolve_peers(repo, peers or [])
    progress = _progress_bar() if sys.stderr.isatty() and not st.quiet and not st.json else None
    report = run(repo, parse_cid(sub) if sub else None, addresses, progress)
    if progress:
        sys.stderr.write("\n")
    for peer, error in report.errors:
        warn(f"{peer}: {error}")
    if st.json:
        print_json(report.as_json(), pretty=False)
    elif not st.quiet:
        size = report.bytes_received if verb == "pulled" else report.bytes_sent
        target = str(report.subscriptions[0]) if len(report.subscriptions) == 1 else f"{len(report.subscriptions)} subscriptions"
        direction = "from" if verb == "pulled" else "to"
        plural = "" if report.peers == 1 else "s"
        print(f"{verb} {report.records} records ({human_size(size)}) for {target} {direction} "
              f"{report.peers} peer{plural} in {report.seconds:.1f} s")


def _progress_bar() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} blocks")
        sys.stderr.flush()

    return show
