"""mizu serve: run a node that answers peers, announces and follows subscriptions."""

from __future__ import annotations

import sys

import typer

from mizu_cli.state import state


def serve(
    ctx: typer.Context,
    listen: list[str] = typer.Option(None, "--listen", metavar="MULTIADDR", help="Address to listen on (repeatable; default: serve.listen, else /ip4/0.0.0.0/tcp/4737; port 0 picks one)."),
    no_mdns: bool = typer.Option(False, "--no-mdns", help="Do not discover or announce peers on the local network."),
) -> None:
    """Run a libp2p node with this repository's identity until SIGTERM or Ctrl-C.

    Prints its addresses (also recorded in .mizu/serve.json), answers the sync protocol
    for every subscription, announces new roots on gossipsub, publishes DHT provider
    records, and pulls at once when a peer announces a root it lacks.
    """
    from mizu_core.sync.node import DEFAULT_PORT, ServingNode

    st = state(ctx)
    repo = st.repository()
    configured = repo.config.get("serve.listen")
    addresses = listen or ([configured] if isinstance(configured, str) else configured) or [
        f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}"
    ]

    def log(message: str) -> None:
        if not st.quiet:
            print(message, file=sys.stderr, flush=True)

    def ready(bound: list[str]) -> None:
        for address in bound:
            print(address, flush=True)

    ServingNode(repo, list(addresses), mdns=not no_mdns, log=log).run(ready)
