"""Pull and push between two repositories over an in-memory stream pair (no network)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from mizu_core import Repository
from mizu_core.errors import PeerError
from mizu_core.feeds import subscriptions
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.sync.protocol import encode_frame
from mizu_core.sync.server import Server, answer_stream
from mizu_core.sync.session import SyncSession, Transfer

FEED = {"@select": "?t", "@where": {"@id": "?post", "feed": "news", "title": "?t"}}


class TrioStream:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def read(self, n: int) -> bytes:
        return bytes(await self.stream.receive_some(n))

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)


def exchange(client: Repository, server: Any, action: Callable[[SyncSession], Awaitable[Transfer]]) -> Transfer:
    """Run `action` on a session whose other end is `server` (a Repository or a coroutine)."""
    result: list[Transfer] = []

    async def main() -> None:
        left, right = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            if isinstance(server, Repository):
                nursery.start_soon(answer_stream, Server(server), TrioStream(right), "client")
            else:
                nursery.start_soon(server, TrioStream(right))
            with trio.fail_after(20):
                result.append(await action(SyncSession(client, TrioStream(left), "server", timeout=2)))
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except BaseExceptionGroup as group:  # the nursery wraps the one error raised
        raise group.exceptions[0] from None
    return result[0]


def publish_feed(repo: Repository, n: int, start: int = 0) -> list[CID]:
    cids = []
    prev = None
    for i in range(start, start + n):
        message: dict[str, Any] = {"feed": "news", "title": f"post {i}"}
        if prev is not None:
            message["$prev"] = {"$ref": f"https://mizu.stream/v0/view-raw/{prev}"}
        prev = repo.publish([message]).cids[0]
        cids.append(prev)
    return cids


def answers(repo: Repository) -> list[Any]:
    return sorted(row["?t"] for row in repo.query(FEED))


def test_pull_moves_the_feed_and_nothing_else_then_only_what_changed() -> None:
    a, b = Repository.memory(), Repository.memory()
    publish_feed(a, 40)
    unrelated = a.publish([{"other": i} for i in range(15)]).cids
    sub, _ = subscriptions.subscribe(a, FEED)
    sub_b, new = subscriptions.subscribe(b, FEED)
    assert new and sub_b.cid == sub.cid  # the same query names the same feed everywhere

    first = exchange(b, a, lambda s: s.pull(sub.cid))
    assert first.records == 40  # the query message was here already: subscribing published it
    assert answers(b) == answers(a)
    assert not any(b.has(c) for c in unrelated)
    assert subscriptions.get(b, sub.cid).root == subscriptions.refresh(a, sub.cid).root

    again = exchange(b, a, lambda s: s.pull(sub.cid))
    assert again.up_to_date and again.blocks == 0

    publish_feed(a, 1, start=40)
    third = exchange(b, a, lambda s: s.pull(sub.cid))
    assert (third.records, third.blocks) == (1, 1)
    assert third.nodes <= 2 * 2  # a 41-record tree: root (and a leaf)
    assert third.bytes_received < first.bytes_received / 5


def test_push_sends_what_the_peer_lacks() -> None:
    a, b = Repository.memory(), Repository.memory()
    publish_feed(a, 10)
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    pushed = exchange(a, b, lambda s: s.push(sub.cid))
    assert pushed.records == 10  # b has the query message: it subscribed
    assert answers(b) == answers(a)
    assert exchange(a, b, lambda s: s.push(sub.cid)).up_to_date


def test_push_to_a_peer_not_tracking_the_feed_fails() -> None:
    a, b = Repository.memory(), Repository.memory()
    sub, _ = subscriptions.subscribe(a, FEED)
    with pytest.raises(PeerError, match="does not track"):
        exchange(a, b, lambda s: s.push(sub.cid))


def hostile(respond: Callable[[dict[str, Any], Any], Any]) -> Callable[[Any], Awaitable[None]]:
    """A peer that answers `roots` and `nodes` honestly from a real repository and lets
    `respond` answer `blocks`."""
    from mizu_core.sync.protocol import FrameReader

    async def run(stream: Any) -> None:
        reader = FrameReader(stream)
        while (frame := await reader.read_frame()) is not None:
            reply = respond(frame, stream)
            if hasattr(reply, "__await__"):
                await reply
            else:
                await stream.write(encode_frame(reply))

    return run


def pull_from_tampered(tamper: Callable[[CID, bytes], bytes]) -> tuple[Repository, Repository, Any]:
    a, b = Repository.memory(), Repository.memory()
    publish_feed(a, 5)
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    server = Server(a)

    def respond(frame: dict[str, Any], _: Any) -> dict[str, Any]:
        reply = server.answer(frame)
        if frame["op"] == "blocks":
            reply["blocks"] = [tamper(c, d) for c, d in zip(reply["cids"], reply["blocks"], strict=True)]
        return reply

    return a, b, (sub.cid, hostile(respond))


def test_a_block_that_does_not_match_its_hash_rejects_the_response() -> None:
    _, b, (sub, peer) = pull_from_tampered(lambda c, d: d.replace(b"post", b"p0st"))
    before = b.count_triples()  # the query message, published by subscribing
    with pytest.raises(PeerError, match="does not hash"):
        exchange(b, peer, lambda s: s.pull(sub))
    assert b.count_triples() == before
    assert subscriptions.get(b, sub).records == 1


def test_a_bad_signature_rejects_the_response() -> None:
    a, b = Repository.memory(), Repository.memory()
    publish_feed(a, 3)
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    # The hostile repository lists a forged message in its tree: it hashes to its CID,
    # but its content no longer matches the signature.
    message = codec.decode(a.block(publish_feed(a, 1, start=3)[0]))
    message["title"] = "forged"
    data = codec.encode(message)
    with a.store.writer() as txn:
        txn.put("blocks", CID.for_block(data).raw, data)
        subscriptions.add_records(txn, sub.cid, [CID.for_block(data)])
    before = b.count_triples()
    with pytest.raises(PeerError, match="signature"):
        exchange(b, a, lambda s: s.pull(sub.cid))
    assert b.count_triples() == before


def test_oversized_frame_and_endless_response_are_cut_off() -> None:
    a, b = Repository.memory(), Repository.memory()
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)

    async def oversized(stream: Any) -> None:
        await stream.read(65536)
        await stream.write(b"\xff\xff\xff\x7f")  # a 256 MiB frame length

    before = b.count_triples()
    with pytest.raises(PeerError, match="over the"):
        exchange(b, oversized, lambda s: s.pull(sub.cid))

    async def endless(stream: Any) -> None:
        await stream.read(65536)
        await stream.write(b"\x80\x80\x80\x01")  # 2 MiB frame, then a trickle forever
        while True:
            await stream.write(b"x")
            await trio.sleep(0.01)

    with pytest.raises(PeerError, match="did not answer"):
        exchange(b, endless, lambda s: s.pull(sub.cid))
    assert b.count_triples() == before


def test_a_peers_query_that_takes_too_long_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import mizu_core.sync.server as server_module

    a = Repository.memory()
    a.publish([{"feed": "news", "title": f"post {i}"} for i in range(3000)])  # the clock is read
    server = Server(a)                                                         # every 1,024 steps
    query = {"@select": "?t", "@where": {"feed": "news", "title": "?t"}}
    assert len(server.answer({"op": "query", "query": query})["records"]) == 3000
    monkeypatch.setattr(server_module, "QUERY_BUDGET", 1e-9)
    assert "needs more than 1e-09 s" in server.answer({"op": "query", "query": query})["error"]
    # a shorter query.timeout applies to a peer's query too
    monkeypatch.setattr(server_module, "QUERY_BUDGET", 5.0)
    get = a.config.get
    monkeypatch.setattr(a.config, "get", lambda key, default=None: 1e-9 if key == "query.timeout" else get(key, default))
    assert "needs more than 1e-09 s" in server.answer({"op": "query", "query": query})["error"]


def test_a_pull_finishes_when_the_peer_moves_on_in_the_middle() -> None:
    from mizu_core.sync.protocol import FrameReader

    a, b = Repository.memory(), Repository.memory()
    publish_feed(a, 200)
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    server = Server(a)

    async def run(stream: Any) -> None:
        reader = FrameReader(stream)
        while (frame := await reader.read_frame()) is not None:
            reply = server.answer(frame)
            if frame["op"] == "roots":  # a publishes and rebuilds its tree right after
                publish_feed(a, 1, start=200)
                subscriptions.refresh(a, sub.cid)
            await stream.write(encode_frame(reply))

    first = exchange(b, run, lambda s: s.pull(sub.cid))
    assert first.records == 200  # everything under the root it was given
    assert exchange(b, a, lambda s: s.pull(sub.cid)).records == 1  # and the rest next time


def test_a_heavy_request_does_not_stop_answers_to_other_peers() -> None:
    """Answers run in worker threads: while one peer's request is held in its worker, the
    event loop goes on and another peer pulls the whole feed; the held peer's next request
    waits for its own (one worker per peer)."""
    import threading

    from mizu_core.sync.server import Workers

    a, b = Repository.memory(), Repository.memory()
    publish_feed(a, 30)
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    release, held = threading.Event(), threading.Event()

    class Holding(Server):
        def respond(self, body: bytes, peer: str = "peer") -> bytes:
            if peer == "hostile":
                held.set()
                assert release.wait(20)
            return super().respond(body, peer)

    server = Holding(a)
    done: list[Transfer] = []
    order: list[str] = []

    async def main() -> None:
        workers = Workers(total=2, per_peer=1)
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                hostile_pairs = [trio.testing.memory_stream_pair() for _ in range(2)]
                for _, right in hostile_pairs:
                    nursery.start_soon(answer_stream, server, TrioStream(right), "hostile", 300.0, workers)

                async def hostile(left: Any, name: str) -> None:
                    await TrioStream(left).write(encode_frame({"op": "query", "query": {"@select": "?x"}}))
                    await left.receive_some(65536)
                    order.append(name)

                nursery.start_soon(hostile, hostile_pairs[0][0], "first")
                await trio.to_thread.run_sync(held.wait)
                nursery.start_soon(hostile, hostile_pairs[1][0], "second")
                left, right = trio.testing.memory_stream_pair()
                nursery.start_soon(answer_stream, server, TrioStream(right), "honest", 300.0, workers)
                session = SyncSession(b, TrioStream(left), "server", timeout=5)
                done.append(await session.pull(sub.cid))  # while the hostile peer is held
                assert order == []
                release.set()
                while len(order) < 2:
                    await trio.sleep(0.01)
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert done[0].records == 30 and answers(b) == answers(a)
    assert order == ["first", "second"]


def test_frames_with_hostile_cids_are_answered_at_once_or_refused() -> None:
    import time

    from mizu_core.message.cid import MAX_CID_BYTES
    from mizu_core.sync.protocol import MAX_FRAME, PeerError, decode_frame

    a = Repository.memory()
    publish_feed(a, 3)
    server = Server(a)
    # the 300,000-character base58 CID that froze a node for 30 s (the e2e test sends 4 MiB)
    iri = "https://mizu.stream/v0/view-raw/z" + "2" * 300_000
    query = {"@select": "?t", "@where": {"@id": iri, "title": "?t"}}
    started = time.monotonic()
    assert "over the 65536-byte limit" in server.answer({"op": "query", "query": query})["error"]
    query["@where"]["@id"] = iri[:60_000]  # and under that limit, a 60,000-character one
    assert server.answer({"op": "query", "query": query}) == {"records": []}
    assert time.monotonic() - started < 5  # a fraction of a second: linear work only
    assert len(encode_frame({"op": "query", "query": query})) < MAX_FRAME
    # a whole frame of it: refused before it is parsed
    query["@where"]["@id"] += "2" * (MAX_FRAME - 400_000)
    assert "over the 65536-byte limit" in server.answer({"op": "query", "query": query})["error"]
    # a CID over the length limit inside a frame makes the frame unreadable: no answer
    raw = b"\x01\x55\x00\x80\x02" + b"x" * 256  # an identity CID of 256 bytes
    long_cid = codec.encode({"op": "blocks", "cids": ["x"]}).replace(
        b"\x61x", b"\xd8\x2a\x59" + (len(raw) + 1).to_bytes(2, "big") + b"\x00" + raw)
    with pytest.raises(ValueError, match=f"over the {MAX_CID_BYTES}-byte limit"):
        CID(raw)
    with pytest.raises(PeerError, match="not DAG-CBOR"):
        decode_frame(long_cid)
    with pytest.raises(PeerError, match="not DAG-CBOR"):
        server.respond(long_cid)
    # lists past the batch limit are refused, blocks included
    many = [CID.for_block(bytes([i % 256, i // 256]), codec=0x55) for i in range(513)]
    assert "malformed 'cids'" in server.answer({"op": "blocks", "cids": many})["error"]
    put = {"op": "put", "sub": many[0], "cids": many, "blocks": [b"x"] * 513}
    assert "malformed block list" in server.answer(put)["error"]
    # what a peer sent is never sent back whole
    reply = server.answer({"op": "x" * 100_000})
    assert len(reply["error"]) < 200


def test_a_servers_error_text_is_shown_short() -> None:
    a, b = Repository.memory(), Repository.memory()
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)

    async def shouting(stream: Any) -> None:
        await stream.read(65536)
        await stream.write(encode_frame({"error": "line one\nline two " + "x" * 1_000_000}))

    with pytest.raises(PeerError) as caught:
        exchange(b, shouting, lambda s: s.pull(sub.cid))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400


def small_batches_feed(monkeypatch: pytest.MonkeyPatch, n: int) -> tuple[Repository, Repository, CID]:
    """A feed of `n` records, pulled 4 blocks to a request (several requests in flight)."""
    from mizu_core.sync import session

    monkeypatch.setattr(session, "MAX_BATCH", 4)
    a, b = Repository.memory(), Repository.memory()
    a.publish([{"feed": "news", "title": f"post {i}"} for i in range(n)])
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    return a, b, sub.cid


def test_a_bad_response_after_good_ones_keeps_the_good_batches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, sub = small_batches_feed(monkeypatch, 20)
    server = Server(a)
    answered = 0

    def respond(frame: dict[str, Any], _: Any) -> dict[str, Any]:
        nonlocal answered
        reply = server.answer(frame)
        if frame["op"] == "blocks":
            answered += 1
            if answered == 3:
                reply["blocks"] = [d.replace(b"post", b"p0st") for d in reply["blocks"]]
        return reply

    with pytest.raises(PeerError, match="does not hash"):
        exchange(b, hostile(respond), lambda s: s.pull(sub))
    assert subscriptions.get(b, sub).records == 1 + 8  # the query message, two whole batches
    assert len(answers(b)) == 8


def test_a_refusal_with_a_request_in_flight_leaves_the_stream_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    from mizu_core.sync.session import Refused

    a, b, sub = small_batches_feed(monkeypatch, 20)
    server = Server(a)
    answered = 0

    def respond(frame: dict[str, Any], _: Any) -> dict[str, Any]:
        nonlocal answered
        if frame["op"] == "blocks":
            answered += 1
            if answered == 2:
                return {"error": "busy"}
        return server.answer(frame)

    async def action(s: SyncSession) -> Transfer:
        transfer = Transfer()
        with pytest.raises(Refused, match="busy"):
            await s.pull(sub, transfer=transfer)
        assert await s.roots([sub]) == [subscriptions.refresh(a, sub).root]  # not a stale answer
        return transfer

    transfer = exchange(b, hostile(respond), action)
    assert transfer.records == 4  # the batch before the refusal is kept
    assert subscriptions.get(b, sub).records == 1 + 4
