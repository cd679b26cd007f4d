"""mizu view (alias view-raw): print a message, a path inside it, or its update view."""

from __future__ import annotations

import typer

from mizu_cli.render import print_json
from mizu_cli.state import state


def view(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="CID[/PATH]", help="Message CID, optionally with a path inside it."),
    update: bool = typer.Option(False, "--update", "-u", help="Merge the message with all its $prev ancestors."),
    compact: bool = typer.Option(False, "--compact", help="One line of JSON instead of pretty-printed."),
) -> None:
    """Print a stored message as JSON, exactly as it was published.

    A path (CID/a/b/0) selects a sub-object, following CID links into other local blocks.
    --update prints the SPEC §5 merge of the message and its $prev chain.
    """
    from mizu_core.errors import UsageError
    from mizu_core.message import codec
    from mizu_core.message.cid import parse_cid
    from mizu_core.message.uris import parse_static

    ref = parse_static(target)
    if ref is not None:
        cid, path = ref.cid, ref.path
        update = update or ref.action == "update"
    else:
        cid_text, _, path = target.partition("/")
        cid = parse_cid(cid_text)
    repo = state(ctx).repository()
    if update:
        if path:
            raise UsageError("--update takes a CID without a path")
        value = _update_view(repo, cid)
    else:
        value = repo.resolve(cid, path)
    print_json(codec.to_json(value), pretty=not compact)


def _update_view(repo, cid):  # type: ignore[no-untyped-def]
    """The update view; ancestors missing here are fetched from the remotes first."""
    from mizu_core.errors import MissingAncestor

    try:
        return repo.update_view(cid).value
    except MissingAncestor:
        from mizu_core.sync.exchange import fetch_ancestors
        from mizu_core.sync.remotes import resolve_peers

        peers = resolve_peers(repo, [])
        if not peers:
            raise
        fetch_ancestors(repo, cid, peers)
        return repo.update_view(cid).value

