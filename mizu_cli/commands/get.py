"""mizu get: restore a stored file or folder tree to disk."""

from __future__ import annotations

from pathlib import Path

import typer

from mizu_cli.render import info
from mizu_cli.state import state


def get(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="CID[/PATH]", help="A file or folder."),
    destination: Path = typer.Argument(None, metavar="[DEST]", help="Where to write it (default: ./CID)."),
) -> None:
    """Write a stored file or folder tree to DEST, byte for byte.

    Entry names that would leave DEST (`..`, names with `/`) are refused before anything
    is written.
    """
    from mizu_core.files.tree import resolve_target, restore

    st = state(ctx)
    repo = st.repository()
    cid = resolve_target(repo, target)
    dest = destination or Path(str(cid.to_v1()))
    count = restore(repo, cid, dest)
    info(f"wrote {count} file{'s' if count != 1 else ''} to {dest}", st.quiet)
