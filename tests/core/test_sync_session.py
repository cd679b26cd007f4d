"""Pull and push between two repositories over an in-memory stream pair (no network)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from mizu_core.errors import PeerError
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.repo.repository import Repository
from mizu_core.sync import subscriptions
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
    publish_feed(a, 3)
    server = Server(a)
    query = {"@select": "?t", "@where": {"feed": "news", "title": "?t"}}
    assert len(server.answer({"op": "query", "query": query})["records"]) == 3
    monkeypatch.setattr(server_module, "QUERY_BUDGET", 0.0)
    assert "more than 0 s" in server.answer({"op": "query", "query": query})["error"]


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
