"""What a block links to, whatever its format: what gc keeps, fsck and a pull follow, and
export writes along with a block."""

from __future__ import annotations

from mizu_core.errors import MizuError
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB
from mizu_core.message.dagpb import decode_node
from mizu_core.message.validate import schema_cids


def block_links(cid: CID, data: bytes) -> list[CID]:
    """The blocks a block links: tag-42 links of dag-cbor, links of dag-pb (files)."""
    try:
        if cid.codec == DAG_CBOR:
            return list(codec.iter_links(codec.decode(data)))
        if cid.codec == DAG_PB:
            return [link.cid for link in decode_node(data).links]
    except MizuError:
        pass
    return []


def block_references(cid: CID, data: bytes) -> list[CID]:
    """`block_links`, and for a message the schema messages its `$schema` fields name:
    what gc keeps and export writes along with the block."""
    links = block_links(cid, data)
    if cid.codec == DAG_CBOR and b"$schema" in data:
        try:
            links.extend(schema_cids(codec.decode(data)))
        except MizuError:
            pass
    return links
