"""mizu backup: snapshot a website folder; --diff compares two snapshots."""

from __future__ import annotations

from pathlib import Path

import typer

from mizu_cli.render import info, print_json
from mizu_cli.state import state


def backup(
    ctx: typer.Context,
    source: Path = typer.Argument(None, help="The site's folder (e.g. what `wget --mirror` made)."),
    site: str = typer.Option(None, "--site", help="The site's name (default: the folder's name)."),
    diff: tuple[str, str] = typer.Option((None, None), "--diff", metavar="OLD NEW", help="List pages added, removed and changed between two snapshots."),
) -> None:
    """Back up a website folder: its files, one message per page, one signed snapshot.

    The snapshot message links every page and the folder, with $prev naming the site's
    previous snapshot; its CID is printed last. `mizu get SNAPSHOT DEST` restores the site.
    """
    from mizu_core.errors import UsageError
    from mizu_core.files import backup as backups
    from mizu_core.message.cid import parse_cid

    st = state(ctx)
    repo = st.repository()
    if diff[0] is not None:
        if source is not None:
            raise UsageError("--diff compares snapshots; give no folder")
        result = backups.diff(repo, parse_cid(diff[0]), parse_cid(diff[1]))
        if st.json:
            print_json({"added": result.added, "removed": result.removed, "changed": result.changed})
            return
        for sign, paths in (("+", result.added), ("-", result.removed), ("M", result.changed)):
            for path in paths:
                print(f"{sign} {path}")
        return
    if source is None:
        raise UsageError("give the site's folder (or --diff OLD NEW)")
    snapshot = backups.backup(repo, source, site)
    resumed = f", {snapshot.resumed_pages} of them published by an interrupted backup" if snapshot.resumed_pages else ""
    info(f"{snapshot.pages} pages ({snapshot.new_pages} new or changed{resumed}), "
         f"{snapshot.new_file_blocks} new file blocks", st.quiet)
    print(snapshot.cid)
