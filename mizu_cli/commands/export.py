"""mizu export --car: write blocks, with all they link, as a CAR v1 archive."""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext

import typer

from mizu_cli.render import warn
from mizu_cli.state import state


def export(
    ctx: typer.Context,
    cids: list[str] = typer.Argument(None, metavar="[CID]...", help="Roots to export, with every block they link."),
    car: bool = typer.Option(False, "--car", help="Write a CAR v1 archive (the only format)."),
    everything: bool = typer.Option(False, "--all", help="Export every block in the repository."),
    subscription: str = typer.Option(None, "--subscription", metavar="SUB", help="Export a subscription's records (and what they link); its query is the root."),
    output: str = typer.Option("-", "--output", "-o", metavar="FILE", help="Where to write (default: stdout)."),
) -> None:
    """Export messages, files and folders as a CAR v1 archive any IPFS tool can read.

    The roots of the archive are the CIDs given (with --all: the pinned blocks; with
    --subscription: the subscription's query message). A file is written beside FILE and
    renamed when complete, so a failed export leaves nothing behind.
    """
    from mizu_core.errors import UsageError
    from mizu_core.files.car import all_blocks, reachable, write_car
    from mizu_core.message.cid import CID, parse_cid

    if not car:
        raise UsageError("say --car (CAR v1 is the only export format)")
    if (bool(cids) + everything + (subscription is not None)) != 1:
        raise UsageError("give CIDs or --all or --subscription (one of them)")
    if output == "-" and sys.stdout.isatty():
        raise UsageError("a CAR archive is binary: use -o FILE or a pipe")
    repo = state(ctx).repository()
    if subscription is not None:
        from mizu_core.feeds.subscriptions import export_roots

        roots, starts = export_roots(repo, parse_cid(subscription))
    else:
        roots = [parse_cid(c) for c in cids] if cids else repo.pins()
        starts = roots
    for root in roots:
        repo.block(root)  # a missing root is an error before anything is written
    missing: list[CID] = []  # linked blocks not held here: partial replication makes them normal
    blocks = all_blocks(repo) if everything else reachable(repo, starts, missing)
    partial = f"{output}.partial"
    try:
        target = nullcontext(sys.stdout.buffer) if output == "-" else open(partial, "wb")  # noqa: SIM115
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror}") from None
    try:
        with target as out:
            count = write_car(out, roots, blocks)
    except BaseException:
        if output != "-":
            os.unlink(partial)
        raise
    if output != "-":
        os.replace(partial, output)
    if missing:
        warn(f"warning: incomplete: {len(missing)} linked block{'s' if len(missing) != 1 else ''} not in the "
             f"repository, left out (the first: {missing[0]})")
    if output != "-" and not state(ctx).quiet:
        warn(f"exported {count} blocks to {output}")
