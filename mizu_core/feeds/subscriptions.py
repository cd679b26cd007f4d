"""Subscriptions kept in the repository: each is a query's CID, its record set, and the
prolly tree over those records (tables `subs`, `sub_records`, `sub_nodes`).

Records are added, never recomputed from scratch: a refresh looks only at messages that
arrived since the last one, so keeping a large feed current costs what arrived.

A query inside a larger message (`CID/path`, a stream's named query) is followed through
its pointer message (`queries.pointer`), which is the feed's id; the message the query sits
in is one of its records, and the feed waits (inactive) while that message is not here.

Two kinds share the tables: those the user follows (`subscribe`), and feeds peers asked a
serving node for (`ask`), marked by the time they were last asked. Asked feeds are a cache
kept fresh like the others, within bounds (`AskBounds`): the least recently asked go first,
gc drops them all (`kept.py`), and they are not listed, pulled or pushed unless asked for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mizu_core.errors import MizuError, NotFound, QueryError, QueryTimeout, UsageError
from mizu_core.feeds import filters, prolly, records
from mizu_core.feeds.queries import compile_query, pointer, pointer_target
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB
from mizu_core.message.links import block_links
from mizu_core.publish import publish
from mizu_core.query import subjects
from mizu_core.repo import blockstore, subscription_tables
from mizu_core.repo.arrivals import arrived_after, next_seq
from mizu_core.repo.index import TermCache, TripleIndex
from mizu_core.repo.ingest import read_message
from mizu_core.repo.kv import Txn
from mizu_core.repo.received import Checked, store_checked
from mizu_core.repo.repository import Repository
from mizu_core.repo.tables import SUBSCRIPTION_CID_LEN


@dataclass(frozen=True)
class Subscription:
    cid: CID  # the query message: the subscription's id
    root: CID | None  # the tree's root; None before the first refresh
    records: int
    seen: int  # arrival seq up to which messages were checked against the query
    active: bool  # False while the query message (or the message it points into) is not here yet
    stale: bool = False  # records were added since the tree was built
    asked: float = 0.0  # 0: followed here; else asked for by peers, last at this Unix time
    # A pull began storing it and did not finish: blocks its file records link may be missing
    partial: bool = False

    def encode(self) -> bytes:
        value: dict[str, Any] = {"root": self.root, "records": self.records, "seen": self.seen,
                                 "stale": self.stale}
        if self.asked:
            value["asked"] = self.asked
        if self.partial:
            value["partial"] = True
        return codec.encode(value)

    @classmethod
    def decode(cls, raw_cid: bytes, data: bytes, txn: Txn) -> Subscription:
        value = codec.decode_trusted(data)
        cid = CID(raw_cid)
        active = _query_here(txn, raw_cid)
        return cls(cid, value["root"], value["records"], value["seen"], active,
                   value.get("stale", False), value.get("asked", 0.0), value.get("partial", False))


def _query_here(txn: Txn, raw: bytes) -> bool:
    """Whether the query message `raw` is here, and, for a pointer, the message it points
    into (only a small map holding `$include` is decoded to tell)."""
    if not blockstore.is_message(txn, raw):
        return False
    data = blockstore.get(txn, raw)
    if data is None or data[:1] not in (b"\xa1", b"\xa2") or b"$include" not in data:
        return True
    target = pointer_target(codec.decode_trusted(bytes(data)))
    return target is None or blockstore.is_message(txn, target[0].raw)


def query_messages(repo: Repository, cid: CID) -> list[CID]:
    """The messages a peer needs to build the feed `cid`: its query message, and, when
    that is a pointer (`CID/path`), the message it points into."""
    cid = cid.to_v1()
    with repo.store.reader() as txn:
        target = pointer_target(read_message(txn, cid))
    return [cid] if target is None else [cid, target[0]]


def query_path(repo: Repository, cid: CID) -> str | None:
    """`CID/path` of the query a feed's pointer names (a query inside a message), as
    `mizu subscribe` takes it; None for a feed whose query message is its own, or not here."""
    with repo.store.reader() as txn:
        target = pointer_target(read_message(txn, cid.to_v1()))
    return None if target is None else f"{target[0]}/{target[1]}".rstrip("/")


def _query_cids(message: Any, cid: CID) -> set[CID]:
    """The feed's own records besides what matches: its query message, and the message a
    pointer points into."""
    target = pointer_target(message)
    return {cid} if target is None else {cid, target[0]}


def _read(txn: Txn, cid: CID) -> Subscription | None:
    data = subscription_tables.state(txn, cid.raw)
    return Subscription.decode(cid.raw, bytes(data), txn) if data is not None else None


def get(repo: Repository, cid: CID, asked: bool = False) -> Subscription:
    """A subscription followed here (with `asked`, or one peers asked for)."""
    with repo.store.reader() as txn:
        sub = _read(txn, cid.to_v1())
    if sub is None or (sub.asked and not asked):
        raise NotFound(f"not subscribed to {cid}", hint="list them: mizu subscriptions")
    return sub


def listing(repo: Repository, asked: bool = False) -> list[Subscription]:
    """The subscriptions followed here (with `asked`, and the feeds peers asked for)."""
    with repo.store.reader() as txn:
        found = [Subscription.decode(k, v, txn) for k, v in subscription_tables.states(txn)]
    return found if asked else [s for s in found if not s.asked]


def subscribe(repo: Repository, query: Any = None, cid: CID | None = None,
              path: str = "") -> tuple[Subscription, bool]:
    """Track a query given as an object (published unsigned, so the same query names the
    same feed on every node) or by the CID of a message holding it, here or not yet; with
    `path`, the query at that path inside message `cid`, named by its pointer (published
    unsigned too: the same `CID/path` names the same feed everywhere).
    Returns the subscription and whether it is new."""
    if cid is not None and path.strip("/"):
        _check_message_cid(cid)
        query, cid = pointer(cid, path), None
    if cid is None:
        with repo.store.reader() as txn:
            _check_feed_query(txn, query)  # refuse what is not a query before publishing it
        cid = publish(repo, query, sign=False)
    cid = cid.to_v1()
    _check_message_cid(cid)
    with repo.store.writer() as txn:
        message = read_message(txn, cid)
        if message is not None:
            _check_feed_query(txn, message, cid)
        initial = Subscription(cid, None, 0, 0, False)
        new = subscription_tables.create(txn, cid.raw, initial.encode())
        existing = _read(txn, cid) if not new else None
        if existing is not None and existing.asked:  # a feed peers asked for: now followed
            subscription_tables.set_state(txn, cid.raw, replace(existing, asked=0.0).encode())
            new = True
    return refresh(repo, cid), new


def _check_message_cid(cid: CID) -> None:
    cid = cid.to_v1()
    if cid.codec != DAG_CBOR or len(cid.raw) != SUBSCRIPTION_CID_LEN:
        raise QueryError(f"{cid} is not a message CID (dag-cbor, sha2-256), so it holds no query")


def _check_feed_query(txn: Txn, query: Any, cid: CID | None = None) -> None:
    """Refuse what is not a query a feed can follow; a pointer into a message not here
    yet waits for it, as a query CID not here does."""
    target = pointer_target(query)
    if target is not None and read_message(txn, target[0]) is None:
        return
    try:
        compile_query(txn, query, cid)
    except UsageError as e:  # a $var: a feed has no parameters to fill it with
        raise QueryError(f"{e}: a feed's query takes no parameters ($var)") from None


def unsubscribe(repo: Repository, cid: CID) -> None:
    """Stop tracking: the records stay until `mizu gc` finds nothing else keeps them."""
    cid = cid.to_v1()
    with repo.store.writer() as txn:
        sub = _read(txn, cid)
        if sub is None or sub.asked or not subscription_tables.drop(txn, cid.raw):
            raise NotFound(f"not subscribed to {cid}")


def refresh(repo: Repository, cid: CID) -> Subscription:
    """Bring a subscription's records up to what arrived since it last looked, and its
    tree up to its records. Cheap when nothing changed (one read transaction)."""
    cid = cid.to_v1()
    with repo.store.reader() as txn:
        sub = _read(txn, cid)
        if sub is None:
            raise NotFound(f"not subscribed to {cid}")
        if sub.root is not None and not sub.stale and (sub.seen >= next_seq(txn) - 1 or not sub.active):
            return sub
    with repo.store.writer() as txn:
        sub = _read(txn, cid)
        if sub is None:
            raise NotFound(f"not subscribed to {cid}")
        upto = next_seq(txn) - 1
        found: set[CID] = set()
        if sub.active and sub.seen < upto:
            found = _arrivals(txn, cid, sub.seen) - filters.private_messages(repo)
        added = _add(txn, cid, found)
        root, count = sub.root, sub.records + added
        if root is None or sub.stale or added:
            root = _rebuild(txn, cid, sub.root)
        seen = upto if sub.active else sub.seen
        fresh = Subscription(cid, root, count, seen, sub.active, asked=sub.asked, partial=sub.partial)
        subscription_tables.set_state(txn, cid.raw, fresh.encode())
    return fresh


@dataclass(frozen=True)
class AskBounds:
    """How far a node goes for the feeds peers ask for (sync/protocol.py has the values)."""

    feeds: int  # asked feeds kept at once; the least recently asked is dropped (0: none)
    records: int  # records of one asked feed: a larger one is refused
    total: int  # records of every asked feed together: the oldest go to make room
    budget: float  # seconds the matching of a first build may take
    touch: float = 1.0  # a feed's last-asked time is written again after this long


def ask(repo: Repository, cid: CID, query: Checked | None, bounds: AskBounds,
        now: float, included: Sequence[Checked] = ()) -> Subscription | None:
    """The feed `cid` as a peer asks for it, current: followed here, asked for before (its
    last-asked time becomes `now`), or built now from `query`, its query message, which
    the caller has checked as a received block (`included`: for a pointer, the message it
    points into, checked too, when the peer sent it). None when there is no such feed here
    and no query came to build it from. QueryError when it cannot be built within `bounds`."""
    cid = cid.to_v1()
    with repo.store.reader() as txn:
        sub = _read(txn, cid)
    if sub is None and query is None:
        return None
    if sub is None:
        assert query is not None
        _build_asked(repo, cid, query, bounds, now, included)
    elif (query is not None and not sub.active) or (sub.asked and now - sub.asked >= bounds.touch):
        with repo.store.writer() as txn:
            current = _read(txn, cid)
            if current is not None and current.asked:
                subscription_tables.set_state(txn, cid.raw, replace(current, asked=now).encode())
            if current is not None and query is not None and not current.active:
                _check_query(txn, cid, query, included)  # the query a followed feed was waiting for
                store_checked(txn, [query, *included])
    fresh = refresh(repo, cid)
    if fresh.asked:
        _bound_grown(repo, fresh, bounds)
    return fresh


def _bound_grown(repo: Repository, feed: Subscription, bounds: AskBounds) -> None:
    """An asked feed grows as messages arrive: held to the bounds of a first build, it is
    dropped (and the ask refused) over the per-feed limit; over the total, the other asked
    feeds go, least recently asked first."""
    limit = min(bounds.records, bounds.total)
    if feed.records > limit:
        with repo.store.writer() as txn:
            subscription_tables.drop(txn, feed.cid.raw)
        raise QueryError(f"feed {feed.cid} grew to {feed.records} records here, over what this node "
                         f"keeps for a feed it does not follow ({limit})")
    with repo.store.reader() as txn:
        if not _make_room(txn, feed.cid, feed.records, bounds, new=False, drop=False):
            return
    with repo.store.writer() as txn:
        _make_room(txn, feed.cid, feed.records, bounds, new=False)


def _make_room(txn: Txn, cid: CID, records: int, bounds: AskBounds, new: bool, drop: bool = True) -> bool:
    """Drop asked feeds other than `cid`, least recently asked first, until its `records`
    fit in `bounds.total` (and, for a `new` one, it fits in `bounds.feeds`). Whether any
    had to go (with `drop` false, only that is told)."""
    others = sorted((s for k, v in subscription_tables.states(txn)
                     if (s := Subscription.decode(k, v, txn)).asked and s.cid != cid), key=lambda s: s.asked)
    total, dropped = sum(s.records for s in others) + records, False
    while others and ((new and len(others) >= bounds.feeds) or total > bounds.total):
        if not drop:
            return True
        oldest = others.pop(0)
        subscription_tables.drop(txn, oldest.cid.raw)
        total, dropped = total - oldest.records, True
    return dropped


def _check_query(txn: Txn, cid: CID, query: Checked, included: Sequence[Checked] = ()) -> Any:
    """The algebra of a peer's query message (and, for a pointer, of the query in the
    message it points into, which may come in `included`)."""
    if query.cid != cid or query.signers is None or len(cid.raw) != SUBSCRIPTION_CID_LEN:
        raise QueryError(f"{cid} is not a message CID (dag-cbor, sha2-256), so it holds no query")
    message = codec.decode_trusted(query.data)
    target = pointer_target(message)
    held = {}
    for block in included:
        if target is None or block.cid != target[0] or block.signers is None:
            raise QueryError(f"block {block.cid} sent with {cid} is not the message its query sits in")
        held[block.cid] = codec.decode_trusted(block.data)
    try:
        return compile_query(txn, message, cid, held)
    except MizuError as e:
        raise QueryError(f"{cid} holds no query this node can read: {e}") from None


def _build_asked(repo: Repository, cid: CID, query: Checked, bounds: AskBounds, now: float,
                 included: Sequence[Checked] = ()) -> None:
    """Match a new asked feed's query over one snapshot (no write lock held, within the
    budget), then store the query, its records and tree in one write transaction, making
    room among the other asked feeds, least recently asked first."""
    if bounds.feeds <= 0:
        raise QueryError("this node serves only the feeds it follows (serve.asked-feeds-max is 0)")
    limit = min(bounds.records, bounds.total)
    too_many = f"feed {cid} holds more than {limit} records here, over what this node keeps for a feed it does not follow"
    with repo.store.reader() as txn:
        upto = next_seq(txn) - 1
        patterns = subjects.subject_patterns(_check_query(txn, cid, query, included))
        try:
            matched = subjects.matching_messages(patterns, TripleIndex(txn), budget=bounds.budget)
        except QueryTimeout:
            raise QueryTimeout(f"building feed {cid} needs more than {bounds.budget:g} s here") from None
        if len(matched) > limit:
            raise QueryError(too_many)
        found = records.closure(txn, matched | _query_cids(codec.decode_trusted(query.data), cid))
        found -= filters.private_messages(repo)
    if len(found) > limit:
        raise QueryError(too_many)
    with repo.store.writer() as txn:
        if _read(txn, cid) is not None:
            return  # another request built it meanwhile
        _make_room(txn, cid, len(found), bounds, new=True)
        store_checked(txn, [query, *included])
        count = _add(txn, cid, found)
        root = _rebuild(txn, cid, None)
        subscription_tables.create(txn, cid.raw, Subscription(cid, root, count, upto, True, asked=now).encode())


def forget_asked(txn: Txn) -> int:
    """Drop every feed peers asked for, in the caller's write transaction (gc does, as it
    keeps none of their records); a peer's next ask builds it again from what is left."""
    asked = [raw for raw, data in subscription_tables.states(txn) if codec.decode_trusted(data).get("asked")]
    for raw in asked:
        subscription_tables.drop(txn, raw)
    return len(asked)


def _arrivals(txn: Txn, cid: CID, seen: int) -> set[CID]:
    message = read_message(txn, cid)
    assert message is not None
    patterns = subjects.subject_patterns(compile_query(txn, message, cid))
    index = TripleIndex(txn)
    if seen == 0:
        matched = subjects.matching_messages(patterns, index)
    else:
        # Records pulled for this subscription are in already: only look at the others.
        among = [
            CID(raw) for raw in arrived_after(txn, seen)
            if not subscription_tables.has_record(txn, cid.raw, raw)
        ]
        matched = subjects.matching_messages(patterns, index, among, txn)
    return records.closure(txn, matched | _query_cids(message, cid))


def add_records(txn: Txn, cid: CID, cids: Iterable[CID]) -> int:
    """Add records received for a subscription (inside the caller's write transaction);
    the tree is rebuilt at the next refresh."""
    cid = cid.to_v1()
    sub = _read(txn, cid)
    if sub is None:
        return 0
    added = _add(txn, cid, cids)
    if added:
        stale = replace(sub, records=sub.records + added, stale=True)
        subscription_tables.set_state(txn, cid.raw, stale.encode())
    return added


def store_received(repo: Repository, cid: CID, blocks: Sequence[Checked],
                   records: Collection[CID], terms: TermCache | None = None) -> tuple[int, int]:
    """Store checked blocks received for a subscription, and add those among `records` to
    its records, in one write transaction (both or neither): (blocks new, records added).
    `terms`: as `Ingest` takes them."""
    with repo.store.writer() as txn:
        stored = store_checked(txn, blocks, repo.store.release_pages, terms)
        return stored, add_records(txn, cid, [b.cid for b in blocks if b.cid in records])


def set_partial(repo: Repository, cid: CID, partial: bool) -> None:
    """Mark that a pull of the subscription began storing (True), or that nothing it
    stored lacks what it links (False): see `unlinked`."""
    with repo.store.writer() as txn:
        sub = _read(txn, cid.to_v1())
        if sub is not None and sub.partial != partial:
            subscription_tables.set_state(txn, sub.cid.raw, replace(sub, partial=partial).encode())


def unlinked(repo: Repository, cid: CID) -> list[CID]:
    """The blocks the subscription's file records (dag-pb) link, directly or through other
    dag-pb nodes, that are not here. A pull stores a file's root, a record, before the
    chunks it links, which are not records: cut in between, the trees are the same again
    once the other records are in, and only this finds the chunks still missing."""
    missing: list[CID] = []
    with repo.store.reader() as txn:
        stack = [c for c in (CID(raw) for raw in subscription_tables.records(txn, cid.to_v1().raw))
                 if c.codec == DAG_PB]
        seen = set(stack)
        while stack:
            block = stack.pop()
            data = blockstore.get(txn, block.raw) if block.codec == DAG_PB else None
            if data is None:
                if not blockstore.has(txn, block.raw):
                    missing.append(block)
                continue
            for link in block_links(block, bytes(data)):
                if (link := link.to_v1()) not in seen:
                    seen.add(link)
                    stack.append(link)
    return missing


def _add(txn: Txn, cid: CID, cids: Iterable[CID]) -> int:
    return sum(subscription_tables.add_record(txn, cid.raw, r.to_v1().raw) for r in cids)


def export_roots(repo: Repository, cid: CID) -> tuple[list[CID], list[CID]]:
    """What a CAR of a subscription holds: its query message as the root, and every
    record (with what they link). Importing it and subscribing rebuilds the same tree."""
    sub = refresh(repo, cid)
    if not sub.active:
        raise NotFound(f"the query of {cid} is not here yet", hint="mizu pull first")
    with repo.store.reader() as txn:
        return [sub.cid], [sub.cid, *record_cids(txn, sub.cid)]


def record_cids(txn: Txn, cid: CID) -> list[CID]:
    return [CID(raw) for raw in subscription_tables.records(txn, cid.to_v1().raw)]


def _rebuild(txn: Txn, cid: CID, previous_root: CID | None) -> CID:
    """Build the tree anew, keeping the previous tree's nodes too: a peer walking the
    previous root while this node moves on can still finish. Older nodes go."""
    tree = prolly.build_raw(subscription_tables.records(txn, cid.raw))
    keep = {n.raw for n in tree.nodes} | _tree_nodes(txn, cid, previous_root)
    for raw in subscription_tables.nodes(txn, cid.raw):
        if raw not in keep:
            subscription_tables.drop_node(txn, cid.raw, raw)
    for node, data in tree.nodes.items():
        subscription_tables.add_node(txn, cid.raw, node.raw, data)
    return tree.root


def _tree_nodes(txn: Txn, cid: CID, root: CID | None) -> set[bytes]:
    """The binary CIDs of the nodes of the stored tree under `root` (our own blocks:
    decoded without checks, and leaves are not decoded at all)."""
    found: set[bytes] = set()
    stack = [root.raw] if root is not None else []
    while stack:
        raw = stack.pop()
        data = subscription_tables.node(txn, cid.raw, raw)
        if data is None or raw in found:
            continue
        found.add(raw)
        if prolly.level_of(data) > 0:
            stack.extend(e.raw for e in codec.decode_trusted(data)["entries"])
    return found


def tree_node(txn: Txn, cid: CID, node: CID) -> bytes | None:
    return subscription_tables.node(txn, cid.raw, node.raw)


def tree_nodes(repo: Repository, cid: CID, nodes: Iterable[CID]) -> list[tuple[CID, bytes]]:
    """The subscription's tree nodes among `nodes` that are kept here, in their order."""
    with repo.store.reader() as txn:
        found = [(node, subscription_tables.node(txn, cid.raw, node.raw)) for node in nodes]
    return [(node, data) for node, data in found if data is not None]


def node_cids(repo: Repository, cid: CID) -> set[CID]:
    """Every tree node kept for the subscription (the current tree's and the previous)."""
    with repo.store.reader() as txn:
        return {CID(raw) for raw in subscription_tables.nodes(txn, cid.to_v1().raw)}


def have(repo: Repository, cid: CID, cids: Iterable[CID]) -> list[bool]:
    """Whether each of `cids` is here, as a node of the subscription's tree or a stored
    block (one snapshot)."""
    with repo.store.reader() as txn:
        return [subscription_tables.node(txn, cid.raw, c.raw) is not None or blockstore.has(txn, c.raw)
                for c in cids]
