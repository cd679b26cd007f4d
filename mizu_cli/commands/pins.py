"""mizu pin / unpin: keep blocks from garbage collection, or let them go."""

from __future__ import annotations

import typer

from mizu_cli.render import warn
from mizu_cli.state import state


def pin(
    ctx: typer.Context,
    cids: list[str] = typer.Argument(None, metavar="[CID]...", help="Blocks to pin; none lists the pins."),
) -> None:
    """Pin blocks so that gc keeps them and what they link; with no CID, list the pins."""
    from mizu_core.message.cid import parse_cid

    repo = state(ctx).repository()
    if not cids:
        for cid in repo.pins():
            print(cid)
        return
    repo.pin([parse_cid(c) for c in cids])


def unpin(
    ctx: typer.Context,
    cids: list[str] = typer.Argument(..., metavar="CID...", help="Blocks to unpin."),
) -> None:
    """Unpin blocks (own messages are pinned when published); gc may then drop them."""
    from mizu_core.message.cid import parse_cid

    repo = state(ctx).repository()
    parsed = [parse_cid(c) for c in cids]
    if repo.unpin(parsed) < len(parsed):
        warn("some of these blocks were not pinned")
