"""mizu ls: list a stored folder."""

from __future__ import annotations

import typer

from mizu_cli.render import print_json
from mizu_cli.state import state


def ls(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="CID[/PATH]", help="A folder, or a path inside one."),
) -> None:
    """List a folder's entries: CID, cumulative size and name, in name order."""
    from mizu_core.files.tree import list_directory, resolve_target

    st = state(ctx)
    repo = st.repository()
    entries = list_directory(repo, resolve_target(repo, target))
    if st.json:
        print_json([{"cid": str(e.cid.to_v1()), "size": e.tsize, "name": e.name} for e in entries])
        return
    for e in entries:
        print(f"{e.cid.to_v1()} {e.tsize} {e.name}")
