"""mizu add: store a file or folder as a UnixFS DAG, as `ipfs add` would."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import typer

from mizu_cli.state import state


def add(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="File or folder to add."),
    cid_version: int = typer.Option(1, "--cid-version", help="Print CIDv1 (bafy…, default) or 0 (Qm…, as `ipfs add` does)."),
    raw_leaves: bool = typer.Option(False, "--raw-leaves", help="Raw leaves and CIDv1 links: the layout of `ipfs add --cid-version=1`."),
    quiet: bool = typer.Option(False, "--quiet", "-Q", help="Print only the root CID."),
) -> None:
    """Add a file or folder: 256 KiB chunks in a balanced UnixFS DAG, root pinned.

    Prints "added CID PATH" per file and folder, the root last. The root CID equals what
    `ipfs add` gives with its classic defaults.
    """
    from mizu_core.errors import UsageError
    from mizu_core.files.tree import add_path

    if cid_version not in (0, 1):
        raise UsageError("--cid-version is 0 or 1")
    if cid_version == 0 and raw_leaves:
        raise UsageError("--cid-version 0 cannot name raw leaves", hint="use CIDv1 with --raw-leaves")
    st = state(ctx)
    progress: Callable[[int], None] | None = None
    if sys.stderr.isatty() and not (quiet or st.quiet):
        def show(done: int) -> None:
            print(f"\radded {done / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)

        progress = show
    added = add_path(st.repository(), path, raw_leaves, progress)
    if progress is not None:
        print(file=sys.stderr)
    for entry in added if not (quiet or st.quiet) else added[-1:]:
        cid = entry.link.cid if cid_version == 0 else entry.link.cid.to_v1()
        base = path.resolve().name or str(path)  # `mizu add .` names the folder itself
        name = base if not entry.path else f"{base}/{entry.path}"
        print(cid if quiet or st.quiet else f"added {cid} {name}")
