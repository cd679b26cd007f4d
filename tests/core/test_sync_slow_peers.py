"""What a server does with a peer that stops reading, or opens too many streams (no
network: trio's in-memory streams; the e2e twin is tests/e2e/test_many_pullers.py)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from mizu_core import Repository
from mizu_core.errors import PeerError
from mizu_core.feeds import subscriptions
from mizu_core.sync.protocol import FrameReader, encode_frame
from mizu_core.sync.server import Server, Stalled, Workers, answer_stream
from mizu_core.sync.session import SyncSession
from tests.core.test_sync_session import FEED, TrioStream, publish_feed


def test_a_peer_that_stops_reading_holds_no_worker_and_is_dropped_after_the_deadline() -> None:
    """One worker in all: while the stalled peer's answer waits to be taken (a lockstep
    stream: a write ends only when the other side reads), another peer pulls the whole
    feed through that worker; the stalled stream ends with Stalled after its deadline."""
    a, b = Repository.memory(), Repository.memory()
    cids = publish_feed(a, 40)
    sub, _ = subscriptions.subscribe(a, FEED)
    subscriptions.subscribe(b, FEED)
    server = Server(a)
    outcome: list[BaseException] = []

    async def main() -> None:
        workers = Workers(total=1, per_peer=1)
        stalled_left, stalled_right = trio.testing.lockstep_stream_pair()

        async def stalled_server() -> None:
            try:
                await answer_stream(server, TrioStream(stalled_right), "stalled", 300.0, workers, 2.0)
            except PeerError as e:
                outcome.append(e)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stalled_server)
                await TrioStream(stalled_left).write(encode_frame({"op": "blocks", "cids": cids}))
                left, right = trio.testing.memory_stream_pair()
                nursery.start_soon(answer_stream, server, TrioStream(right), "honest", 300.0, workers)
                transfer = await SyncSession(b, TrioStream(left), "server", timeout=5).pull(sub.cid)
                assert transfer.records == 40 and outcome == []  # pulled while the other waits
                while not outcome:
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert isinstance(outcome[0], Stalled)
    assert "response within 2 s" in str(outcome[0])


def test_streams_past_the_limit_are_refused_and_logged_once() -> None:
    a = Repository.memory()
    publish_feed(a, 3)
    server = Server(a)
    results: dict[int, str] = {}

    async def main() -> None:
        workers = Workers(streams=2)

        async def serve_one(i: int, stream: Any) -> None:
            try:
                await answer_stream(server, stream, "greedy", 300.0, workers)
                results[i] = "ended"
            except PeerError as e:
                results[i] = str(e)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                pairs = [trio.testing.memory_stream_pair() for _ in range(4)]
                for i, (_, right) in enumerate(pairs):
                    nursery.start_soon(serve_one, i, TrioStream(right))
                while len(results) < 2:
                    await trio.sleep(0.01)
                # the two admitted streams still answer
                for i in set(range(4)) - set(results):
                    stream = TrioStream(pairs[i][0])
                    await stream.write(encode_frame({"op": "roots", "subs": []}))
                    assert await FrameReader(stream).read_frame() == {"roots": []}
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert sorted(results.values()) == [
        "ended",  # refused too, without a second log line
        "over 2 sync streams open at once; streams past them are refused"]


@pytest.mark.parametrize("responses", [1, 2])
def test_a_peer_holds_at_most_its_responses_while_it_does_not_read(responses: int) -> None:
    """On `streams` lockstep streams that nobody reads, the server computes no more than
    `responses` answers for that peer: the rest of its requests wait unanswered."""
    a = Repository.memory()
    cids = publish_feed(a, 20)
    computed: list[str] = []

    class Counting(Server):
        def respond(self, body: bytes, peer: str = "peer") -> bytes:
            computed.append(peer)
            return super().respond(body, peer)

    server = Counting(a)

    async def main() -> None:
        workers = Workers(responses=responses)
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                left, right = trio.testing.lockstep_stream_pair()
                nursery.start_soon(answer_stream, server, TrioStream(right), "slow", 300.0, workers, 60.0)
                nursery.start_soon(TrioStream(left).write, encode_frame({"op": "blocks", "cids": cids}))
            with trio.fail_after(10):
                while len(computed) < responses:
                    await trio.sleep(0.01)
            await trio.sleep(0.5)  # room for more answers, were they allowed
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert len(computed) == responses
