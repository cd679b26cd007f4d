"""mizu serve: run a node that answers peers, announces and follows subscriptions."""

from __future__ import annotations

import sys

import typer

from mizu_cli.state import state


def serve(
    ctx: typer.Context,
    listen: list[str] = typer.Option(None, "--listen", metavar="MULTIADDR", help="Address to listen on (repeatable; default: serve.listen, else /ip4/0.0.0.0/tcp/4737; port 0 picks one)."),
    no_mdns: bool = typer.Option(False, "--no-mdns", help="Do not discover or announce peers on the local network."),
    http: list[str] = typer.Option(None, "--http", metavar="[HOST:]PORT", help="Also run the HTTP gateway there (repeatable; host 127.0.0.1 unless given; port 0 picks one): mizu-gateway(7)."),
    offline: bool = typer.Option(False, "--offline", help="Run the HTTP gateway alone: no libp2p, no peers."),
) -> None:
    """Run a libp2p node with this repository's identity until SIGTERM or Ctrl-C.

    Prints its addresses (also recorded in .mizu/serve.json), answers the sync protocol
    for every subscription, announces new roots on gossipsub, publishes DHT provider
    records, and pulls at once when a peer announces a root it lacks. With --http, it
    also answers HTTP there (the gateway); with --offline, only that.
    """
    from mizu_core.errors import UsageError

    st = state(ctx)
    repo = st.repository()

    def log(message: str) -> None:
        if not st.quiet:
            print(message, file=sys.stderr, flush=True)

    def ready(bound: list[str]) -> None:
        for address in bound:
            print(address, flush=True)

    if offline:
        if not http or listen or no_mdns:
            raise UsageError("--offline runs the HTTP gateway alone: give --http, and no --listen or --no-mdns")
        from mizu_gateway.server import run_offline

        repo.open_for_writes()
        run_offline(repo, list(http), ready, log)
        return
    from mizu_core.sync.node import DEFAULT_PORT, ServingNode

    configured = repo.config.get("serve.listen")
    addresses = listen or ([configured] if isinstance(configured, str) else configured) or [
        f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}"
    ]
    extra = None
    if http:
        from mizu_gateway.server import in_node

        extra = in_node(repo, list(http), log)
    ServingNode(repo, list(addresses), mdns=not no_mdns, log=log, extra=extra).run(ready)
