"""UnixFS over dag-pb, byte-compatible with `ipfs add`'s classic defaults (SPEC §8).

Files are cut into 256 KiB chunks; leaves are UnixFS `File` nodes (or, with raw leaves, raw
blocks); a balanced tree of at most 174 links per node joins them, every leaf at the same
depth. Directories are UnixFS `Directory` nodes linking their entries by name, in byte
order. The protobuf is written by hand: links first, then data, as go-ipfs does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mizu_core.errors import InvalidMessage
from mizu_core.message.cid import CID, DAG_PB, RAW, read_varint, varint

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174
RAW_TYPE, DIRECTORY, FILE = 0, 1, 2


@dataclass(frozen=True)
class Link:
    cid: CID
    name: str
    tsize: int  # the linked block's size plus its descendants' (what `ipfs` calls Tsize)


@dataclass(frozen=True)
class Node:
    """A decoded dag-pb node and the UnixFS message in its data."""

    links: tuple[Link, ...]
    kind: int
    data: bytes  # the file bytes a leaf carries
    filesize: int | None
    blocksizes: tuple[int, ...]
    unixfs: bool = True  # False: a dag-pb node without UnixFS data (no Data, or no Type in it)


def _field_bytes(number: int, value: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(value)) + value


def _field_int(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def unixfs_data(kind: int, data: bytes = b"", filesize: int | None = None,
                blocksizes: tuple[int, ...] = ()) -> bytes:
    out = _field_int(1, kind)
    if data:
        out += _field_bytes(2, data)
    if filesize is not None:
        out += _field_int(3, filesize)
    for size in blocksizes:
        out += _field_int(4, size)
    return out


def encode_node(links: tuple[Link, ...], data: bytes) -> bytes:
    out = b""
    for link in links:
        encoded = _field_bytes(1, link.cid.raw) + _field_bytes(2, link.name.encode()) + _field_int(3, link.tsize)
        out += _field_bytes(2, encoded)
    return out + _field_bytes(1, data)


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            yield number, buf[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire}")


def decode_node(block: bytes) -> Node:
    """Parse a dag-pb block holding UnixFS; InvalidMessage if it is neither."""
    try:
        links: list[Link] = []
        data, has_data, has_type = b"", False, False
        for number, value in _fields(block):
            if number == 2 and isinstance(value, bytes):
                fields = dict(_fields(value))
                cid, name, tsize = fields[1], fields.get(2, b""), fields.get(3, 0)
                if not isinstance(cid, bytes) or not isinstance(name, bytes) or not isinstance(tsize, int):
                    raise ValueError("malformed link")
                links.append(Link(CID(cid), name.decode("utf-8"), tsize))
            elif number == 1 and isinstance(value, bytes):
                data, has_data = value, True
        kind, content, filesize, sizes = FILE, b"", None, []
        for number, value in _fields(data):
            if number == 1 and isinstance(value, int):
                kind, has_type = value, True
            elif number == 2 and isinstance(value, bytes):
                content = value
            elif number == 3 and isinstance(value, int):
                filesize = value
            elif number == 4 and isinstance(value, int):
                sizes.append(value)
    except (ValueError, KeyError, UnicodeDecodeError) as e:
        raise InvalidMessage(f"not a UnixFS dag-pb node: {e}") from None
    return Node(tuple(links), kind, content, filesize, tuple(sizes), has_data and has_type)


Put = Callable[[CID, bytes], None]


class FileBuilder:
    """Builds a file's balanced DAG chunk by chunk, keeping at most one node per level.

    The classic layout links CIDv0s (what `ipfs add` prints as Qm…; Mizu prints the root
    as CIDv1); with raw leaves every link is a CIDv1, as `ipfs add --cid-version=1`.
    """

    def __init__(self, put: Put, raw_leaves: bool = False) -> None:
        self.put = put
        self.raw_leaves = raw_leaves
        self.levels: list[list[tuple[Link, int]]] = [[]]  # per depth: (link, file bytes)

    def _store(self, block: bytes, codec: int) -> CID:
        cid = CID.for_block(block, codec=codec, version=1 if self.raw_leaves or codec != DAG_PB else 0)
        self.put(cid, block)
        return cid

    def add_chunk(self, chunk: bytes) -> None:
        if self.raw_leaves:
            cid = self._store(chunk, RAW)
            self._push(0, Link(cid, "", len(chunk)), len(chunk))
        else:
            block = encode_node((), unixfs_data(FILE, chunk, len(chunk)))
            self._push(0, Link(self._store(block, DAG_PB), "", len(block)), len(chunk))

    def _push(self, depth: int, link: Link, size: int) -> None:
        if len(self.levels[depth]) == MAX_LINKS:
            self._close(depth)
        self.levels[depth].append((link, size))

    def _close(self, depth: int) -> None:
        """Turn the full (or last) run of children at `depth` into one parent node."""
        children = self.levels[depth]
        self.levels[depth] = []
        if depth + 1 == len(self.levels):
            self.levels.append([])
        self._push(depth + 1, *self._parent(children))

    def _parent(self, children: list[tuple[Link, int]]) -> tuple[Link, int]:
        sizes = tuple(size for _, size in children)
        data = unixfs_data(FILE, b"", sum(sizes), sizes)
        block = encode_node(tuple(link for link, _ in children), data)
        cid = self._store(block, DAG_PB)
        return Link(cid, "", len(block) + sum(link.tsize for link, _ in children)), sum(sizes)

    def finish(self) -> Link:
        """The root: a lone leaf is its own root; otherwise every level is closed so all
        leaves sit at the same depth, as go-ipfs's balanced layout has them."""
        if not any(self.levels):
            self.add_chunk(b"")
        depth = 0
        while True:
            level = self.levels[depth]
            if depth == len(self.levels) - 1 and len(level) == 1:
                return level[0][0]
            if level:
                self._close(depth)
            depth += 1


def directory_node(entries: list[Link]) -> bytes:
    return encode_node(tuple(sorted(entries, key=lambda e: e.name.encode())), unixfs_data(DIRECTORY))
