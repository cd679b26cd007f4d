"""Storage upkeep: garbage collection and the consistency check (`fsck`).

gc keeps pinned blocks and every block they reference (tag-42 links, dag-pb links, the
schema messages of `$schema`), and drops the rest with their triples, log entries and
metadata in one transaction. fsck re-hashes every block, re-validates every message and
proves the three index orderings equal the triples the messages give.

fsck tells corruption from incompleteness. Corruption (a problem, exit 1) is what no
command could have stored: a block that does not hash to its CID, a message that
`validate_message` (the judge of put and import too) refuses, an index that disagrees
with the blocks. Incompleteness is what partial replication makes normal: a link to a
block not stored, a `$prev` ancestor not stored, a `$schema` whose schema message is not
stored (its conformance then goes unchecked); it is reported and is not a failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mizu_core.errors import MizuError
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB
from mizu_core.message.links import block_links, block_references
from mizu_core.message.triples import message_triples
from mizu_core.message.update import prev_cids
from mizu_core.message.validate import validate_message
from mizu_core.repo import blockstore, pins, tables
from mizu_core.repo.index import IndexWriter, TermDictionary
from mizu_core.repo.ingest import MessageInfo, read_message
from mizu_core.repo.kv import Txn, prefix_end
from mizu_core.repo.repository import Repository


@dataclass(frozen=True)
class GcResult:
    blocks: int
    messages: int
    triples: int
    bytes: int


def live_blocks(txn: Txn, roots: Iterable[CID] = ()) -> set[bytes]:
    """Pinned blocks (and `roots`) and everything they reference, transitively."""
    live: set[bytes] = set()
    stack = list(pins.pinned(txn)) + [root.to_v1().raw for root in roots]
    while stack:
        key = stack.pop()
        if key in live:
            continue
        live.add(key)
        data = blockstore.get(txn, key)
        if data is not None:
            stack.extend(link.to_v1().raw for link in block_references(CID(key), bytes(data)))
    return live


def gc(repo: Repository, roots: Callable[[Txn], Iterable[CID]] = lambda txn: ()) -> GcResult:
    """Drop what neither a pin nor `roots` keeps. `roots` are what the layers above hold
    (feeds: `feeds.kept.gc_roots`), read in gc's own write transaction."""
    blocks = messages = triples = freed = 0
    with repo.collecting(), repo.store.writer() as txn:
        live = live_blocks(txn, roots(txn))
        dead = [key for key, _ in blockstore.scan(txn) if key not in live]
        index = IndexWriter(txn, TermDictionary(txn))
        for key in dead:
            data = bytes(blockstore.get(txn, key) or b"")
            meta = txn.get(tables.MESSAGES, key)
            if meta is not None:
                cid = CID(key)
                seq = tables.seq_key(MessageInfo.decode(cid, bytes(meta)).seq)
                triples += index.remove(message_triples(cid, codec.decode(data)))
                blockstore.delete_message(txn, key, seq)
                txn.delete(tables.LOG, seq)
                txn.delete(tables.MESSAGES, key)
                messages += 1
            else:
                txn.delete(tables.BLOCKS, key)
            blocks += 1
            freed += len(data)
    return GcResult(blocks, messages, triples, freed)


@dataclass
class FsckReport:
    problems: list[str] = field(default_factory=list)  # corruption: fsck fails
    incomplete: list[str] = field(default_factory=list)  # blocks referenced, not stored
    blocks: int = 0
    messages: int = 0
    triples: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def fsck(repo: Repository) -> FsckReport:
    report = FsckReport()
    problem = report.problems.append
    with repo.store.reader() as txn:
        dictionary = TermDictionary(txn)
        for key, data in blockstore.scan(txn):
            report.blocks += 1
            try:
                cid = CID(key)
            except ValueError as e:
                problem(f"block key {key.hex()}: {e}")
                continue
            if not cid.matches(bytes(data)):
                problem(f"block {cid}: content does not hash to its CID")
            elif cid.codec == DAG_PB or (cid.codec == DAG_CBOR and not blockstore.is_message(txn, key)):
                for link in block_links(cid, bytes(data)):  # messages: in _check_message
                    if not blockstore.has(txn, link.to_v1().raw):
                        report.incomplete.append(f"block {cid} links {link}, which is not stored")
        for key, _ in txn.scan(tables.MESSAGE_BLOCKS):
            if txn.get(tables.LOG, key) is None:
                problem(f"message block {tables.seq_of(key)} has no log entry")
        seqs: dict[int, bytes] = {}
        for key, meta in txn.scan(tables.MESSAGES):
            report.messages += 1
            cid = CID(bytes(key))
            info = MessageInfo.decode(cid, bytes(meta))
            seqs[info.seq] = bytes(key)
            if info.size > codec.MAX_MESSAGE_SIZE:  # what put and import refuse
                problem(f"message {cid} is {info.size} bytes, over the 1 MiB limit")
            _check_message(txn, dictionary, cid, report)
        for key, cid_raw in txn.scan(tables.LOG):
            seq = tables.seq_of(key)
            if seqs.pop(seq, None) != bytes(cid_raw):
                problem(f"log entry {seq} names {CID(bytes(cid_raw))}, which has another position")
        for seq, key in seqs.items():
            problem(f"message {CID(key)} (arrival {seq}) is missing from the log")
        counts = {table: txn.count(table) for table in tables.INDEX_TABLES}
        for table, n in counts.items():
            if n != report.triples:
                problem(f"index {table} holds {n} triples but the messages give {report.triples}")
        for key in pins.pinned(txn):
            if not blockstore.has(txn, key):
                problem(f"pin {CID(key)} names a block that is not stored")
        if txn.count(tables.TERMS) != txn.count(tables.TERM_IDS):
            problem("the term dictionary's two tables differ in size")
        _check_statistics(txn, report)
    try:
        _ = repo.identity  # read when first needed: a lost or damaged key shows only then
    except MizuError as e:
        problem(f"identity: {e}")
    return report


def _check_statistics(txn: Txn, report: FsckReport) -> None:
    """The planner's per-predicate counts must equal what the POS index holds."""
    actual: Counter[int] = Counter(tables.ID_KEY.unpack(key)[0] for key, _ in txn.scan(tables.POS))
    end = prefix_end(tables.PREDICATE_COUNT)
    recorded = {
        tables.counted_predicate(key): tables.COUNT.unpack(value)[0]
        for key, value in txn.scan(tables.META, tables.PREDICATE_COUNT, end)
    }
    if recorded != dict(actual):
        report.problems.append("the per-predicate statistics differ from the index")


def _check_message(txn: Txn, dictionary: TermDictionary, cid: CID, report: FsckReport) -> None:
    problem = report.problems.append
    try:
        message: Any = read_message(txn, cid)
    except MizuError as e:
        problem(f"message {cid}: {e}")
        return
    if message is None:
        problem(f"message {cid}: block missing or not a message")
        return
    missing_schemas: list[CID] = []
    try:
        validate_message(message, lambda ref: read_message(txn, ref.cid.to_v1()), missing_schemas)
    except MizuError as e:
        problem(f"message {cid}: {e}")
    incomplete = report.incomplete.append
    for schema in missing_schemas:
        incomplete(f"message {cid}: its $schema {schema} is not stored, so conformance was not checked")
    for link in dict.fromkeys(link.to_v1() for link in codec.iter_links(message)):
        if not blockstore.has(txn, link.raw):
            incomplete(f"message {cid} links {link}, which is not stored")
    for parent in prev_cids(message):
        if not blockstore.has(txn, parent.raw):
            incomplete(f"message {cid}: its $prev {parent} is not stored")
    missing: set[str] = set()
    for triple in message_triples(cid, message):
        report.triples += 1
        ids = [dictionary.lookup(t) for t in triple]
        if None in ids:
            missing.add("the term dictionary")
            continue
        s, p, o = ids
        for table, key in ((tables.SPO, (s, p, o)), (tables.POS, (p, o, s)), (tables.OSP, (o, s, p))):
            if txn.get(table, tables.ID_KEY.pack(*key)) is None:
                missing.add(f"index {table}")
    for where in sorted(missing):
        problem(f"message {cid}: triples are missing from {where}")
