"""mizu ls: list a stored folder."""

from __future__ import annotations

import typer

from mizu_cli.render import print_json
from mizu_cli.state import state


def parse_target(repo, target: str):  # type: ignore[no-untyped-def]
    """CID[/PATH] or ipfs://CID[/PATH] → the CID of that file or folder; a site snapshot
    message stands for its folder."""
    from mizu_core.files.tree import resolve
    from mizu_core.message.cid import DAG_CBOR, parse_cid

    text = target.removeprefix("ipfs://").removeprefix("/ipfs/")
    cid_text, _, path = text.partition("/")
    cid = parse_cid(cid_text)
    if cid.codec == DAG_CBOR:
        snapshot = repo.message(cid)
        if snapshot.get("type") == "site-snapshot" and "root" in snapshot:
            cid = snapshot["root"]
    return resolve(repo, cid, path)


def ls(
    ctx: typer.Context,
    target: str = typer.Argument(..., metavar="CID[/PATH]", help="A folder, or a path inside one."),
) -> None:
    """List a folder's entries: CID, cumulative size and name, in name order."""
    from mizu_core.files.tree import list_directory

    st = state(ctx)
    repo = st.repository()
    entries = list_directory(repo, parse_target(repo, target))
    if st.json:
        print_json([{"cid": str(e.cid.to_v1()), "size": e.tsize, "name": e.name} for e in entries])
        return
    for e in entries:
        print(f"{e.cid.to_v1()} {e.tsize} {e.name}")
