"""Website backups (SPEC §8): a folder becomes files, one message per page, one snapshot.

Each run adds the folder as a UnixFS DAG (unchanged files reuse their blocks, and are not
even read again), publishes one signed message per new or changed page (site, path, media
type, size, file link, and the id of the snapshot that first had this version of the page)
and a signed snapshot message linking every page of this run, unchanged ones included, and
the folder root, with `$prev` naming the site's previous snapshot. So an unchanged site
costs one new message. Snapshots are found and compared with queries (`PAGES_QUERY`).

A run's snapshot id is derived from the key, the site and the previous snapshot
(`run_id`), so a run killed between its pages and its snapshot is continued by the next:
it finds the pages already published under that id and publishes only the rest. Messages
typed `site-snapshot` that are not snapshots are refused with one line
(`snapshot_message`), and skipped when looking for the previous snapshot.
"""

from __future__ import annotations

import mimetypes
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizu_core.errors import InvalidMessage, MizuError, UsageError
from mizu_core.files.tree import add_path, node, snapshot_root
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR
from mizu_core.message.dagpb import DIRECTORY
from mizu_core.message.uris import message_iri, parse_static

if TYPE_CHECKING:  # a backup queries its snapshots: it runs on the public Repository
    from mizu_core.api import Repository

SNAPSHOTS_QUERY = {"@select": "?snapshot", "@where": {"@id": "?snapshot", "type": "site-snapshot",
                                                        "site": {"$var": "site"}}}
# The pages a snapshot links: what `mizu backup --diff` compares.
PAGES_QUERY = {"@select": ["?path", "?file"], "@where": {
    "@id": {"$var": "snapshot"}, "pages": {"path": "?path", "file": "?file"}}}
# The pages a run published under its snapshot id: after a kill between the pages and the
# snapshot, the run that follows (same id) finds them instead of publishing them again.
RUN_PAGES_QUERY = {"@select": "?page", "@where": {"@id": "?page", "type": "page", "site": {"$var": "site"},
                                                  "snapshot": {"$var": "snapshot"}}}
_RUN_IDS = uuid.UUID("6d697a75-6261-636b-7570-2d72756e6964")  # the namespace of snapshot ids


@dataclass(frozen=True)
class Snapshot:
    cid: CID
    pages: int
    new_file_blocks: int  # file and folder blocks this run stored that were not there yet
    new_pages: int  # new or changed pages since the previous snapshot (page messages linked anew)
    resumed_pages: int = 0  # of those, the pages an interrupted run had published already


@dataclass(frozen=True)
class Diff:
    added: list[str]
    removed: list[str]
    changed: list[str]


def _message_cid(iri: Any) -> CID | None:
    """The CID of a message IRI (https://mizu.stream/v0/view-raw/CID), None for anything
    else (a node inside a message, a literal)."""
    if type(iri) is not dict or type(iri.get("@id")) is not str:
        return None
    ref = parse_static(iri["@id"])
    if ref is None or ref.action != "view-raw" or ref.path or ref.cid.codec != DAG_CBOR:
        return None
    return ref.cid


def snapshot_message(repo: Repository, cid: CID) -> dict[str, Any]:
    """A site snapshot message, checked: InvalidMessage "CID is not a site snapshot: why"
    for a message typed site-snapshot that is not one (or for any other message)."""
    message = repo.message(cid)
    root = snapshot_root(cid, message)  # the type, and a root that is a dag-pb CID

    def refuse(why: str) -> InvalidMessage:
        return InvalidMessage(f"{cid} is not a site snapshot: {why}")

    if repo.has(root):  # partial replication: the folder need not be here
        try:
            folder = node(repo, root).kind == DIRECTORY
        except InvalidMessage:
            folder = False
        if not folder:
            raise refuse(f"its root {root.to_v1()} is not a folder")

    for field in ("site", "snapshot"):
        if type(message.get(field)) is not str:
            raise refuse(f"its {field} is not text")
    pages = message.get("pages", [])
    if type(pages) is not list:
        raise refuse("its pages are not a list")
    if not all(type(page) is CID and page.codec == DAG_CBOR for page in pages):
        raise refuse("its pages are not all links to messages")
    return message


def latest_snapshot(repo: Repository, site: str) -> CID | None:
    """The site's snapshot that arrived last, among the messages that are snapshots."""
    rows = repo.query(SNAPSHOTS_QUERY, {"site": site})
    cids = {cid for r in rows if (cid := _message_cid(r.get("?snapshot"))) is not None}
    for cid in sorted(cids, key=lambda c: repo.info(c).seq, reverse=True):
        try:
            snapshot_message(repo, cid)
        except MizuError:
            continue  # typed site-snapshot, but not one: not a snapshot to follow
        return cid
    return None


def run_id(repo: Repository, site: str, previous: CID | None) -> str:
    """The snapshot id of a run: the same for every run that follows the same snapshot
    of the same site with the same key (a UUID 5 of them). A completed run publishes a
    new snapshot, so the next run gets a new id; a run killed before its snapshot is
    continued by the next, which finds the pages it published (`RUN_PAGES_QUERY`)."""
    key = repo.identity.public_key.multibase()
    return str(uuid.uuid5(_RUN_IDS, f"{key}\n{site}\n{previous.to_v1() if previous else ''}"))


def backup(repo: Repository, source: Path, site: str | None = None) -> Snapshot:
    if not source.is_dir():
        raise UsageError(f"{source} is not a folder")
    site = site or source.resolve().name
    blocks_before = repo.count_blocks()
    added = add_path(repo, source)
    new_file_blocks = repo.count_blocks() - blocks_before
    previous = latest_snapshot(repo, site)
    snapshot_id = run_id(repo, site, previous)
    known = _pages(repo, site, repo.message(previous).get("pages", [])) if previous is not None else {}
    rows = repo.query(RUN_PAGES_QUERY, {"site": site, "snapshot": snapshot_id})
    found = _pages(repo, site, [cid for r in rows if (cid := _message_cid(r.get("?page"))) is not None])
    key = repo.identity.public_key.multibase()
    interrupted = {path: page for path, page in found.items() if _signed_by(page[1], key)}
    links: list[CID | None] = []
    new_pages, resumed = [], 0
    for entry in added[:-1]:
        if entry.size is None:
            continue  # a folder
        media_type = mimetypes.guess_type(entry.path)[0] or "application/octet-stream"
        page = {"type": "page", "site": site, "snapshot": snapshot_id, "path": entry.path,
                "media_type": media_type, "size": entry.size, "file": entry.link.cid.to_v1()}
        same = known.get(entry.path)
        if same is not None and _same_version(same[1], page):
            links.append(same[0])  # this version of the page is published already
            continue
        done = interrupted.get(entry.path)
        if done is not None and _same_version(done[1], page) and done[1].get("snapshot") == snapshot_id:
            links.append(done[0])  # published by the run this one continues
            resumed += 1
            continue
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
    return Snapshot(cid, len(links), new_file_blocks, len(new_pages) + resumed, resumed)


def _signed_by(page: dict[str, Any], key: str) -> bool:
    """Whether this key signed the page (signatures were verified when it was stored):
    a page published by someone else under this run's id is not taken for one of ours."""
    signatures = page.get("$signatures")
    if type(signatures) is dict:
        signatures = [signatures]
    return type(signatures) is list and any(type(s) is dict and s.get("key") == key for s in signatures)


def _same_version(page: dict[str, Any], new: dict[str, Any]) -> bool:
    return all(page.get(k) == new[k] for k in ("media_type", "size", "file"))


def _pages(repo: Repository, site: str, links: list[Any]) -> dict[str, tuple[CID, dict[str, Any]]]:
    """path → (page CID, page message) of the page messages among `links` (of a snapshot,
    or of an interrupted run); what is not a page of this site is left out."""
    pages = {}
    messages = [link for link in links if type(link) is CID and link.codec == DAG_CBOR]
    for link, data in repo.blocks(messages):  # verified when they were stored
        try:
            page = codec.decode_trusted(data)
        except (MizuError, ValueError):
            continue
        if type(page) is dict and page.get("type") == "page" and page.get("site") == site \
                and type(page.get("path")) is str:
            pages[page["path"]] = (link, page)
    return pages


def snapshot_id(repo: Repository, cid: CID) -> str:
    return str(snapshot_message(repo, cid)["snapshot"])


def diff(repo: Repository, old: CID, new: CID) -> Diff:
    def pages(cid: CID) -> dict[str, str]:
        snapshot_message(repo, cid)  # refuses what is not a snapshot
        files: dict[str, str] = {}
        for r in repo.query(PAGES_QUERY, {"snapshot": message_iri(cid)}):
            path, file = r.get("?path"), r.get("?file")
            if type(path) is not str:
                raise InvalidMessage(f"{cid} is not a site snapshot: a page's path is not text")
            if type(file) is not dict or type(file.get("@id")) is not str:
                raise InvalidMessage(f"{cid} is not a site snapshot: the page {path!r} has no file link")
            if files.setdefault(path, file["@id"]) != file["@id"]:
                raise InvalidMessage(f"{cid} is not a site snapshot: two of its pages have the path {path!r}")
        return files

    before, after = pages(old), pages(new)
    return Diff(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
        changed=sorted(p for p in before.keys() & after.keys() if before[p] != after[p]),
    )
