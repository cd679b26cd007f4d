"""The answering side of the sync protocol: one request frame in, one response out.

`Server` is synchronous and storage-only, so it is tested without a network; `node.py`
runs `answer_stream` for every stream a peer opens. A server answers for the
subscriptions it tracks, and for any other feed a peer sends the query of (built over
what it holds and kept fresh, within `AskBounds`: feeds/subscriptions.ask), and sends any
block it holds, except what a private filter covers.

Answering can be heavy (a query matched for up to QUERY_BUDGET seconds, a 4 MiB put to
verify, a tree to rebuild), so the event loop only reads and writes frames: decoding,
answering and encoding run in worker threads (`Workers`), at most SERVER_WORKERS at once
and PEER_WORKERS for one peer, and other peers keep being served meanwhile. Each piece is
bounded too (frame size, list lengths, CID lengths, the query budget).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mizu_core.errors import MizuError, NotFound, PeerError, QueryError, shorten
from mizu_core.feeds import filters, records, subscriptions
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.query import subjects
from mizu_core.repo.received import Checked, check_block
from mizu_core.repo.repository import Repository
from mizu_core.sync.protocol import (
    ASKED_FEED_RECORDS,
    ASKED_RECORDS,
    FEED_BUILD_BUDGET,
    FEED_BUILDS,
    IDLE_TIMEOUT,
    MAX_QUERY_BYTES,
    MAX_QUERY_RECORDS,
    MAX_RESPONSE_BYTES,
    PEER_RESPONSES,
    PEER_STREAMS,
    PEER_WORKERS,
    QUERY_BUDGET,
    SERVER_WORKERS,
    WRITE_DEADLINE,
    Blocks,
    ByteStream,
    FrameReader,
    cid_list,
    decode_frame,
    encode_frame,
    optional_cid_list,
    optional_query_blocks,
)

if TYPE_CHECKING:
    import trio

T = TypeVar("T")
MAX_ERROR = 300  # characters of an error response (a peer's values are never sent back whole)


class Server:
    def __init__(self, repo: Repository, bounds: subscriptions.AskBounds | None = None) -> None:
        self.repo = repo
        self.bounds = bounds or subscriptions.AskBounds(
            repo.config.get("serve.asked-feeds-max"), ASKED_FEED_RECORDS, ASKED_RECORDS,
            min(FEED_BUILD_BUDGET, self._query_budget()))
        self.builds = threading.BoundedSemaphore(FEED_BUILDS)  # first builds of asked feeds
        self._building: dict[CID, threading.Event] = {}  # each set when its build ends
        self._lock = threading.Lock()
        self.clock = time.time  # when a feed was last asked for (tests set it)

    def respond(self, body: bytes, peer: str = "peer") -> bytes:
        """A request frame's body to its response frame (length prefix included): what a
        worker thread runs. PeerError when the body breaks the framing rules."""
        return encode_frame(self.answer(decode_frame(body, peer), peer))

    def answer(self, frame: dict[str, Any], peer: str = "peer") -> dict[str, Any]:
        """The response to one request; a bad request gets `{"error": …}`, never a crash."""
        op = frame.get("op")
        try:
            if op == "roots":
                subs = optional_cid_list(frame, "subs", peer)
                return self._roots(subs, optional_query_blocks(frame, "queries", peer, len(subs)), peer)
            if op == "nodes":
                return self._nodes(_sub(frame, peer), cid_list(frame, "cids", peer))
            if op == "blocks":
                return self._blocks(cid_list(frame, "cids", peer))
            if op == "have":
                return self._have(_sub(frame, peer), cid_list(frame, "cids", peer))
            if op == "put":
                return self._put(_sub(frame, peer), Blocks.parse(frame, peer), peer)
            if op == "query":
                return self._query(frame.get("query"))
        except MizuError as e:
            return {"error": shorten(str(e), MAX_ERROR)}
        return {"error": f"unknown op {shorten(op)!r}" if type(op) is str else "unknown op"}

    def _roots(self, subs: list[CID | None], queries: list[list[bytes] | None] | None,
               peer: str) -> dict[str, Any]:
        queries = queries or [None] * len(subs)
        return {"roots": [self._root(sub, query, peer) if sub else None
                          for sub, query in zip(subs, queries, strict=True)]}

    def _root(self, sub: CID, blocks: list[bytes] | None, peer: str) -> CID | None:
        """The current root of the feed `sub` here: one followed (None if it fails to
        refresh, as before), one asked for before, or one built now from `blocks`, its query
        message (and, for a query inside a message, the message it points into). None: no
        such feed here and no query to build it from. A bad query block, a build over its
        bounds or too many builds at once raise (an error response)."""
        known = self._known(sub)
        if known is None and blocks is not None:
            with self._lock:
                underway = self._building.get(sub)
            if underway is not None:
                # Many peers asking for one new feed at once: one build, the others wait for
                # it (within its budget) rather than build it again or be told "busy".
                underway.wait(self.bounds.budget + 1.0)
                known = self._known(sub)
        query, included = None, []
        if blocks is not None and (known is None or not known.active):
            query = self._query_block(sub, blocks[0], peer)
            included = [self._included_block(sub, data, peer) for data in blocks[1:]]
        building = known is None and query is not None
        if building and not self.builds.acquire(blocking=False):
            raise QueryError(f"busy building {FEED_BUILDS} other feeds; ask again later")
        done = threading.Event()
        if building:
            with self._lock:
                self._building.setdefault(sub, done)
        try:
            found = subscriptions.ask(self.repo, sub, query, self.bounds, self.clock(), included)
        except NotFound:
            if building:
                raise
            return None  # dropped meanwhile (least recently asked, or gc)
        except MizuError:
            if known is not None and not known.asked:
                return None  # as it always answered for a feed it follows and cannot refresh
            raise
        finally:
            if building:
                with self._lock:
                    if self._building.get(sub) is done:
                        del self._building[sub]
                done.set()
                self.builds.release()
        return found.root if found is not None else None

    def _known(self, sub: CID) -> subscriptions.Subscription | None:
        try:
            return subscriptions.get(self.repo, sub, asked=True)
        except NotFound:
            return None

    def _query_block(self, sub: CID, block: bytes, peer: str) -> Checked:
        """A peer's query message for `sub`, checked as any block received."""
        if len(block) > MAX_QUERY_BYTES:
            raise PeerError(f"bad query block for {sub}: {len(block)} bytes, over the {MAX_QUERY_BYTES}-byte limit")
        try:
            return check_block(sub, block, self._schema)
        except MizuError as e:
            raise PeerError(f"bad query block for {sub}: {e}") from None

    def _included_block(self, sub: CID, block: bytes, peer: str) -> Checked:
        """The message a peer's pointer query for `sub` points into, checked as any block
        received (which message it must be, `subscriptions.ask` checks)."""
        try:
            return check_block(CID.for_block(block), block, self._schema)
        except MizuError as e:
            raise PeerError(f"bad query block for {sub}: {e}") from None

    def _nodes(self, sub: CID, cids: list[CID]) -> dict[str, Any]:
        return Blocks(tuple(subscriptions.tree_nodes(self.repo, sub, cids))).fields()

    def _blocks(self, cids: list[CID]) -> dict[str, Any]:
        hidden = filters.private_messages(self.repo)
        # Up to MAX_RESPONSE_BYTES: the asker asks again for the rest.
        pairs = self.repo.blocks([c for c in cids if c not in hidden], max_bytes=MAX_RESPONSE_BYTES)
        return Blocks(tuple(pairs)).fields()

    def _have(self, sub: CID, cids: list[CID]) -> dict[str, Any]:
        return {"have": subscriptions.have(self.repo, sub, cids)}

    def _put(self, sub: CID, blocks: Blocks, peer: str) -> dict[str, Any]:
        subscriptions.get(self.repo, sub)  # only for what this node follows, not what peers asked for
        checked = []
        discard = filters.discarded(self.repo, [(c, d) for c, d in blocks.pairs])
        for cid, data in blocks.pairs:
            if cid not in discard:
                try:
                    checked.append(check_block(cid, data, self._schema))
                except MizuError as e:
                    raise PeerError(f"rejected a push from {peer}: {e}") from None
        stored = self.repo.store_received(checked)
        # What was pushed joins the subscription only if it matches the query.
        subscriptions.refresh(self.repo, sub)
        return {"stored": stored}

    def _query(self, query: Any) -> dict[str, Any]:
        from mizu_core.feeds.queries import compile_query
        from mizu_core.repo.index import TripleIndex

        size = len(codec.encode(query))
        if size > MAX_QUERY_BYTES:
            raise QueryError(f"a query of {size} bytes is over the {MAX_QUERY_BYTES}-byte limit")
        query = codec.to_json(query)
        hidden = filters.private_messages(self.repo)
        with self.repo.store.reader() as txn:  # compiled and matched in one snapshot
            parsed = compile_query(txn, query)
            patterns = subjects.subject_patterns(parsed)
            matched = subjects.matching_messages(patterns, TripleIndex(txn), budget=self._query_budget())
            found = records.closure(txn, matched)
        found -= hidden
        return {"records": sorted(found)[:MAX_QUERY_RECORDS]}

    def _query_budget(self) -> float:
        """QUERY_BUDGET, or the repository's `query.timeout` when that is shorter: a
        peer's query gets no more time here than a local one."""
        from mizu_core.query.deadline import configured_timeout

        try:
            seconds = configured_timeout(self.repo.config)
        except MizuError:  # a bad value: the local commands name it; a peer gets the budget
            seconds = 0.0
        return min(QUERY_BUDGET, seconds) if seconds > 0 else QUERY_BUDGET

    def _schema(self, ref: Any) -> dict[str, Any] | None:
        try:
            return self.repo.message(ref.cid.to_v1())
        except MizuError:
            return None


class Workers:
    """Where a server's answers run: worker threads, at most `total` at once and at most
    `per_peer` for one peer (whatever the number of its streams), so that no peer can
    stop the event loop, nor take every worker. It also counts what each peer holds:
    its open streams (at most `streams`) and its responses computed or not yet taken
    (at most `responses`, so a peer that stops reading keeps at most that many frames
    here). Made inside `trio.run`."""

    def __init__(self, total: int = SERVER_WORKERS, per_peer: int = PEER_WORKERS,
                 streams: int = PEER_STREAMS, responses: int = PEER_RESPONSES) -> None:
        import trio

        self.limiter = trio.CapacityLimiter(total)
        self.per_peer = per_peer
        self.streams = streams
        self.responses = responses
        self._peers: dict[str, _Peer] = {}

    def _peer(self, peer: str) -> _Peer:
        state = self._peers.get(peer)
        if state is None:
            state = self._peers[peer] = _Peer(self.per_peer, self.responses)
        return state

    def _forget(self, peer: str, state: _Peer) -> None:
        if state.streams == 0 and state.users == 0:
            del self._peers[peer]

    def open(self, peer: str) -> bool | None:
        """Count a new stream of `peer`: True if it may be answered; False if the peer has
        `streams` open already (None the first time it is over, to be logged once)."""
        state = self._peer(peer)
        if state.streams >= self.streams:
            first = not state.refusing
            state.refusing = True
            return None if first else False
        state.streams += 1
        return True

    def close(self, peer: str) -> None:
        state = self._peers[peer]
        state.streams -= 1
        state.refusing = False
        self._forget(peer, state)

    @contextlib.asynccontextmanager
    async def response(self, peer: str) -> AsyncIterator[None]:
        """Held from computing a response until the peer took it (or was dropped)."""
        state = self._peer(peer)
        state.users += 1
        try:
            async with state.responses:
                yield
        finally:
            state.users -= 1
            self._forget(peer, state)

    async def run(self, peer: str, fn: Callable[..., T], *args: Any) -> T:
        import trio

        state = self._peer(peer)
        state.users += 1
        try:
            async with state.workers:
                return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
        finally:
            state.users -= 1
            self._forget(peer, state)


class _Peer:
    """What one peer holds on a server."""

    def __init__(self, workers: int, responses: int) -> None:
        import trio

        self.workers: trio.CapacityLimiter = trio.CapacityLimiter(workers)
        self.responses: trio.CapacityLimiter = trio.CapacityLimiter(responses)
        self.streams = 0
        self.users = 0  # tasks waiting on or holding its limiters
        self.refusing = False  # a stream over its limit was refused (and logged)


async def answer_stream(server: Server, stream: ByteStream, peer: str, idle: float = IDLE_TIMEOUT,
                        workers: Workers | None = None, deadline: float = WRITE_DEADLINE) -> None:
    """Answer requests on one stream until the peer closes it, misbehaves or idles (no
    request within `idle` seconds). The frames are read and written here; each is
    decoded and answered by `workers`, and written after the worker is free again, so a
    peer that stops reading holds no worker: its write gets `deadline` seconds, then the
    stream is dropped (PeerError)."""
    import trio

    workers = workers or Workers()
    admitted = workers.open(peer)
    if not admitted:
        if admitted is None:  # the first stream refused: one log line, not one a stream
            raise PeerError(f"over {workers.streams} sync streams open at once; streams past them are refused")
        return
    try:
        reader = FrameReader(stream, peer)
        while True:
            body = None
            with trio.move_on_after(idle):
                body = await reader.read_body()
            if body is None:
                return  # closed by the peer, or idle
            async with workers.response(peer):
                response = await workers.run(peer, server.respond, body, peer)
                await _send(stream, response, deadline)
            del body, response  # not kept while waiting for the next request
    finally:
        workers.close(peer)


class Stalled(PeerError):
    """A peer did not take a response in time: the stream (or, when the write was cut
    inside a frame, the connection) cannot be used any more."""


async def _send(stream: ByteStream, data: bytes, deadline: float) -> None:
    import trio

    started = trio.current_time()
    with trio.move_on_after(deadline) as scope:
        try:
            await stream.write(data)
        except Exception as e:
            # libp2p's Yamux gives up on its own after 5 s with the window shut (the peer
            # reads nothing), as a reset with that cause: the same drop, said so.
            if "window" not in f"{e} {e.__cause__}".lower():
                raise
            raise Stalled(f"stopped reading a {len(data):,}-byte response "
                          f"({trio.current_time() - started:.0f} s, Yamux: {e})") from None
    if scope.cancelled_caught:
        raise Stalled(f"did not take a {len(data):,}-byte response within {deadline:g} s")


def _sub(frame: dict[str, Any], peer: str) -> CID:
    sub = frame.get("sub")
    if type(sub) is not CID:
        raise PeerError(f"{peer} sent a request without a subscription")
    return sub.to_v1()
