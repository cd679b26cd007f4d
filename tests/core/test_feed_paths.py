"""A query inside a message (a stream's named query, `CID/path`, SPEC §9) is a feed like any
other: named by a pointer message that is the same on every node, its records those of the
query at the path (partial references into its message), pulled from a peer that never
subscribed to it."""

from __future__ import annotations

from typing import Any

import pytest

from mizu_core import Repository
from mizu_core.errors import NotFound, QueryError
from mizu_core.feeds import subscriptions
from mizu_core.feeds.queries import pointer, pointer_target
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.sync.server import Server
from tests.core.test_asked_feeds import BOUNDS
from tests.core.test_sync_session import exchange

LATEST = {"@select": "?t", "@where": {"stream": {"$ref": "#"}, "title": "?t"}}
STREAM = {"name": "news", "queries": {"latest": LATEST, "none": {"@select": "?x", "@where": {"nothing": "?x"}},
                                      "by": {"@select": "?t", "@where": {"author": {"$var": "who"}, "title": "?t"}}}}


def publish_stream(repo: Repository, posts: int) -> tuple[CID, list[CID]]:
    (stream,) = repo.publish([STREAM]).cids
    ref = {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}
    cids = repo.publish([{"stream": ref, "title": f"post {i}"} for i in range(posts)]).cids
    repo.publish([{"stream": {"$ref": "https://mizu.stream/v0/view-raw/"
                              "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"}, "title": "elsewhere"}])
    return stream, cids


def titles(repo: Repository, stream: CID) -> list[Any]:
    return sorted(row["?t"] for row in repo.query(cid=stream, path="queries/latest"))


def test_cid_path_names_the_same_feed_everywhere_and_its_records_are_the_querys() -> None:
    a, b = Repository.memory(), Repository.memory()
    stream, posts = publish_stream(a, 5)
    sub_a, new = subscriptions.subscribe(a, cid=stream, path="queries/latest")
    sub_b, _ = subscriptions.subscribe(b, cid=stream, path="/queries/latest/")  # b lacks the stream
    assert not sub_b.active
    assert new and sub_a.cid == sub_b.cid == CID.for_block(codec.encode(pointer(stream, "queries/latest")))
    assert a.message(sub_a.cid) == {"$include": f"https://mizu.stream/v0/view-raw/{stream}/queries/latest"}
    assert pointer_target(a.message(sub_a.cid)) == (stream, "queries/latest")
    # the posts that name the stream ("#" in the query is the stream), the stream, the pointer
    with a.store.reader() as txn:
        assert set(subscriptions.record_cids(txn, sub_a.cid)) == {*posts, stream, sub_a.cid}
    assert sub_a.records == 7 and sub_a.active
    _, again = subscriptions.subscribe(a, cid=stream, path="queries/latest")
    assert not again
    # by the pointer's CID: the same feed
    assert subscriptions.subscribe(a, cid=sub_a.cid) == (subscriptions.get(a, sub_a.cid), False)


def test_pulled_from_a_peer_that_never_subscribed_to_it() -> None:
    a, b = Repository.memory(), Repository.memory()
    stream, posts = publish_stream(a, 30)
    sub, _ = subscriptions.subscribe(b, cid=stream, path="queries/latest")
    assert not sub.active  # b does not hold the stream yet: it waits for it
    first = exchange(b, a, lambda s: s.pull(sub.cid))
    assert first.records == 31  # the posts and the stream (b published the pointer)
    assert subscriptions.listing(a) == [] and [s.cid for s in subscriptions.listing(a, asked=True)] == [sub.cid]
    mine = subscriptions.get(b, sub.cid)
    assert mine.active and mine.records == 32 and mine.root == subscriptions.get(a, sub.cid, asked=True).root
    assert titles(b, stream) == titles(a, stream) and len(titles(b, stream)) == 30
    assert all(b.has(p) for p in posts)
    a.publish([{"stream": {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}, "title": "post 30"}])
    assert exchange(b, a, lambda s: s.pull(sub.cid)).records == 1


def test_a_server_not_holding_the_message_gets_it_with_the_pointer() -> None:
    a, server_repo = Repository.memory(), Repository.memory()
    stream, _ = publish_stream(a, 4)
    for repo in (a, server_repo):  # the server holds the posts, not the stream
        repo.publish([{"stream": {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"}, "title": "t"}])
    sub, _ = subscriptions.subscribe(a, cid=stream, path="queries/latest")
    ptr, container = a.find_block(sub.cid), a.find_block(stream)
    server = Server(server_repo, BOUNDS)
    alone = server.answer({"op": "roots", "subs": [sub.cid], "queries": [ptr]})
    assert f"message {stream}, which holds the query at 'queries/latest', is not here" in alone["error"]
    wrong = server.answer({"op": "roots", "subs": [sub.cid], "queries": [[ptr, codec.encode({"x": 1})]]})
    assert "is not the message its query sits in" in wrong["error"]
    assert "malformed 'queries'" in server.answer(
        {"op": "roots", "subs": [sub.cid], "queries": [[ptr, container, container]]})["error"]
    assert not server_repo.has(stream) and subscriptions.listing(server_repo, asked=True) == []
    (root,) = server.answer({"op": "roots", "subs": [sub.cid], "queries": [[ptr, container]]})["roots"]
    assert root is not None and server_repo.has(stream) and server_repo.has(sub.cid)
    (kept,) = subscriptions.listing(server_repo, asked=True)
    assert kept.records == 3  # the post it holds, the stream, the pointer


def test_bad_paths_are_refused_in_one_line_and_publish_nothing() -> None:
    a = Repository.memory()
    stream, _ = publish_stream(a, 1)
    before = a.count_triples()
    for path, error in [
        ("queries/nope", f"no query at 'queries/nope' in {stream}"),
        ("name", f"'name' in {stream} is not a query (no @select"),
        ("queries", f"'queries' in {stream} is not a query"),
        ("queries/by", "missing parameter 'who': a feed's query takes no parameters ($var)"),
    ]:
        with pytest.raises(QueryError) as e:
            subscriptions.subscribe(a, cid=stream, path=path)
        assert error in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(QueryError, match="is not a message CID"):
        subscriptions.subscribe(a, cid=CID.for_block(b"raw", codec=0x55), path="queries/latest")
    assert a.count_triples() == before and subscriptions.listing(a) == []
    # a path into a message not here waits for it, as a CID not here does
    absent = CID.for_block(codec.encode({"not": "here"}))
    sub, new = subscriptions.subscribe(a, cid=absent, path="queries/latest")
    assert new and not sub.active and sub.records == 0
    with pytest.raises(NotFound, match="not here yet"):
        subscriptions.export_roots(a, sub.cid)


def test_pushed_to_a_peer_that_follows_it_while_lacking_the_message() -> None:
    a, c = Repository.memory(), Repository.memory()
    stream, posts = publish_stream(a, 12)
    sub, _ = subscriptions.subscribe(a, cid=stream, path="queries/latest")
    theirs, _ = subscriptions.subscribe(c, cid=stream, path="queries/latest")
    assert theirs.cid == sub.cid and not theirs.active
    pushed = exchange(a, c, lambda s: s.push(sub.cid))
    assert pushed.records == 13  # the posts and the stream: c holds the pointer
    mine = subscriptions.refresh(c, sub.cid)
    assert mine.active and mine.records == 14 and mine.root == subscriptions.get(a, sub.cid).root
    assert titles(c, stream) == titles(a, stream) and all(c.has(p) for p in posts)


def test_querying_a_feed_by_its_id_runs_the_query_it_points_at() -> None:
    a = Repository.memory()
    stream, _ = publish_stream(a, 3)
    sub, _ = subscriptions.subscribe(a, cid=stream, path="queries/latest")
    by_id = sorted(row["?t"] for row in a.query(cid=sub.cid))
    assert by_id == titles(a, stream) == ["post 0", "post 1", "post 2"]


def test_a_puller_sends_the_message_the_query_sits_in() -> None:
    """A pull of a CID/path feed from a server that holds posts but not the stream: the
    puller sends the stream with the pointer, and gets the server's posts."""
    a, server_repo = Repository.memory(), Repository.memory()
    stream, _ = publish_stream(a, 2)
    (post,) = server_repo.publish([{"stream": {"$ref": f"https://mizu.stream/v0/view-raw/{stream}"},
                                    "title": "only on the server"}]).cids
    sub, _ = subscriptions.subscribe(a, cid=stream, path="queries/latest")
    assert not server_repo.has(stream)
    pulled = exchange(a, server_repo, lambda s: s.pull(sub.cid))
    assert pulled.records == 1 and a.has(post) and server_repo.has(stream)
