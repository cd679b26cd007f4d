"""mizu view (alias view-raw): print a message, a path inside it, or its update view."""

from __future__ import annotations

import typer

from mizu_cli.show import show
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
    show(state(ctx).repository(), target, update, compact)
