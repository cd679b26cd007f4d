"""A serving node answers any feed a peer asks for, sending its query (SPEC §6): built over
what it holds, private records left out, kept fresh, within bounds, and refused clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mizu_core import Repository
from mizu_core.errors import PeerError
from mizu_core.feeds import subscriptions
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.sync.protocol import MAX_QUERY_BYTES
from mizu_core.sync.server import Server
from tests.core.test_filters import configure
from tests.core.test_sync_session import FEED, answers, exchange, publish_feed

BOUNDS = subscriptions.AskBounds(feeds=2, records=1000, total=10_000, budget=5.0)


def feed_query(n: int) -> dict[str, Any]:
    return {"@select": "?t", "@where": {"@id": "?post", "feed": f"news{n}", "title": "?t"}}


def ask(server: Server, query: dict[str, Any] | None = None, cid: CID | None = None,
        block: bytes | None = None) -> dict[str, Any]:
    """A `roots` request for one feed, with its query message."""
    if block is None and query is not None:
        block = codec.encode(query)
    cid = cid or CID.for_block(block or b"")
    return server.answer({"op": "roots", "subs": [cid], "queries": [block]})


def test_a_server_answers_a_feed_it_does_not_follow_and_keeps_it_fresh(tmp_path: Path) -> None:
    a, b, c = Repository.memory(), Repository.memory(), Repository.memory()
    publish_feed(a, 30)
    unrelated = a.publish([{"other": i} for i in range(10)]).cids
    (secret,) = a.publish([{"feed": "news", "title": "secret", "secret": True}]).cids
    configure(a, tmp_path, "filters.private", '{"secret": true}')
    sub, _ = subscriptions.subscribe(b, FEED)  # a never subscribes

    first = exchange(b, a, lambda s: s.pull(sub.cid))
    assert first.records == 30  # b holds the query: it published it by subscribing
    assert len(answers(b)) == 30 and "secret" not in answers(b)
    assert not b.has(secret) and not any(b.has(u) for u in unrelated)
    assert subscriptions.listing(a) == []  # not a's subscription ...
    (kept,) = subscriptions.listing(a, asked=True)  # ... but a feed a keeps for its peers
    assert kept.cid == sub.cid and kept.asked > 0 and kept.root == subscriptions.get(b, sub.cid).root

    assert exchange(b, a, lambda s: s.pull(sub.cid)).up_to_date
    publish_feed(a, 1, start=30)
    again = exchange(b, a, lambda s: s.pull(sub.cid))
    assert (again.records, again.blocks) == (1, 1)  # kept fresh incrementally

    # c knows only the feed's CID, so sends no query: a answers from the feed it keeps
    subscriptions.subscribe(c, cid=sub.cid)
    assert exchange(c, a, lambda s: s.pull(sub.cid)).records == 32  # the query too
    assert answers(c) == answers(b)

    # a pushing peer finds nothing to push into: a only answers it
    publish_feed(b, 1, start=100)
    with pytest.raises(PeerError, match="not subscribed"):
        exchange(b, a, lambda s: s.push(sub.cid))
    # gc keeps nothing for asked feeds, and drops them; the next ask builds it again
    a.gc()
    assert subscriptions.listing(a, asked=True) == []
    publish_feed(a, 1, start=31)
    assert exchange(b, a, lambda s: s.pull(sub.cid)).records == 1
    # subscribing makes it a's own
    _, new = subscriptions.subscribe(a, FEED)
    assert new and subscriptions.get(a, sub.cid).asked == 0


def test_asked_feeds_are_bounded_least_recently_asked_first() -> None:
    a = Repository.memory()
    for n in range(4):
        a.publish([{"feed": f"news{n}", "title": f"t{i}"} for i in range(5)])
    server = Server(a, BOUNDS)
    now = [1000.0]

    def clock() -> float:
        now[0] += 10
        return now[0]

    server.clock = clock
    cids = [CID.for_block(codec.encode(feed_query(n))) for n in range(4)]
    assert ask(server, feed_query(0))["roots"][0] is not None
    assert ask(server, feed_query(1))["roots"][0] is not None
    assert server.answer({"op": "roots", "subs": [cids[0]]})["roots"][0] is not None  # asked again
    assert ask(server, feed_query(2))["roots"][0] is not None  # two at most: 1 goes, not 0
    kept = {s.cid: s for s in subscriptions.listing(a, asked=True)}
    assert set(kept) == {cids[0], cids[2]} and kept[cids[0]].records == 6  # 5 posts, the query
    assert server.answer({"op": "roots", "subs": [cids[1]]}) == {"roots": [None]}  # no query: none
    with a.store.reader() as txn:  # its records and tree went with it
        assert subscriptions.record_cids(txn, cids[1]) == []
    assert subscriptions.node_cids(a, cids[1]) == set()

    # records: one feed over the limit is refused; the total makes room, oldest first
    small = Server(a, subscriptions.AskBounds(feeds=10, records=5, total=13, budget=5.0))
    assert "holds more than 5 records" in ask(small, feed_query(3))["error"]
    small = Server(a, subscriptions.AskBounds(feeds=10, records=6, total=13, budget=5.0))
    small.clock = clock
    assert ask(small, feed_query(3))["roots"][0] is not None
    assert {s.cid for s in subscriptions.listing(a, asked=True)} == {cids[2], cids[3]}

    # none at all
    closed = Server(a, subscriptions.AskBounds(feeds=0, records=6, total=13, budget=5.0))
    assert "serves only the feeds it follows" in ask(closed, feed_query(1))["error"]
    # a followed feed is answered whatever the bounds, with or without its query
    sub, _ = subscriptions.subscribe(a, feed_query(1))
    assert ask(closed, feed_query(1))["roots"] == [subscriptions.get(a, sub.cid).root]


def test_a_first_build_over_its_budget_or_beyond_the_builds_at_once_is_refused() -> None:
    a = Repository.memory()
    a.publish([{"feed": "news", "title": f"post {i}"} for i in range(3000)])  # the clock is read
    slow = Server(a, subscriptions.AskBounds(feeds=4, records=10_000, total=10_000, budget=1e-9))
    assert "needs more than 1e-09 s here" in ask(slow, FEED)["error"]
    assert subscriptions.listing(a, asked=True) == []  # nothing kept of it

    server = Server(a, subscriptions.AskBounds(feeds=4, records=10_000, total=10_000, budget=5.0))
    while server.builds.acquire(blocking=False):  # every build slot taken
        pass
    assert "busy building" in ask(server, FEED)["error"]
    server.builds.release()
    assert ask(server, FEED)["roots"][0] is not None
    while server.builds.acquire(blocking=False):
        pass
    assert ask(server, FEED)["roots"][0] is not None  # built already: answered when busy too


def test_a_bad_query_block_is_refused_and_stores_nothing() -> None:
    a = Repository.memory()
    publish_feed(a, 3)
    server = Server(a, BOUNDS)
    good = codec.encode(FEED)
    cid = CID.for_block(good)
    before = a.count_triples()

    assert "does not hash" in ask(server, cid=cid, block=good.replace(b"news", b"nows"))["error"]
    huge = {**FEED, "pad": "x" * MAX_QUERY_BYTES}
    assert f"over the {MAX_QUERY_BYTES}-byte limit" in ask(server, huge)["error"]
    assert "bad query block" in ask(server, {**FEED, "$signatures": "forged"})["error"]
    raw = b"not a message"
    assert "not a message CID" in ask(server, cid=CID.for_block(raw, codec=0x55), block=raw)["error"]
    assert "holds no query" in ask(server, {"@select": "?t", "@where": {"@bogus": 1}})["error"]
    assert "malformed 'queries'" in server.answer({"op": "roots", "subs": [cid], "queries": [good, good]})["error"]
    assert a.count_triples() == before and subscriptions.listing(a, asked=True) == []
    assert ask(server, FEED)["roots"][0] is not None  # and the good one is answered


def test_an_asked_feed_that_grows_is_held_to_the_same_bounds() -> None:
    a = Repository.memory()
    for n in range(2):
        a.publish([{"feed": f"news{n}", "title": f"t{i}"} for i in range(4)])
    server = Server(a, subscriptions.AskBounds(feeds=10, records=8, total=12, budget=5.0, touch=0.0))
    cids = [CID.for_block(codec.encode(feed_query(n))) for n in range(2)]
    assert ask(server, feed_query(0))["roots"][0] is not None  # 5 records: 4 posts, the query
    assert ask(server, feed_query(1))["roots"][0] is not None  # 10 in all
    a.publish([{"feed": "news1", "title": f"u{i}"} for i in range(3)])  # feed 1 grows to 8: 13 in all
    assert ask(server, feed_query(1))["roots"][0] is not None
    assert [s.cid for s in subscriptions.listing(a, asked=True)] == [cids[1]]  # the older went
    a.publish([{"feed": "news1", "title": "v"}])  # 9: over the limit of one feed
    assert "grew to 9 records here" in ask(server, feed_query(1))["error"]
    assert subscriptions.listing(a, asked=True) == []

def test_peers_asking_for_one_new_feed_at_once_wait_for_one_build() -> None:
    """As many first asks of one feed as there are workers, at once: one build, every ask
    answered with its root (none told the node is busy)."""
    import threading

    from mizu_core.sync.protocol import SERVER_WORKERS

    a = Repository.memory()
    a.publish([{"feed": "news", "title": f"post {i}"} for i in range(3000)])
    server = Server(a, subscriptions.AskBounds(feeds=4, records=10_000, total=10_000, budget=5.0))
    builds: list[int] = []
    real_ask = subscriptions.ask

    def counting(*args: Any, **kwargs: Any) -> Any:
        builds.append(args[2] is not None)  # with a query: a build
        return real_ask(*args, **kwargs)

    answers_: list[dict[str, Any]] = []
    start = threading.Barrier(SERVER_WORKERS)

    def one() -> None:
        start.wait()
        answers_.append(ask(server, FEED))

    subscriptions.ask = counting  # type: ignore[assignment]
    try:
        threads = [threading.Thread(target=one) for _ in range(SERVER_WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        subscriptions.ask = real_ask  # type: ignore[assignment]
    roots = {r["roots"][0] for r in answers_ if "roots" in r}
    assert len(answers_) == SERVER_WORKERS and len(roots) == 1 and None not in roots, answers_
    assert sum(builds) == 1, builds
