"""mizu import: read a CAR v1 archive into the repository."""

from __future__ import annotations

import sys
from contextlib import nullcontext

import typer

from mizu_cli.render import info, print_json, warn
from mizu_cli.state import state


def import_(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE.car|-", help="The archive (- reads stdin)."),
) -> None:
    """Import a CAR v1 archive: every block re-hashed, every message validated as a publish.

    One bad block, or a root in neither the archive nor the repository, rejects the whole
    archive and nothing is stored. The roots are pinned; blocks they reference that are
    missing (an incomplete archive) are reported.
    """
    from mizu_core.errors import UsageError
    from mizu_core.files.car import read_car

    st = state(ctx)
    try:
        source = nullcontext(sys.stdin.buffer) if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as e:
        raise UsageError(f"cannot open {file}: {e.strerror}") from None
    with source as stream:
        result = read_car(st.repository(), stream)
    if st.json:
        print_json({"roots": [str(r.to_v1()) for r in result.roots], "blocks": result.blocks,
                    "messages": result.messages, "missing": [str(c) for c in result.missing],
                    "unrooted": result.unrooted})
        return
    info(f"imported {result.blocks} blocks ({result.messages} messages)", st.quiet)
    if result.missing:
        warn(f"warning: incomplete: the roots reference {len(result.missing)} blocks that are neither "
             f"in the archive nor in the repository (the first: {result.missing[0]}); "
             "mizu fsck lists them")
    if result.unrooted:
        warn(f"warning: {result.unrooted} blocks of the archive are linked from no root: stored "
             "unpinned, the next mizu gc removes them (mizu pin keeps them)")
