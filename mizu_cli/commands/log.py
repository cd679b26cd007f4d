"""mizu log: messages in local arrival order, newest first."""

from __future__ import annotations

import sys

import typer

from mizu_cli.render import print_json, print_ndjson
from mizu_cli.state import state
from mizu_core.query.formats import dumps


def log(
    ctx: typer.Context,
    max_count: int = typer.Option(None, "--max-count", "-n", metavar="N", help="Show at most N messages."),
    fmt: str = typer.Option("text", "--format", help="text, json or ndjson."),
) -> None:
    """List messages in the order they arrived here, newest first."""
    from mizu_core.errors import UsageError
    from mizu_core.message import codec

    st = state(ctx)
    fmt = "json" if st.json else fmt
    if fmt not in ("text", "json", "ndjson"):
        raise UsageError(f"unknown format '{fmt}' (text, json, ndjson)")
    repo = st.repository()
    entries = repo.log(max_count)
    rows = ({
        "cid": str(e.cid), "seq": e.seq, "size": e.size,
        "signers": list(e.signers), "pinned": e.pinned,
    } for e in entries)
    if st.quiet and fmt == "text":  # scripts: the CIDs alone
        sys.stdout.write("".join(f"{e.cid}\n" for e in entries))
    elif fmt == "json":
        print_json(list(rows))
    elif fmt == "ndjson":
        print_ndjson(rows)
    else:
        for e in repo.log(max_count):
            signer = e.signers[0][:16] + "…" if e.signers else "unsigned"
            preview = dumps(codec.to_json(repo.message(e.cid)), pretty=False)
            preview = preview if len(preview) <= 60 else preview[:59] + "…"
            print(f"{e.cid}  {signer:<17}  {preview}")
