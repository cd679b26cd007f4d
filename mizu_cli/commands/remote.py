"""mizu remote add|remove|list: named peers, like git remotes."""

from __future__ import annotations

import typer

from mizu_cli.render import print_json
from mizu_cli.state import state

app = typer.Typer(help="Manage named peers (remote.NAME.address in the config).", no_args_is_help=True)


@app.command("add")
def add(ctx: typer.Context, name: str, address: str = typer.Argument(..., metavar="MULTIADDR")) -> None:
    """Name a peer: MULTIADDR as `mizu serve` prints it, ending in /p2p/PEER-ID."""
    from mizu_core.sync.remotes import add_remote

    add_remote(state(ctx).repository(), name, address)


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Forget a named peer."""
    from mizu_core.sync.remotes import remove_remote

    remove_remote(state(ctx).repository(), name)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Print each remote: NAME<TAB>MULTIADDR (--json for scripts)."""
    from mizu_core.sync.remotes import remote_addresses

    st = state(ctx)
    remotes = remote_addresses(st.repository())
    if st.json:
        print_json(remotes)
        return
    for name, address in remotes.items():
        print(f"{name}\t{address}")
