"""The Merkle tree of a subscription's records: a prolly tree over their CIDs.

Node boundaries depend only on the keys (a key ends its node when its salted hash falls
under 1/FANOUT), so the same set gives the same root whatever the order it arrived in, and
one insert changes only the nodes on its path: O(log n) of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR

FANOUT = 64  # average entries per node: ~2.3 KB nodes, three levels for 100k records
MAX_ENTRIES = 16 * FANOUT  # a run without a boundary (only a crafted one) is cut here
_THRESHOLD = (1 << 32) // FANOUT
MAX_LEVEL = 32


@dataclass(frozen=True)
class Node:
    level: int  # 0: entries are records; above: entries are child nodes
    entries: tuple[CID, ...]

    def encode(self) -> bytes:
        return _encode_node(self.level, [e.raw for e in self.entries])


@dataclass(frozen=True)
class Tree:
    root: CID
    nodes: dict[CID, bytes]  # every node block of the tree, the root included


def _ends_node(key: bytes, level: int) -> bool:
    digest = hashlib.sha256(key + bytes((level,))).digest()
    return int.from_bytes(digest[:4], "big") < _THRESHOLD


def build(records: Iterable[CID]) -> Tree:
    """The tree over a set of record CIDs (duplicates and order do not matter)."""
    return build_raw({cid.to_v1().raw for cid in records})


def level_of(data: bytes) -> int:
    """The level of a node block this module encoded, read without decoding it."""
    head = data[len(_NODE_START)]
    return data[len(_NODE_START) + 1] if head == 0x18 else head


_NODE_START = b"\xa2elevel"


def _encode_node(level: int, links: list[bytes]) -> bytes:
    # Node.encode's canonical DAG-CBOR, written directly: this runs for every node of
    # every rebuild. Keys sort by length: "level" before "entries"; links are tag 42.
    out = bytearray(_NODE_START)
    out += codec.encode(level)
    out += b"gentries" + codec.head(4, len(links))
    for raw in links:
        out += b"\xd8\x2a" + codec.head(2, len(raw) + 1) + b"\x00" + raw
    return bytes(out)


def build_raw(keys: Iterable[bytes]) -> Tree:
    """The tree over binary v1 record CIDs."""
    nodes: dict[CID, bytes] = {}
    # Each level is a list of (key that decides boundaries, binary CID of the entry).
    entries = [(key, key) for key in sorted(set(keys))]
    level = 0
    while True:
        chunks: list[list[tuple[bytes, bytes]]] = [[]]
        for entry in entries:
            chunks[-1].append(entry)
            if level < MAX_LEVEL and (_ends_node(entry[0], level) or len(chunks[-1]) == MAX_ENTRIES):
                chunks.append([])  # (the top level is always one node)
        if not chunks[-1] and len(chunks) > 1:
            chunks.pop()
        parents = []
        for chunk in chunks:
            data = _encode_node(level, [raw for _, raw in chunk])
            cid = CID.for_block(data)
            nodes[cid] = data
            # A child is known by its last key: the same keys always give the same parent.
            parents.append((chunk[-1][0] if chunk else b"", cid.raw))
        if len(parents) == 1:
            return Tree(CID(parents[0][1]), nodes)
        entries = parents
        level += 1


def decode(cid: CID, data: bytes) -> Node:
    """A node block from anywhere, checked: its hash, shape and links."""
    if cid.codec != DAG_CBOR or not cid.matches(data):
        raise InvalidMessage(f"tree node does not hash to {cid}")
    value = codec.decode(data)
    if (
        type(value) is not dict
        or set(value) != {"level", "entries"}
        or type(value["level"]) is not int
        or not 0 <= value["level"] <= MAX_LEVEL
        or type(value["entries"]) is not list
        or any(type(e) is not CID for e in value["entries"])
    ):
        raise InvalidMessage(f"{cid} is not a tree node")
    entries = tuple(e.to_v1() for e in value["entries"])
    if value["level"] > 0 and any(e.codec != DAG_CBOR for e in entries):
        raise InvalidMessage(f"tree node {cid} links a child that is not a node")
    return Node(value["level"], entries)
