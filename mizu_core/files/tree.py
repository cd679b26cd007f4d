"""Adding files and folders to the block store, and reading them back.

`add_path` streams a file or a folder tree into UnixFS blocks (memory stays bounded: one
chunk, plus at most 174 links per tree level) and pins the root last, so an interrupted add
leaves only unpinned blocks for gc. `read_file`, `list_directory` and `restore` walk the
DAG back; `restore` refuses entry names that would leave the destination.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mizu_core.errors import InvalidMessage, MizuError, NotFound, UsageError
from mizu_core.files.unixfs import (
    CHUNK_SIZE,
    DIRECTORY,
    FILE,
    RAW_TYPE,
    FileBuilder,
    Link,
    Node,
    decode_node,
    directory_node,
)
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW, parse_cid
from mizu_core.repo import blockstore
from mizu_core.repo.ingest import PIN_USER
from mizu_core.repo.repository import Repository

_FLUSH_BYTES = 8 << 20  # blocks are written in transactions of about this much


@dataclass(frozen=True)
class Added:
    path: str  # relative to what was added ("" for the root)
    link: Link
    size: int | None = None  # a file's size in bytes; None for a folder


class BlockBuffer:
    """Collects new blocks (and what was learnt about files) and writes them in few
    transactions."""

    def __init__(self, repo: Repository, progress: Callable[[int], None] | None = None) -> None:
        self.repo = repo
        self.pending: list[tuple[CID, bytes]] = []
        self.stats: list[tuple[bytes, bytes]] = []
        self.size = 0
        self.written = 0
        self.progress = progress

    def put(self, cid: CID, block: bytes) -> None:
        self.pending.append((cid, block))
        self.size += len(block)
        if self.size >= _FLUSH_BYTES:
            self.flush()

    def flush(self, pin: CID | None = None) -> None:
        with self.repo.store.writer() as txn:
            for cid, block in self.pending:
                txn.put("blocks", cid.to_v1().raw, block, overwrite=False)
            for key, value in self.stats:
                txn.put("file_stats", key, value)
            if pin is not None:
                txn.put("pins", pin.to_v1().raw, PIN_USER, overwrite=False)
        self.written += self.size
        if self.progress:
            self.progress(self.written)
        self.pending, self.stats, self.size = [], [], 0


_RELEASE_BYTES = 32 << 20
_STAT = struct.Struct(">QQQQQ")  # size, mtime_ns, ctime_ns, inode, tsize; then the root CID
_RACY_NS = 2_000_000_000  # a file changed this recently may change again within its mtime


def _add_file(path: Path | str, st: os.stat_result, buffer: BlockBuffer, raw_leaves: bool) -> Link:
    """A file's DAG (`path` is absolute, `st` its stat). Like git's index, a file whose size,
    times and inode match what was recorded when it was last added here is not read again,
    if its root is still stored."""
    key = (b"L" if raw_leaves else b"C") + os.fsencode(path)
    with buffer.repo.store.reader() as txn:
        cached = txn.get("file_stats", key)
        if cached is not None:
            size, mtime, ctime, inode, tsize = _STAT.unpack_from(cached)
            root = CID(bytes(cached[_STAT.size :]))
            if (size, mtime, ctime, inode) == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) \
                    and blockstore.has(txn, root.to_v1().raw):
                return Link(root, "", tsize)
    builder = FileBuilder(buffer.put, raw_leaves)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            builder.add_chunk(chunk)
    link = builder.finish()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        record = _STAT.pack(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, link.tsize)
        buffer.stats.append((key, record + link.cid.raw))
    return link


def add_path(
    repo: Repository, path: Path, raw_leaves: bool = False,
    progress: Callable[[int], None] | None = None,
) -> list[Added]:
    """Add a file or a folder; return every entry added, the root last."""
    with repo.unpinned_writes():
        return _add_path(repo, path, raw_leaves, progress)


def _add_path(
    repo: Repository, path: Path, raw_leaves: bool, progress: Callable[[int], None] | None
) -> list[Added]:
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    path = Path(os.path.abspath(path))  # file_stats keys: absolute, symbolic links unresolved
    buffer = BlockBuffer(repo, progress)
    added: list[Added] = []

    def walk(current: str, st: os.stat_result, relative: str) -> Link:
        """One lstat per entry (os.scandir's): a backup's re-run is mostly this walk."""
        if stat.S_ISLNK(st.st_mode):
            raise UsageError(f"{current}: symbolic links are not supported")
        if stat.S_ISDIR(st.st_mode):
            with os.scandir(current) as found:
                children = sorted(found, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
            entries = []
            for child in children:
                try:
                    child.name.encode("utf-8")
                except UnicodeEncodeError:
                    raise UsageError(f"{child.path!r}: the name is not valid UTF-8") from None
                name = f"{relative}/{child.name}" if relative else child.name
                link = walk(child.path, child.stat(follow_symlinks=False), name)
                entries.append(Link(link.cid, child.name, link.tsize))
            block = directory_node(entries)
            cid = CID.for_block(block, DAG_PB, version=1 if raw_leaves else 0)
            buffer.put(cid, block)
            link = Link(cid, "", len(block) + sum(e.tsize for e in entries))
            added.append(Added(relative, link))
        elif stat.S_ISREG(st.st_mode):
            link = _add_file(current, st, buffer, raw_leaves)
            added.append(Added(relative, link, st.st_size))
        else:
            raise UsageError(f"{current}: not a regular file or folder")
        return link

    try:
        root = walk(str(path), os.lstat(path), "")
    except OSError as e:
        raise MizuError(f"cannot read {e.filename}: {e.strerror}") from None
    buffer.flush(pin=root.cid)
    return added


def node(repo: Repository, cid: CID) -> Node:
    block = repo.block(cid)
    if cid.codec == RAW:
        return Node((), RAW_TYPE, block, len(block), ())
    if cid.codec != DAG_PB:
        raise InvalidMessage(f"{cid} is not a file or folder (codec 0x{cid.codec:x})")
    decoded = decode_node(block)
    if decoded.kind not in (FILE, DIRECTORY, RAW_TYPE):
        raise InvalidMessage(f"{cid}: UnixFS node type {decoded.kind} (symlink, sharded folder…) is not supported")
    return decoded


def resolve(repo: Repository, cid: CID, path: str) -> CID:
    """Follow a path of entry names from a folder."""
    for name in [p for p in path.split("/") if p]:
        entry = next((link for link in node(repo, cid).links if link.name == name), None)
        if entry is None:
            raise NotFound(f"no '{name}' in {cid}")
        cid = entry.cid
    return cid


def resolve_target(repo: Repository, target: str) -> CID:
    """`CID[/PATH]`, `ipfs://CID[/PATH]` or `/ipfs/CID[/PATH]` → the CID of that file or
    folder; a site snapshot message stands for its folder."""
    text = target.removeprefix("ipfs://").removeprefix("/ipfs/")
    cid_text, _, path = text.partition("/")
    cid = parse_cid(cid_text)
    if cid.codec == DAG_CBOR:
        snapshot = repo.message(cid)
        if snapshot.get("type") == "site-snapshot" and "root" in snapshot:
            cid = snapshot["root"]
    return resolve(repo, cid, path)


def read_file(repo: Repository, cid: CID) -> Iterator[bytes]:
    """The bytes of a file, chunk by chunk, in order."""
    stack = [cid]
    since_release = 0
    while stack:
        current = node(repo, stack.pop())
        if current.kind == DIRECTORY:
            raise UsageError(f"{cid} is a folder (use mizu ls or mizu get)")
        if current.links:
            stack.extend(link.cid for link in reversed(current.links))
        elif current.data:
            yield current.data
            since_release += len(current.data)
            if since_release >= _RELEASE_BYTES:
                # Blocks are read through LMDB's memory map: let go of the pages read so
                # far, or a large file stays resident (in RSS) until the command ends.
                repo.store.release_pages()
                since_release = 0


def list_directory(repo: Repository, cid: CID) -> list[Link]:
    current = node(repo, cid)
    if current.kind != DIRECTORY:
        raise UsageError(f"{cid} is not a folder")
    return list(current.links)


def _safe_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InvalidMessage(f"refusing the entry name {name!r}: it would leave the destination")
    return name


def restore(repo: Repository, cid: CID, destination: Path) -> int:
    """Write a file or folder tree to `destination`, which must not exist yet; return the
    number of files written.

    Every entry name is checked before anything is written, so a hostile folder node
    (a `../` name) is refused whole; the tree is written beside `destination` and renamed
    into place at the end, so a failure (a missing block) leaves nothing behind."""
    if destination.exists() or destination.is_symlink():
        raise UsageError(f"{destination} already exists", hint="choose a new destination")
    _check_names(repo, cid)
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    try:
        count = _write(repo, cid, partial)
        os.rename(partial, destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        if partial.is_file():
            partial.unlink()
        raise
    return count


def _check_names(repo: Repository, cid: CID) -> None:
    current = node(repo, cid)
    if current.kind == DIRECTORY:
        for link in current.links:
            _safe_name(link.name)
            _check_names(repo, link.cid)


def _write(repo: Repository, cid: CID, destination: Path) -> int:
    current = node(repo, cid)
    if current.kind == DIRECTORY:
        destination.mkdir(parents=True, exist_ok=True)
        return sum(_write(repo, link.cid, destination / link.name) for link in current.links)
    with open(destination, "wb") as f:
        for chunk in read_file(repo, cid):
            f.write(chunk)
    return 1
