"""UnixFS over dag-pb, byte-compatible with `ipfs add`'s classic defaults (SPEC §8).

Files are cut into 256 KiB chunks; leaves are UnixFS `File` nodes (or, with raw leaves, raw
blocks); a balanced tree of at most 174 links per node joins them, every leaf at the same
depth. Directories are UnixFS `Directory` nodes linking their entries by name, in byte
order. The nodes themselves are `message/dagpb.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from mizu_core.message.cid import CID, DAG_PB, RAW
from mizu_core.message.dagpb import DIRECTORY, FILE, Link, encode_node, unixfs_data

CHUNK_SIZE = 256 * 1024
MAX_LINKS = 174


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
