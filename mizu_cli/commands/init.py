"""mizu init: create a repository (or keep the one there)."""

from __future__ import annotations

from pathlib import Path

import typer

from mizu_cli.render import info
from mizu_cli.state import state


def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(Path("."), help="Where to create .mizu/ (default: here)."),
) -> None:
    """Create an empty repository: config, an Ed25519 identity and the LMDB store.

    Running it again in an existing repository is harmless and keeps everything.
    """
    from mizu_core.api import Repository

    created = not Repository.exists(directory)
    repo = Repository.init(directory)
    with repo:
        verb = "Initialized empty" if created else "Reinitialized existing"
        info(f"{verb} mizu repository in {repo.path}", state(ctx).quiet)
