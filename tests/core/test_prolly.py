"""The subscription tree: history independent, and small changes stay small."""

from __future__ import annotations

import hashlib
import random

import pytest

from mizu_core.errors import InvalidMessage
from mizu_core.feeds import prolly
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR


def fake_cids(n: int, salt: str = "") -> list[CID]:
    return [CID.for_block(f"{salt}{i}".encode()) for i in range(n)]


def levels(tree: prolly.Tree) -> int:
    return prolly.decode(tree.root, tree.nodes[tree.root]).level + 1


def test_same_set_in_any_order_gives_the_same_root() -> None:
    cids = fake_cids(5000)
    roots = set()
    for seed in range(4):
        shuffled = cids[:]
        random.Random(seed).shuffle(shuffled)
        roots.add(prolly.build(shuffled + shuffled[:10]).root)  # duplicates change nothing
    assert len(roots) == 1
    # built up by inserts, in two different orders, the root is still the same
    half = prolly.build(cids[:2500]).root
    assert half not in roots
    assert prolly.build(cids[2500:] + cids[:2500]).root in roots


def test_every_record_is_reachable_exactly_once() -> None:
    cids = fake_cids(3000)
    tree = prolly.build(cids)
    leaves: list[CID] = []
    stack = [tree.root]
    while stack:
        node = prolly.decode(stack[-1], tree.nodes[stack.pop()])
        (leaves.extend if node.level == 0 else stack.extend)(node.entries)
    assert sorted(leaves) == sorted(c.to_v1() for c in cids)
    assert len(leaves) == len(set(leaves))


def test_one_insert_into_100k_changes_log_n_nodes() -> None:
    cids = fake_cids(100_000)
    before = prolly.build(cids)
    after = prolly.build([*cids, CID.for_block(b"one more")])
    changed = set(after.nodes) - set(before.nodes)
    depth = levels(after)
    assert depth <= 4  # 100k records, 64 per node
    # the path from root to the new leaf, plus at most a split neighbour per level
    assert len(changed) <= 2 * depth, (len(changed), depth)
    assert len(after.nodes) > 1000


def test_empty_set_has_a_root() -> None:
    tree = prolly.build([])
    assert prolly.decode(tree.root, tree.nodes[tree.root]).entries == ()


def test_hostile_nodes_are_refused() -> None:
    tree = prolly.build(fake_cids(10))
    data = tree.nodes[tree.root]
    with pytest.raises(InvalidMessage, match="does not hash"):
        prolly.decode(tree.root, data[:-1] + b"\x00")
    bogus = b"\xa1ehelloeworld"
    with pytest.raises(InvalidMessage, match="not a tree node"):
        prolly.decode(CID.for_block(bogus), bogus)
    assert CID.for_block(data).codec == DAG_CBOR
    assert hashlib.sha256(data).digest() == tree.root.digest


def test_the_fast_node_encoder_is_canonical_dag_cbor() -> None:
    for n in (0, 1, 23, 24, 300):
        node = prolly.Node(n % 3, tuple(fake_cids(n)))
        assert node.encode() == codec.encode({"level": node.level, "entries": list(node.entries)})


def test_the_level_of_a_node_is_read_without_decoding_it() -> None:
    for level in (0, 1, 23, 24, 32):
        assert prolly.level_of(prolly.Node(level, tuple(fake_cids(3))).encode()) == level
