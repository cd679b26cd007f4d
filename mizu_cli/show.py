"""What `mizu view` prints: a stored message, a path inside it, or its update view. Apart
from the command so that `entry` can run a plain `mizu view CID` without typer and click."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mizu_cli.render import print_json

if TYPE_CHECKING:
    from mizu_core.api import Repository
    from mizu_core.message.cid import CID


def show(repo: Repository, target: str, update: bool = False, compact: bool = False) -> None:
    """Print the message `target` (CID[/PATH], or a view-raw/update IRI) as JSON."""
    from mizu_core.errors import UsageError
    from mizu_core.message import codec
    from mizu_core.message.cid import parse_cid
    from mizu_core.message.uris import parse_static

    ref = parse_static(target)
    if ref is not None:
        cid, path = ref.cid, ref.path
        update = update or ref.action == "update"
    else:
        cid_text, _, path = target.partition("/")
        cid = parse_cid(cid_text)
    if update:
        if path:
            raise UsageError("--update takes a CID without a path")
        value = _update_view(repo, cid)
    else:
        value = repo.resolve(cid, path)
    print_json(codec.to_json(value), pretty=not compact)


def _update_view(repo: Repository, cid: CID) -> Any:
    """The update view; ancestors missing here are fetched from the remotes first."""
    from mizu_core.errors import MissingAncestor

    try:
        return repo.update_view(cid).value
    except MissingAncestor:
        from mizu_core.sync.exchange import fetch_ancestors
        from mizu_core.sync.remotes import resolve_peers

        peers = resolve_peers(repo, [])
        if not peers:
            raise
        fetch_ancestors(repo, cid, peers)
        return repo.update_view(cid).value
