"""The sync protocol's frames, as a hostile peer would send them: the frame reader, the
server's `answer` and `respond`, and a whole stream through `answer_stream`.

The contract: a frame is answered (a response the protocol describes, or one-line
`{"error": …}`) or refused with a PeerError that closes the stream; never another
exception; a failed request stores nothing.
"""

from __future__ import annotations

import functools
from typing import Any

import cbor2
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from mizu_core import Repository
from mizu_core.errors import MizuError, PeerError
from mizu_core.feeds import subscriptions
from mizu_core.message import codec
from mizu_core.message.cid import CID, MAX_CID_BYTES, b58encode, varint
from mizu_core.sync.protocol import MAX_BATCH, MAX_FRAME, OPS, FrameReader, encode_frame
from mizu_core.sync.server import Server, answer_stream
from tests.core.test_sync_session import TrioStream
from tests.fuzz import fuzz_settings

FEED = {"@select": "?t", "@where": {"@id": "?post", "feed": "news", "title": "?t"}}
TABLES = ("blocks", "messages", "log", "pins", "spo")


@functools.cache
def served() -> tuple[Repository, Server, CID, list[CID], list[bytes]]:
    """One repository for every example: a feed, its subscription, and a blocks' worth
    of genuine and foreign data for the generated frames to use."""
    repo = Repository.memory()
    cids = list(repo.publish([{"feed": "news", "title": f"post {i}"} for i in range(20)]).cids)
    sub, _ = subscriptions.subscribe(repo, FEED)
    other = Repository.memory()  # blocks this repository does not hold: valid to push
    foreign = other.publish([{"feed": "news", "title": f"pushed {i}"} for i in range(5)]).cids
    blocks = [other.block(c) for c in foreign]
    return repo, Server(repo), sub.cid, cids + list(foreign), blocks


def counts(repo: Repository) -> dict[str, int]:
    with repo.store.reader() as txn:
        return {t: txn.count(t) for t in TABLES}


# -- values a peer may put in a frame ---------------------------------------------------

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
cid_texts = st.one_of(
    st.integers(0, 400_000).map(lambda n: "z" + "2" * n),  # the 30-second one, and more
    st.integers(0, 300_000).map(lambda n: "k" + "z" * n),
    st.integers(0, 2000).map(lambda n: "f01550" + "0" * n),
    st.text(alphabet=B58, max_size=80).map(lambda t: "Qm" + t),
    st.binary(max_size=300).map(lambda b: "z" + b58encode(b)),
    st.text(max_size=30),
)
raw_cids = st.one_of(
    st.integers(0, 100_000).map(lambda n: b"\x01\x55\x00" + varint(n) + b"x" * n),  # identity
    st.binary(max_size=MAX_CID_BYTES + 20),
    st.integers(0, 300).map(lambda n: b"\x01\x71\x12" + varint(n) + b"\x07" * n),
)


def some_cids() -> st.SearchStrategy[CID]:
    _, _, sub, cids, _ = served()
    return st.sampled_from([sub, *cids, CID.for_block(b"absent"), CID.for_block(b"x", version=0)])


iris = cid_texts.flatmap(lambda t: st.sampled_from([
    "https://mizu.stream/v0/view-raw/" + t, "https://mizu.stream/update/" + t + "/a",
    "ipfs://" + t, "https://mizu.stream/message/" + t,
]))
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=20),
                        st.floats(allow_nan=False, allow_infinity=False), st.binary(max_size=20), iris)
odd_values = st.recursive(
    st.one_of(json_leaves, st.builds(lambda c: c, st.deferred(some_cids))),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
queries = st.one_of(
    odd_values,
    st.builds(lambda iri, key: {"@select": "?t", "@where": {"@id": iri, key: "?t"}},
              iris, st.sampled_from(["title", "feed", "@type"])),
    st.builds(lambda iri: {"@select": "?s", "@where": {"@id": "?s", "link": {"@id": iri}}}, iris),
    st.builds(lambda inc: {"@select": "?t", "@where": {"$include": inc}}, odd_values),
    st.just(FEED),
)


def _encoded(value: Any) -> bytes:
    try:
        return codec.encode(value)
    except MizuError:
        return b"\xa0"  # not encodable as DAG-CBOR (floats that are integers and the like)


# A feed's query sent with `roots` (`queries`): a query message, bytes, a pointer, lists of them.
query_blocks = st.one_of(
    queries.map(_encoded),
    st.binary(max_size=200),
    iris.map(lambda iri: _encoded({"$include": iri})),
    st.just(_encoded(FEED)).map(lambda b: b.replace(b"news", b"nows")),
)
query_entries = st.one_of(st.none(), query_blocks, st.lists(query_blocks, max_size=3))
cid_lists = st.one_of(
    st.lists(st.deferred(some_cids), max_size=8),
    st.integers(MAX_BATCH - 1, MAX_BATCH + 2).flatmap(lambda n: st.deferred(some_cids).map(lambda c: [c] * n)),
    odd_values,
)


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    _, _, sub, _, blocks = served()
    op = draw(st.one_of(st.sampled_from(OPS), odd_values))
    frame: dict[str, Any] = {"op": op}
    if draw(st.booleans()):
        frame["sub"] = draw(st.one_of(st.just(sub), st.deferred(some_cids), odd_values))
    for key in draw(st.sets(st.sampled_from(["subs", "cids", "blocks", "query", "queries", "extra"]))):
        if key == "query":
            frame[key] = draw(queries)
        elif key == "queries":
            frame[key] = draw(st.one_of(st.lists(query_entries, max_size=4), odd_values))
        elif key == "blocks":
            frame[key] = draw(st.one_of(
                st.lists(st.sampled_from(blocks), max_size=5),
                st.lists(st.binary(max_size=200), max_size=5),
                st.lists(st.sampled_from(blocks).map(lambda b: b.replace(b"pushed", b"pushes")), max_size=3),
                odd_values,
            ))
        else:
            frame[key] = draw(cid_lists)
    if op == "put" and draw(st.booleans()):  # a well-formed push, genuine or forged
        chosen = draw(st.lists(st.sampled_from(range(len(blocks))), min_size=1, max_size=5))
        data = [blocks[i] for i in chosen]
        if draw(st.booleans()):
            data[0] = data[0].replace(b"pushed", b"forged")
        frame.update({"sub": sub, "cids": [CID.for_block(blocks[i]) for i in chosen], "blocks": data})
    if op == "roots" and draw(st.booleans()):  # a well-formed ask for a feed, by its query
        entry = draw(st.one_of(query_blocks, st.lists(query_blocks, min_size=1, max_size=2)))
        first = entry if type(entry) is bytes else entry[0]
        frame.update({"subs": [CID.for_block(first)], "queries": [entry]})
    return frame


def check_reply(reply: Any, frame: dict[str, Any]) -> None:
    assert type(reply) is dict, reply
    if "error" in reply:
        assert type(reply["error"]) is str and "\n" not in reply["error"], reply
        assert len(reply["error"]) <= 400
        return
    expected = {"roots": {"roots"}, "nodes": {"cids", "blocks"}, "blocks": {"cids", "blocks"},
                "have": {"have"}, "put": {"stored"}, "query": {"records"}}[frame["op"]]
    assert set(reply) == expected, (reply, frame)
    encode_frame(reply)  # a server can always send what it answers (or PeerError)


@given(frames())
@fuzz_settings(250)
def test_the_server_answers_any_frame_or_refuses_it_and_stores_nothing_on_failure(
    frame: dict[str, Any],
) -> None:
    repo, server, *_ = served()
    before = counts(repo)
    try:
        reply = server.answer(frame, "fuzzer")
    except MizuError:
        raise AssertionError("answer() turns every MizuError into an error response") from None
    check_reply(reply, frame)
    builds = frame.get("op") == "roots" and "queries" in frame  # an asked feed stores its query
    if "error" in reply or (frame.get("op") != "put" and not builds):
        assert counts(repo) == before, (frame, reply)
    # the same frame through the bytes a peer sends
    try:
        body = codec.encode(frame)
    except MizuError:
        return  # not encodable as DAG-CBOR (floats that are integers and the like)
    if len(body) <= MAX_FRAME:
        response = server.respond(body, "fuzzer")
        check_reply(codec.decode(_body(response)), frame)


def _body(frame: bytes) -> bytes:
    for i, byte in enumerate(frame):
        if byte < 0x80:
            return frame[i + 1:]
    raise AssertionError("no length prefix")


cbor_bodies = st.one_of(
    st.binary(max_size=300),
    raw_cids.map(lambda raw: cbor2.dumps({"op": "blocks", "cids": [cbor2.CBORTag(42, b"\0" + raw)]})),
    raw_cids.map(lambda raw: cbor2.dumps({"cids": [cbor2.CBORTag(42, raw)], "op": "have"})),
    st.integers(0, 40).map(lambda n: b"\x81" * n + b"\xa0"),  # nested lists
    st.integers(0, 2000).map(lambda n: b"\x81" * n + b"\x80"),  # nested past any depth limit
    st.sampled_from([b"\xa1\x62op\x64have", b"\xbf\xff", b"\x9f\xff", b"\xd8\x2a\x40", b"\xd8\x2b\x41\x00",
                     b"\xa2\x62op\x64have\x62op\x64have", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00",
                     b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xa1\x01\x02", b"\xf7"]),
)


@given(cbor_bodies)
@fuzz_settings(250)
def test_any_frame_body_is_answered_or_refused_with_a_peer_error(body: bytes) -> None:
    repo, server, *_ = served()
    before = counts(repo)
    try:
        response = server.respond(body, "fuzzer")
    except PeerError as e:
        assert "\n" not in str(e) and len(str(e)) < 500, str(e)
    else:
        reply = codec.decode(_body(response))
        assert type(reply) is dict and ("error" in reply or set(reply) & {"roots", "have", "cids"})
    assert counts(repo) == before


# -- whole streams: length prefixes, truncation, garbage between frames -------------------

pieces = st.one_of(
    frames().map(lambda f: encode_frame(f) if _encodable(f) else b"\x00"),
    cbor_bodies.map(lambda b: varint(len(b)) + b),
    st.integers(0, 2**35).map(varint),  # a length, alone or followed by too little
    st.sampled_from([b"\xff\xff\xff\xff\xff\x01", b"\x80\x80\x80\x80\x80", varint(MAX_FRAME + 1),
                     varint(MAX_FRAME) + b"\0" * 10]),
    st.binary(max_size=64),
)


def _encodable(frame: dict[str, Any]) -> bool:
    try:
        return len(codec.encode(frame)) <= MAX_FRAME
    except MizuError:
        return False


@given(st.lists(pieces, min_size=1, max_size=6))
@fuzz_settings(60)
def test_a_stream_of_hostile_bytes_gets_answers_then_is_closed_by_a_peer_error(parts: list[bytes]) -> None:
    _, server, *_ = served()
    outcome: list[BaseException | None] = []
    answered: list[dict[str, Any]] = []

    async def main() -> None:
        left, right = trio.testing.memory_stream_pair()

        async def serve() -> None:
            try:
                await answer_stream(server, TrioStream(right), "fuzzer", idle=5.0)
                outcome.append(None)
            except PeerError as e:
                outcome.append(e)
            await right.aclose()

        async def read_answers() -> None:
            reader = FrameReader(TrioStream(left), "server")
            while True:
                try:
                    frame = await reader.read_frame()
                except (PeerError, trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if frame is None:
                    return
                answered.append(frame)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(serve)
                nursery.start_soon(read_answers)
                for part in parts:
                    try:
                        await left.send_all(part)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        break
                await left.send_eof()

    trio.run(main)
    assert len(outcome) == 1  # ended: cleanly, or refused the peer; nothing else escaped
    if outcome[0] is not None:
        assert "\n" not in str(outcome[0])
    for reply in answered:
        assert type(reply) is dict
