"""The dag-pb block format, as IPFS files use it: a protobuf node of named links and the
UnixFS message in its data.

A format of blocks, like DAG-CBOR beside it: the store checks received dag-pb blocks and
follows their links (gc, fsck, export) with this module alone; building and reading files
from such nodes is `files/`'s work. The protobuf is written by hand: links first, then
data, as go-ipfs does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mizu_core.errors import InvalidMessage
from mizu_core.message.cid import CID, read_varint, varint

RAW_TYPE, DIRECTORY, FILE = 0, 1, 2  # UnixFS node types


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
