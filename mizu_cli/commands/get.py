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

    DEST must not exist yet. The whole DAG is checked before anything is written: names
    that cannot be written as they are (`..`, `/`, too long), two entries with one name,
    folders nested past files.max-depth, more than files.max-entries entries counted along
    every path are refused. Then get writes exactly what the DAG holds, or nothing.
    """
    from mizu_core.files.tree import resolve_target, restore

    st = state(ctx)
    repo = st.repository()
    cid = resolve_target(repo, target)
    dest = destination or Path(str(cid.to_v1()))
    count = restore(repo, cid, dest)
    info(f"wrote {count} file{'s' if count != 1 else ''} to {dest}", st.quiet)
