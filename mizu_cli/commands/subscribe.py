"""mizu subscribe / unsubscribe / subscriptions: the feeds this node tracks and shares."""

from __future__ import annotations

import sys

import typer

from mizu_cli.render import print_json, warn
from mizu_cli.state import state


def subscribe(
    ctx: typer.Context,
    query: str = typer.Argument(..., metavar="QUERY|CID[/PATH]|-", help="A json-rql query (- reads stdin), the CID of a message holding one, or CID/PATH for a query inside a message."),
) -> None:
    """Track a query: its records are kept, pulled, served to peers, and re-shared.

    A query given as text is published unsigned, so the same query names the same feed
    (the same CID) on every node; so is the pointer that names CID/PATH, a query inside a
    message (a stream's named query). Prints the subscription's CID.
    """
    from mizu_core.feeds import subscriptions
    from mizu_core.message import codec
    from mizu_core.message.cid import CID

    st = state(ctx)
    repo = st.repository()
    text = sys.stdin.read() if query == "-" else query
    if text.lstrip().startswith("{"):
        sub, new = subscriptions.subscribe(repo, codec.parse_json(text, links=True))
    else:
        cid_text, _, path = text.strip().partition("/")
        try:
            cid = CID.parse(cid_text)
        except ValueError:
            from mizu_core.errors import UsageError

            raise UsageError(f"'{text.strip()}' is neither a JSON query nor a CID[/PATH]") from None
        sub, new = subscriptions.subscribe(repo, cid=cid, path=path)
    print(sub.cid)
    if not st.quiet and not new:
        warn("already subscribed")
    elif not st.quiet and not sub.active and path.strip("/"):
        warn(f"message {cid.to_v1()} is not here yet: 'mizu pull' fetches it with the records")
    elif not st.quiet and not sub.active:
        warn("the query is not here yet: 'mizu pull' fetches it with the records")


def unsubscribe(
    ctx: typer.Context,
    cid: str = typer.Argument(..., metavar="CID", help="The subscription to drop."),
) -> None:
    """Stop tracking a subscription; its records stay until gc finds nothing keeps them."""
    from mizu_core.feeds import subscriptions
    from mizu_core.message.cid import parse_cid

    subscriptions.unsubscribe(state(ctx).repository(), parse_cid(cid))


def subscriptions(
    ctx: typer.Context,
    asked: bool = typer.Option(False, "--asked", help="Also list the feeds peers asked this node for (mizu-serve(1))."),
) -> None:
    """List subscriptions: CID, number of records, tree root (--json for scripts)."""
    from mizu_core.errors import NotFound
    from mizu_core.feeds import subscriptions as subs

    st = state(ctx)
    repo = st.repository()
    listing = []
    for s in subs.listing(repo, asked=asked):
        try:
            listing.append((subs.refresh(repo, s.cid), subs.query_path(repo, s.cid)))
        except NotFound:
            continue  # an asked feed a running serve dropped meanwhile
    if st.json:
        print_json([{"cid": str(s.cid), "records": s.records, "root": str(s.root) if s.root else None,
                     "active": s.active, "query": path, "asked": _utc(s.asked) if s.asked else None}
                    for s, path in listing])
        return
    for s, path in listing:
        status = f"{s.records} records" if s.active else "waiting for its query"
        notes = ([f"query at {path}"] if path else []) + ([f"asked for by peers, last {_utc(s.asked)}"] if s.asked else [])
        print("\t".join([str(s.cid), status, str(s.root), *notes]))


def _utc(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
