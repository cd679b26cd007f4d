"""mizu swarm keygen: keys for private swarms (IPFS swarm.key format)."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(help="Private swarms: only nodes holding the same key connect.", no_args_is_help=True)


@app.command("keygen")
def keygen() -> None:
    """Print a new swarm key; save it as .mizu/swarm.key on every node of the swarm."""
    from mizu_core.sync.pnet import generate_swarm_key

    sys.stdout.write(generate_swarm_key())
