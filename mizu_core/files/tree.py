"""Adding files and folders to the block store, and reading them back.

`add_path` streams a file or a folder tree into UnixFS blocks (memory stays bounded: one
chunk, plus at most 174 links per tree level) and pins the root last, so an interrupted add
leaves only unpinned blocks for gc. `read_file`, `list_directory` and `restore` walk the
DAG back, iteratively (never Python's stack), and treat every DAG as hostile: `read_file`
yields exactly the bytes a file's root declares or fails; `restore` checks the whole DAG
first (`plan`: names, duplicates, nesting and the entries it expands to, counted along
every path, against files.max-depth and files.max-entries) and writes exactly what the DAG
holds, or nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mizu_core.errors import InvalidMessage, MizuError, NotFound, UsageError
from mizu_core.files.unixfs import CHUNK_SIZE, FileBuilder, directory_node
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW, parse_cid
from mizu_core.message.dagpb import DIRECTORY, FILE, RAW_TYPE, Link, Node, decode_node
from mizu_core.repo.file_stats import FileStat
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
        self.stats: list[tuple[Path | str, bool, FileStat]] = []  # path, raw leaves?, stat
        self.size = 0
        self.written = 0
        self.progress = progress

    def put(self, cid: CID, block: bytes) -> None:
        self.pending.append((cid, block))
        self.size += len(block)
        if self.size >= _FLUSH_BYTES:
            self.flush()

    def flush(self, pin: CID | None = None) -> None:
        self.repo.store_file_blocks(self.pending, self.stats, pin)
        self.written += self.size
        if self.progress:
            self.progress(self.written)
        self.pending, self.stats, self.size = [], [], 0


_RELEASE_BYTES = 32 << 20
_RACY_NS = 2_000_000_000  # a file changed this recently may change again within its mtime


def _add_file(path: Path | str, st: os.stat_result, buffer: BlockBuffer, raw_leaves: bool) -> Link:
    """A file's DAG (`path` is absolute, `st` its stat). Like git's index, a file whose size,
    times and inode match what was recorded when it was last added here is not read again,
    if its root is still stored."""
    cached = buffer.repo.file_stat(path, raw_leaves)
    if cached is not None and cached.matches(st):
        return Link(cached.root, "", cached.tsize)
    builder = FileBuilder(buffer.put, raw_leaves)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            builder.add_chunk(chunk)
    link = builder.finish()
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        buffer.stats.append((path, raw_leaves, FileStat.of(st, link.tsize, link.cid)))
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


class UnsafeTree(InvalidMessage):
    """A file or folder DAG that `get` (or `cat`, `ls`) refuses: names that cannot be
    written as they are, nesting or expansion past the configured bounds, sizes that do
    not add up. Exit status 1, like any bad block."""


# The bounds of `get` (man/mizu-config.1; their defaults and ranges are config.py's
# `KEYS`): entries written, counted along every path (a folder that links the same child
# twice has it written twice), and folders nested.
MAX_ENTRIES_KEY = "files.max-entries"
MAX_DEPTH_KEY = "files.max-depth"


def _short(name: str, limit: int = 40) -> str:
    """A name for an error line: its repr, cut short."""
    text = repr(name)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(name.encode())} bytes)"


def node(repo: Repository, cid: CID) -> Node:
    block = repo.block(cid)
    if cid.codec == RAW:
        return Node((), RAW_TYPE, block, len(block), ())
    if cid.codec != DAG_PB:
        raise InvalidMessage(f"{cid} is not a file or folder (codec 0x{cid.codec:x})")
    decoded = decode_node(block)
    if not decoded.unixfs:
        raise InvalidMessage(f"{cid} is a dag-pb node without UnixFS data, not a file or folder")
    if decoded.kind not in (FILE, DIRECTORY, RAW_TYPE):
        raise InvalidMessage(f"{cid}: UnixFS node type {decoded.kind} (symlink, sharded folder…) is not supported")
    return decoded


def _entry(cid: CID, current: Node, name: str) -> Link:
    """The link named `name` in a folder; refuses a name that two entries have."""
    found = [link for link in current.links if link.name == name]
    if not found:
        raise NotFound(f"no '{name}' in {cid}")
    if len(found) > 1:
        raise UnsafeTree(f"refusing the folder {cid}: {len(found)} entries are named {_short(name)}")
    return found[0]


def resolve(repo: Repository, cid: CID, path: str) -> CID:
    """Follow a path of entry names from a folder."""
    for name in [p for p in path.split("/") if p]:
        current = node(repo, cid)
        if current.kind != DIRECTORY:
            raise NotFound(f"no '{name}' in {cid}: it is a file, not a folder")
        cid = _entry(cid, current, name).cid
    return cid


@dataclass(frozen=True)
class Walked:
    """Where an IPFS path leads: the blocks it passes through (the root first, the one it
    ends in last), and what is left of it inside that block (fields of a message)."""

    cids: tuple[CID, ...]
    rest: tuple[str, ...]


def walk(repo: Repository, cid: CID, path: str) -> Walked:
    """Follow an IPFS path (`/ipfs/CID/PATH`): entry names through UnixFS folders, field
    names and list indexes through messages, into the blocks their CID links name."""
    from mizu_core.message import codec
    from mizu_core.message.templates import child

    cids, segments = [cid], [s for s in path.split("/") if s]
    while segments:
        current = cids[-1]
        if current.codec in (DAG_PB, RAW):
            folder = node(repo, current)
            if folder.kind != DIRECTORY:
                raise NotFound(f"no '{segments[0]}' in {current}: it is a file, not a folder")
            cids.append(_entry(current, folder, segments.pop(0)).cid)
            continue
        if current.codec != DAG_CBOR:
            raise NotFound(f"no '{segments[0]}' in {current} (codec 0x{current.codec:x})")
        value: Any = codec.decode(repo.block(current))
        taken = 0
        while taken < len(segments) and type(value) is not CID:
            try:
                value = child(value, segments[taken])
            except KeyError:
                raise NotFound(f"no '{segments[taken]}' in {current}") from None
            taken += 1
        if type(value) is not CID:
            return Walked(tuple(cids), tuple(segments))
        cids.append(value)
        del segments[:taken]
    return Walked(tuple(cids), ())


def snapshot_root(cid: CID, message: Any) -> CID:
    """The folder CID a site snapshot message names; InvalidMessage saying why when the
    message is typed `site-snapshot` but is not one (SPEC §8)."""
    def refuse(why: str) -> InvalidMessage:
        return InvalidMessage(f"{cid} is not a site snapshot: {why}")

    if type(message) is not dict or message.get("type") != "site-snapshot":
        raise refuse("its type is not site-snapshot")
    root = message.get("root")
    if root is None:
        raise refuse("it has no root")
    if type(root) is not CID:
        raise refuse("its root is not a CID link")
    if root.codec != DAG_PB:
        raise refuse(f"its root {root.to_v1()} is not a folder (codec 0x{root.codec:x})")
    return root


def resolve_target(repo: Repository, target: str) -> CID:
    """`CID[/PATH]`, `ipfs://CID[/PATH]` or `/ipfs/CID[/PATH]` → the CID of that file or
    folder; a site snapshot message stands for its folder."""
    text = target.removeprefix("ipfs://").removeprefix("/ipfs/")
    cid_text, _, path = text.partition("/")
    cid = parse_cid(cid_text)
    if cid.codec == DAG_CBOR:
        message = repo.message(cid)
        if type(message) is dict and message.get("type") == "site-snapshot":
            root = snapshot_root(cid, message)
            if node(repo, root).kind != DIRECTORY:
                raise InvalidMessage(f"{cid} is not a site snapshot: its root {root.to_v1()} is not a folder")
            cid = root
    return resolve(repo, cid, path)


def _file_size(cid: CID, current: Node, expected: int | None = None) -> int:
    """The size a file node declares, checked against its own block sizes (and against
    `expected`, what its parent says): so the bytes a file yields are exactly what its
    root declares, however its blocks are linked."""
    def refuse(why: str) -> UnsafeTree:
        return UnsafeTree(f"{cid} is not a valid UnixFS file: {why}")

    if current.kind == DIRECTORY:
        raise refuse("it links a folder as a part of the file")
    sizes = current.blocksizes
    if len(sizes) != len(current.links):
        raise refuse(f"it has {len(current.links)} links but {len(sizes)} block sizes")
    if current.links and 0 in sizes:
        raise refuse("it links a part of 0 bytes")
    size = len(current.data) + sum(sizes)
    if current.filesize is not None and current.filesize != size:
        raise refuse(f"it declares {current.filesize} bytes but holds {size}")
    if expected is not None and size != expected:
        raise refuse(f"it holds {size} bytes where its parent says {expected}")
    return size


def read_file(repo: Repository, cid: CID, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """The bytes of a file, chunk by chunk, in order (with `start` and `end`, only those
    of that range: the parts outside it are not read).

    Every node's size is checked against its parent's block sizes as it is read, so a
    file yields exactly the bytes its root declares, or fails: linking the same part many
    times makes a large file, never an endless one. A part of 0 bytes inside a file, or a
    file DAG deeper than files.max-depth, is refused."""
    max_depth = repo.config.get(MAX_DEPTH_KEY)
    yield from _chunks(repo, cid, node(repo, cid), max_depth, start, end)


def file_size(repo: Repository, cid: CID) -> int:
    """The bytes a file's root declares (checked against its own block sizes)."""
    root = node(repo, cid)
    if root.kind == DIRECTORY:
        raise UsageError(f"{cid} is a folder, not a file")
    return _file_size(cid, root)


def _chunks(repo: Repository, cid: CID, root: Node, max_depth: int, start: int = 0,
            end: int | None = None) -> Iterator[bytes]:
    """`read_file` of a root node already read (`get` has read it to tell a file from a
    folder). A node's own bytes come before its children's, so each node's offset in the
    file follows from its parent's and the block sizes before it."""
    stack: list[tuple[CID, int | None, int, int]] = [(cid, None, 0, 0)]  # node, size expected, depth, offset
    since_release = 0
    while stack:
        current_cid, expected, depth, offset = stack.pop()
        current = node(repo, current_cid) if depth else root
        if current.kind == DIRECTORY and expected is None:
            raise UsageError(f"{cid} is a folder (use mizu ls or mizu get)")
        _file_size(current_cid, current, expected)
        if current.links:
            if depth >= max_depth:
                raise UnsafeTree(f"refusing the file {cid}: its DAG is nested more than "
                                 f"{MAX_DEPTH_KEY} ({max_depth}) deep",
                                 hint=f"raise it with: mizu config set {MAX_DEPTH_KEY} N")
            child = offset + len(current.data)
            children = []
            for link, size in zip(current.links, current.blocksizes, strict=True):
                if child + size > start and (end is None or child < end):  # overlaps the range
                    children.append((link.cid, size, depth + 1, child))
                child += size
            stack.extend(reversed(children))
        data = current.data
        if data and (start > offset or (end is not None and end < offset + len(data))):
            data = data[max(start - offset, 0): None if end is None else max(end - offset, 0)]
        if data:
            yield data
            since_release += len(data)
            if since_release >= _RELEASE_BYTES:
                # Blocks are read through LMDB's memory map: let go of the pages read so
                # far, or a large file stays resident (in RSS) until the command ends.
                repo.release_pages()
                since_release = 0


def list_directory(repo: Repository, cid: CID) -> list[Link]:
    current = node(repo, cid)
    if current.kind != DIRECTORY:
        raise UsageError(f"{cid} is not a folder")
    return list(current.links)


def _safe_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InvalidMessage(f"refusing the entry name {_short(name)}: it would leave the destination")
    return name


@dataclass(frozen=True)
class Plan:
    """What `get` would write for a DAG, counted along every path (a child linked twice
    counts twice): entries (files and folders below the root), files, the deepest
    nesting, the longest relative path in bytes, and the bytes the files declare."""

    entries: int
    files: int
    depth: int
    longest: int
    size: int


def plan(repo: Repository, cid: CID, *, max_entries: int | None = None,
         max_depth: int | None = None, name_max: int = 255) -> Plan:
    """Check a whole file or folder DAG before anything is written, and count what
    writing it means. Iterative, and each distinct block is read once (a summary per CID):
    the time is linear in the blocks stored, however often they are linked. Refuses
    (UnsafeTree) names that cannot be written as they are (empty, `.`, `..`, `/`, `\\`,
    NUL, longer than `name_max` bytes), two entries of a folder with one name, nesting
    deeper than `max_depth`, and more than `max_entries` entries."""
    max_entries = max_entries if max_entries is not None else repo.config.get(MAX_ENTRIES_KEY)
    max_depth = max_depth if max_depth is not None else repo.config.get(MAX_DEPTH_KEY)
    done: dict[bytes, Plan] = {}
    expanding: set[bytes] = set()  # folders whose entries are being summed: the DFS path
    stack: list[tuple[CID, Node | None]] = [(cid, None)]
    while stack:
        if len(done) > max_entries + 1:  # each distinct block is an entry somewhere
            raise UnsafeTree(f"refusing {cid}: it holds more than {MAX_ENTRIES_KEY} ({max_entries}) entries",
                             hint=f"if it is meant to be that large: mizu config set {MAX_ENTRIES_KEY} N")
        current_cid, current = stack[-1]
        key = current_cid.to_v1().raw
        if current is None:  # first visit
            if key in done:
                stack.pop()
                continue
            current = node(repo, current_cid)
            if current.kind != DIRECTORY:
                done[key] = Plan(0, 1, 0, 0, _file_size(current_cid, current))
                stack.pop()
                continue
            stack[-1] = (current_cid, current)  # summed up once its entries are
            expanding.add(key)
            if len(expanding) > max_depth + 1:  # the folders on the path from the root
                raise _too_deep(cid, max_depth)
            names = set()
            for link in current.links:
                _safe_name(link.name)
                encoded = len(link.name.encode())
                if encoded > name_max:
                    raise UnsafeTree(f"refusing the entry name {_short(link.name)} in {current_cid}: "
                                     f"{encoded} bytes, longer than this file system allows ({name_max})")
                if link.name in names:
                    raise UnsafeTree(f"refusing the folder {current_cid}: two entries are named {_short(link.name)}")
                names.add(link.name)
                child = link.cid.to_v1().raw
                if child in expanding:  # impossible with sound hashes
                    raise UnsafeTree(f"refusing the folder {current_cid}: it contains itself")
                if child not in done:
                    stack.append((link.cid, None))
            continue
        stack.pop()
        expanding.discard(key)
        entries = files = depth = longest = size = 0
        for link in current.links:
            below = done[link.cid.to_v1().raw]
            entries += 1 + below.entries
            files += below.files
            depth = max(depth, 1 + below.depth)
            name = len(link.name.encode())
            longest = max(longest, name + 1 + below.longest if below.longest else name)
            size += below.size
        if entries > max_entries:
            at_least = "" if current_cid == cid else "at least "  # found in a sub-folder
            raise UnsafeTree(
                f"refusing {cid}: it expands to {at_least}{entries} entries (files and folders, "
                f"counted along every path), more than {MAX_ENTRIES_KEY} ({max_entries})",
                hint=f"if it is meant to be that large: mizu config set {MAX_ENTRIES_KEY} N")
        if depth > max_depth:
            raise _too_deep(cid, max_depth)
        done[key] = Plan(entries, files, depth, longest, size)
    return done[cid.to_v1().raw]


def _too_deep(cid: CID, max_depth: int) -> UnsafeTree:
    return UnsafeTree(f"refusing {cid}: its folders are nested deeper than {MAX_DEPTH_KEY} ({max_depth})",
                      hint=f"if it is meant to be that deep: mizu config set {MAX_DEPTH_KEY} N")


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(path, name)
    except (OSError, ValueError, AttributeError):
        return default
    return value if value > 0 else default


def restore(repo: Repository, cid: CID, destination: Path) -> int:
    """Write a file or folder tree to `destination`, which must not exist yet; return the
    number of files written.

    The whole DAG is checked first (`plan`): names, duplicates, nesting, the number of
    entries and their bytes against the bounds and the free space, so a hostile DAG is
    refused before anything is written. The tree is then written beside `destination`,
    every entry created new (never through something already there), and renamed into
    place at the end, so a failure (a missing block, a name that the file system takes
    for another) leaves nothing behind: `get` writes exactly what the DAG holds, or
    nothing."""
    try:
        if destination.exists() or destination.is_symlink():
            raise UsageError(f"{destination} already exists", hint="choose a new destination")
        anchor = _existing_ancestor(destination.parent)
    except OSError as e:
        raise MizuError(f"cannot write {destination}: {e.strerror}") from None
    name_max = _pathconf(anchor, "PC_NAME_MAX", 255)
    path_max = _pathconf(anchor, "PC_PATH_MAX", 4096)
    summary = plan(repo, cid, name_max=name_max)
    short = os.fsencode(destination.name)[:100].decode("utf-8", "ignore")
    partial = Path(os.path.abspath(destination)).with_name(f".{short}.partial-{os.getpid()}")
    longest = len(os.fsencode(str(partial))) + 1 + summary.longest
    if longest >= path_max:
        raise UnsafeTree(f"refusing {cid}: its longest path would be {longest} bytes under "
                         f"{destination}, more than this system allows ({path_max})")
    free = shutil.disk_usage(anchor).free
    if summary.size > free:
        raise MizuError(f"refusing {cid}: its files hold {summary.size} bytes, and only {free} "
                        f"are free where {destination} goes")
    created: list[Path] = []  # the parent folders made for the destination, removed on failure
    for parent in reversed(Path(os.path.abspath(destination)).parents):
        if not parent.exists():
            try:
                parent.mkdir()
            except OSError as e:
                _remove(created)
                raise MizuError(f"cannot create {parent}: {e.strerror}") from None
            created.append(parent)
    try:
        count = _write(repo, cid, partial, destination)
        os.rename(partial, destination)
    except BaseException:
        remove_tree(partial)
        _remove(created)
        raise
    return count


def remove_tree(path: Path | str) -> None:
    """Remove a file or a folder tree, iteratively (shutil.rmtree recurses, and a tree
    files.max-depth allows can be deeper than Python's stack); errors are ignored."""
    stack = [(str(path), False)]
    while stack:
        current, emptied = stack.pop()
        if emptied:
            with contextlib.suppress(OSError):
                os.rmdir(current)
            continue
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                os.unlink(current)
                continue
            stack.append((current, True))
            with os.scandir(current) as entries:
                stack.extend((entry.path, False) for entry in entries)
        except OSError:
            continue


def _remove(folders: list[Path]) -> None:
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            pass


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _create(path: str) -> int:
    """A new file, opened for writing: never one already there, nor through a link."""
    return os.open(path, _CREATE, 0o666)


def _write(repo: Repository, cid: CID, partial: Path, destination: Path) -> int:
    """Write the DAG at `partial` (iteratively: nesting is bounded by files.max-depth,
    not by Python's stack); every file and folder is created new."""
    max_depth = repo.config.get(MAX_DEPTH_KEY)
    files = 0
    stack: list[tuple[CID, str]] = [(cid, "")]  # what, and where relative to partial
    while stack:
        current_cid, relative = stack.pop()
        path = os.path.join(partial, relative) if relative else str(partial)
        current = node(repo, current_cid)
        try:
            if current.kind == DIRECTORY:
                os.mkdir(path)
                stack.extend((link.cid, os.path.join(relative, link.name) if relative else link.name)
                             for link in reversed(current.links))
                continue
            with open(_create(path), "wb") as f:
                for chunk in _chunks(repo, current_cid, current, max_depth):
                    f.write(chunk)
            files += 1
        except FileExistsError:
            raise UnsafeTree(
                f"refusing {cid}: '{os.path.join(destination, relative)}' is the same name as "
                "another entry of its folder on this file system (case or Unicode folding)") from None
        except OSError as e:
            raise MizuError(f"cannot write {os.path.join(destination, relative)}: {e.strerror}") from None
    return files
