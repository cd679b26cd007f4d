"""mizu cat: print the bytes of a stored file."""

from __future__ import annotations

import sys

import typer

from mizu_cli.state import state


def cat(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="CID[/PATH]", help="A file, or a path inside a folder."),
) -> None:
    """Write a stored file's bytes to standard output, streaming, byte for byte."""
    from mizu_core.files.tree import read_file, resolve_target

    repo = state(ctx).repository()
    out = sys.stdout.buffer
    for chunk in read_file(repo, resolve_target(repo, target)):
        out.write(chunk)
    out.flush()
