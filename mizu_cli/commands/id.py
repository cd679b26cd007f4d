"""mizu id: this node's peer id and public key."""

from __future__ import annotations

import typer

from mizu_cli.render import print_json
from mizu_cli.state import state


def id(ctx: typer.Context) -> None:
    """Print the repository's peer id and its public key in $signatures form."""
    st = state(ctx)
    public = st.repository().identity.public_key
    if st.json:
        print_json({"peer_id": public.peer_id(), "public_key": public.multibase()})
    else:
        print(f"peer id:    {public.peer_id()}")
        print(f"public key: {public.multibase()}")
