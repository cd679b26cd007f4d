"""mizu gc: drop blocks nothing pins, with their triples."""

from __future__ import annotations

import typer

from mizu_cli.render import info, print_json
from mizu_cli.state import state


def gc(ctx: typer.Context) -> None:
    """Remove every block that no pin keeps (directly or through links), and its triples."""
    st = state(ctx)
    result = st.repository().gc()
    if st.json:
        print_json({"blocks": result.blocks, "messages": result.messages,
                    "triples": result.triples, "bytes": result.bytes})
    else:
        info(f"removed {result.blocks} blocks ({result.messages} messages, "
             f"{result.triples} triples, {result.bytes} bytes)", st.quiet)
