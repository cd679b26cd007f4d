"""Website backups (SPEC §8): a folder becomes files, one message per page, one snapshot.

Each run adds the folder as a UnixFS DAG (unchanged files reuse their blocks, and are not
even read again), publishes one signed message per new or changed page (site, path, media
type, size, file link, and the id of the snapshot that first had this version of the page)
and a signed snapshot message linking every page of this run, unchanged ones included, and
the folder root, with `$prev` naming the site's previous snapshot. So an unchanged site
costs one new message. Snapshots are found and compared with queries (`PAGES_QUERY`).
"""

from __future__ import annotations

import mimetypes
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mizu_core.errors import NotFound, UsageError
from mizu_core.files.tree import add_path
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.message.uris import message_iri
from mizu_core.repo import blockstore
from mizu_core.repo.repository import Repository

SNAPSHOTS_QUERY = {"@select": "?snapshot", "@where": {"@id": "?snapshot", "type": "site-snapshot",
                                                        "site": {"$var": "site"}}}
# The pages a snapshot links: what `mizu backup --diff` compares.
PAGES_QUERY = {"@select": ["?path", "?file"], "@where": {
    "@id": {"$var": "snapshot"}, "pages": {"path": "?path", "file": "?file"}}}


@dataclass(frozen=True)
class Snapshot:
    cid: CID
    pages: int
    new_file_blocks: int  # file and folder blocks this run stored that were not there yet
    new_pages: int  # page messages this run published (new or changed pages)


@dataclass(frozen=True)
class Diff:
    added: list[str]
    removed: list[str]
    changed: list[str]


def latest_snapshot(repo: Repository, site: str) -> CID | None:
    rows = repo.query(SNAPSHOTS_QUERY, {"site": site})
    cids = [CID.parse(r["?snapshot"]["@id"].rsplit("/", 1)[1]) for r in rows]
    return max(cids, key=lambda c: repo.info(c).seq, default=None)


def backup(repo: Repository, source: Path, site: str | None = None) -> Snapshot:
    if not source.is_dir():
        raise UsageError(f"{source} is not a folder")
    site = site or source.resolve().name
    blocks_before = _count_blocks(repo)
    added = add_path(repo, source)
    new_file_blocks = _count_blocks(repo) - blocks_before
    snapshot_id = str(uuid.uuid4())
    previous = latest_snapshot(repo, site)
    known = _pages(repo, previous) if previous is not None else {}
    links: list[CID | None] = []
    new_pages = []
    for entry in added[:-1]:
        if entry.size is None:
            continue  # a folder
        media_type = mimetypes.guess_type(entry.path)[0] or "application/octet-stream"
        page = {"type": "page", "site": site, "snapshot": snapshot_id, "path": entry.path,
                "media_type": media_type, "size": entry.size, "file": entry.link.cid.to_v1()}
        same = known.get(entry.path)
        if same is not None and all(same[1].get(k) == page[k] for k in ("media_type", "size", "file")):
            links.append(same[0])  # this version of the page is published already
        else:
            links.append(None)
            new_pages.append(page)
    published = iter(repo.publish(new_pages).cids if new_pages else ())
    message: dict[str, Any] = {
        "type": "site-snapshot", "site": site, "snapshot": snapshot_id,
        "root": added[-1].link.cid.to_v1(),
        "pages": [link if link is not None else next(published) for link in links],
    }
    if previous is not None:
        message["$prev"] = message_iri(previous)
    cid = repo.publish(message)
    return Snapshot(cid, len(links), new_file_blocks, len(new_pages))


def _pages(repo: Repository, snapshot: CID) -> dict[str, tuple[CID, dict[str, Any]]]:
    """path → (page CID, page message) of the pages a snapshot links."""
    pages = {}
    with repo.store.reader() as txn:  # one snapshot; these blocks were verified when stored
        for link in repo.message(snapshot).get("pages", []):
            data = blockstore.get(txn, link.to_v1().raw) if type(link) is CID else None
            if data is not None:
                page = codec.decode_trusted(bytes(data))
                pages[str(page.get("path"))] = (link, page)
    return pages


def _count_blocks(repo: Repository) -> int:
    with repo.store.reader() as txn:
        return blockstore.count(txn)


def snapshot_id(repo: Repository, cid: CID) -> str:
    message = repo.message(cid)
    if message.get("type") != "site-snapshot":
        raise NotFound(f"{cid} is not a site snapshot")
    return str(message["snapshot"])


def diff(repo: Repository, old: CID, new: CID) -> Diff:
    def pages(cid: CID) -> dict[str, str]:
        snapshot_id(repo, cid)  # refuses what is not a snapshot
        rows = repo.query(PAGES_QUERY, {"snapshot": message_iri(cid)})
        return {r["?path"]: r["?file"]["@id"] for r in rows}

    before, after = pages(old), pages(new)
    return Diff(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
        changed=sorted(p for p in before.keys() & after.keys() if before[p] != after[p]),
    )
