"""The asking side of the sync protocol over one stream: pull, push and network queries.

Like git fetch: compare roots, walk the peer's tree only where it differs from ours
(have/need), then fetch the missing records with the blocks they link, in batches. Each
batch is checked whole (hashes, signatures, reserved fields) before any of it is stored,
so a bad response stores nothing. Checked batches are stored a few thousand blocks to a
transaction, and all of them before an error ends the pull: a killed pull keeps every
transaction it committed, and one that fails keeps every batch it checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from mizu_core.errors import MizuError, NotServed, PeerError, RejectedData, shorten
from mizu_core.feeds import filters, prolly, subscriptions
from mizu_core.message.cid import CID, DAG_PB
from mizu_core.message.links import block_links
from mizu_core.repo.index import TermCache
from mizu_core.repo.received import Checked, check_block, check_many
from mizu_core.repo.repository import Repository
from mizu_core.sync.protocol import (
    MAX_BATCH,
    MAX_QUERY_BYTES,
    MAX_RESPONSE_BYTES,
    Blocks,
    ByteStream,
    FrameReader,
    cid_list,
    encode_frame,
    optional_cid_list,
)

MAX_ERROR = 300  # characters of a peer's error text that are shown
REQUEST_TIMEOUT = 30.0  # seconds for one response; a stalled peer is dropped after it
MAX_TREE_NODES = 1_000_000  # a peer's tree bigger than this is refused
# A fetch stores what it checked once it holds this many blocks, or bytes of blocks.
STORE_BLOCKS, STORE_BYTES = 4096, 4 << 20

Progress = Callable[[int, int], None]  # (records stored, records needed)


class Refused(PeerError):
    """The peer answered a request with an error frame: it is up and says why not (a bad
    query block, a busy node, a feed over its bounds). The stream stays usable."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"{peer} refused: {reason}")
        self.reason = reason


@dataclass
class Transfer:
    """What one exchange with one peer moved (kept as it goes: useful after an error too)."""

    records: int = 0  # records new to this repository
    blocks: int = 0  # blocks received and stored
    nodes: int = 0  # tree nodes received
    bytes_received: int = 0
    bytes_sent: int = 0
    up_to_date: bool = False
    unavailable: list[CID] = field(default_factory=list)  # asked for, not sent


class SyncSession:
    def __init__(self, repo: Repository, stream: ByteStream, peer: str,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        self.repo = repo
        self.stream = stream
        self.peer = peer
        self.timeout = timeout
        self.reader = FrameReader(stream, peer)
        self.sent = 0
        self._pending: dict[CID, Checked] = {}  # messages checked by a fetch, not stored yet

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        await self.send(frame)
        return await self.response()

    async def send(self, frame: dict[str, Any]) -> None:
        """Send a request without waiting for its answer (`response` reads the answers,
        in the order of the requests)."""
        data = encode_frame(frame)
        with trio.move_on_after(self.timeout) as scope:
            await self.stream.write(data)
            self.sent += len(data)
        if scope.cancelled_caught:
            raise PeerError(f"{self.peer} did not take a request within {self.timeout:g} s")

    async def response(self) -> dict[str, Any]:
        with trio.move_on_after(self.timeout) as scope:
            response = await self.reader.read_frame()
        if scope.cancelled_caught:
            raise PeerError(f"{self.peer} did not answer within {self.timeout:g} s")
        if response is None:
            raise PeerError(f"{self.peer} closed the stream")
        if "error" in response:  # a hostile peer's text: one short line
            raise Refused(self.peer, shorten(str(response["error"]), MAX_ERROR))
        return response

    async def roots(
        self, subs: list[CID], queries: list[bytes | list[bytes] | None] | None = None
    ) -> list[CID | None]:
        """The peer's roots for `subs`; with `queries` (their query messages, or None for
        one not held), a peer that does not follow a feed builds it from its query."""
        frame: dict[str, Any] = {"op": "roots", "subs": subs}
        if queries is not None and any(q is not None for q in queries):
            frame["queries"] = queries
        response = await self.request(frame)
        roots = optional_cid_list(response, "roots", self.peer)
        if len(roots) != len(subs):
            raise PeerError(f"{self.peer} answered {len(roots)} roots for {len(subs)} subscriptions")
        return roots

    # -- pull ----------------------------------------------------------------------------

    async def pull(self, sub: CID, progress: Progress | None = None,
                   transfer: Transfer | None = None) -> Transfer:
        """Pull `sub` from the peer (into `transfer`, which keeps what was moved if this
        raises). NotServed: the peer neither follows the feed nor could build it."""
        transfer = transfer if transfer is not None else Transfer()
        start = self.reader.received
        try:
            local = subscriptions.refresh(self.repo, sub)
            query = self._query_block(sub)
            (remote_root,) = await self.roots([sub], [query])
            if remote_root is None:
                unsent = "" if query is not None else " (its query is not here to send)"
                raise NotServed(f"{self.peer} holds no records for {sub}{unsent}")
            ours = subscriptions.node_cids(self.repo, sub)
            if remote_root == local.root or remote_root in ours:
                transfer.up_to_date = True
                if local.partial:
                    await self._complete(sub, transfer, progress)
                return transfer
            need = await self._walk(sub, remote_root, ours, transfer)
            transfer.up_to_date = not need  # it holds nothing we lack
            if need and not local.partial:  # until it is done: a cut may leave file chunks behind
                subscriptions.set_partial(self.repo, sub, True)
            await self.fetch(need, transfer, sub, progress)
            if local.partial:
                await self._complete(sub, transfer, progress)
            elif need:  # done: what it fetched came with every block it links
                subscriptions.set_partial(self.repo, sub, False)
        finally:
            transfer.bytes_received = self.reader.received - start
        subscriptions.refresh(self.repo, sub)
        return transfer

    async def _complete(self, sub: CID, transfer: Transfer, progress: Progress | None) -> None:
        """After a pull of `sub` that was cut short (this one's fetch is done): fetch what
        its file records link and is still missing, which no tree walk finds."""
        unlinked = subscriptions.unlinked(self.repo, sub)
        if unlinked:
            transfer.up_to_date = False
            await self.fetch(unlinked, transfer, None, progress)
            if subscriptions.unlinked(self.repo, sub):  # this peer lacks some: ask the next
                return
        subscriptions.set_partial(self.repo, sub, False)

    def _query_block(self, sub: CID) -> bytes | list[bytes] | None:
        """The feed's query message, sent with `roots` so that any peer can answer it; for a
        query inside a message (CID/path), the message it points into after it."""
        private = filters.private_messages(self.repo)
        blocks = [self.repo.find_block(c) if c not in private else None
                  for c in subscriptions.query_messages(self.repo, sub)]
        if blocks[0] is None or len(blocks[0]) > MAX_QUERY_BYTES:
            return None
        extra = [b for b in blocks[1:] if b is not None]
        return [blocks[0], *extra] if extra else blocks[0]

    async def _walk(self, sub: CID, root: CID, ours: set[CID], transfer: Transfer) -> list[CID]:
        """The records under the peer's tree that we lack, fetching only differing nodes."""
        frontier: list[tuple[CID, int | None]] = [(root, None)]
        candidates: list[CID] = []
        while frontier:
            batch, frontier = frontier[:MAX_BATCH], frontier[MAX_BATCH:]
            response = await self.request({"op": "nodes", "sub": sub, "cids": [c for c, _ in batch]})
            got = dict(Blocks.parse(response, self.peer).pairs)
            for cid, level in batch:
                if cid not in got:
                    raise PeerError(f"{self.peer} did not send tree node {cid}")
                try:
                    node = prolly.decode(cid, got[cid])
                except MizuError as e:
                    raise RejectedData(f"{self.peer} sent a bad tree node: {e}") from None
                if level is not None and node.level != level:
                    raise PeerError(f"{self.peer} sent a tree node at the wrong level")
                transfer.nodes += 1
                if transfer.nodes > MAX_TREE_NODES:
                    raise PeerError(f"{self.peer}'s tree is over {MAX_TREE_NODES} nodes")
                if node.level == 0:
                    candidates.extend(node.entries)
                else:
                    frontier.extend((c, node.level - 1) for c in node.entries if c not in ours)
        return self.repo.missing(candidates)

    async def fetch(self, wanted: Iterable[CID], transfer: Transfer, sub: CID | None = None,
                    progress: Progress | None = None) -> None:
        """Fetch blocks and everything they link that is missing here, in checked batches;
        with `sub`, the wanted ones become that subscription's records."""
        with self.repo.unpinned_writes():
            await self._fetch(list(dict.fromkeys(wanted)), transfer, sub, progress)

    async def _fetch(self, wanted: list[CID], transfer: Transfer, sub: CID | None,
                     progress: Progress | None) -> None:
        # The next request is sent before a batch is checked, so the peer reads and sends
        # it meanwhile: the pull waits for the network only when the batch in hand brought
        # the links that make the next one. Checked batches are stored several to a
        # transaction (its commit and index flush cost as much as checking hundreds of
        # blocks), and before any error ends the fetch.
        records = set(wanted)
        queue = deque(wanted)
        asked = set(wanted)
        in_flight: deque[list[CID]] = deque()
        pending: list[Checked] = []
        # Term ids the committed batches stored: each batch's transaction starts knowing
        # them, as a put's batches do (a batch that fails ends the fetch, and its ids with it).
        terms = TermCache(claims=8 * len(wanted))

        async def ask() -> None:
            if queue:
                batch = [queue.popleft() for _ in range(min(MAX_BATCH, len(queue)))]
                await self.send({"op": "blocks", "cids": batch})
                in_flight.append(batch)

        def store() -> None:
            if not pending:
                return
            blocks = pending[:]
            pending.clear()  # tried once, even if storing fails
            self._pending.clear()
            if sub is None:
                transfer.blocks += self.repo.store_received(blocks, terms)
            else:
                stored, added = subscriptions.store_received(self.repo, sub, blocks, records, terms)
                transfer.blocks += stored
                transfer.records += added
            if progress:
                progress(len(asked) - len(queue) - sum(map(len, in_flight)), len(asked))

        try:
            await ask()
            while in_flight:
                batch = in_flight.popleft()
                pairs = Blocks.parse(await self.response(), self.peer).pairs
                returned = {c for c, _ in pairs}
                if returned - set(batch):
                    raise PeerError(f"{self.peer} sent blocks that were not asked for")
                if not pairs:
                    transfer.unavailable.extend(batch)  # the peer lacks them: not fatal
                    await ask()
                    continue
                queue.extendleft(reversed([c for c in batch if c not in returned]))
                await ask()
                checked = self._check(pairs)
                links = dict.fromkeys(link for block in checked for link in block.links if link not in asked)
                for link in self.repo.missing(links):
                    asked.add(link)
                    queue.append(link)
                pending.extend(checked)
                self._pending.update((c.cid, c) for c in checked if c.message is not None)
                if not in_flight:
                    await ask()
                if (len(pending) >= STORE_BLOCKS or sum(len(c.data) for c in pending) >= STORE_BYTES
                        or not in_flight):
                    store()
        except Exception:
            # Every batch checked whole before the error is kept. (A refusal, after which
            # the stream goes on to the next feed, is the answer to the only request in
            # flight: the next is sent after a good answer.)
            store()
            raise

    def _check(self, pairs: tuple[tuple[CID, bytes], ...]) -> list[Checked]:
        discard = filters.discarded(self.repo, pairs)
        kept = [pair for pair in pairs if pair[0] not in discard]
        try:
            return [c for c in check_many(kept, lambda pair: check_block(*pair, self._schema)) if c]
        except MizuError as e:
            raise RejectedData(f"rejected a response from {self.peer}: {e}") from None

    def _schema(self, ref: Any) -> dict[str, Any] | None:
        if (held := self._pending.get(ref.cid.to_v1())) is not None:
            return held.message  # checked, not stored yet
        try:
            return self.repo.message(ref.cid.to_v1())
        except MizuError:
            return None

    # -- push ----------------------------------------------------------------------------

    async def push(self, sub: CID, transfer: Transfer | None = None) -> Transfer:
        """Push `sub` to the peer (into `transfer`, as for pull). NotServed: the peer does
        not track the feed."""
        transfer = transfer if transfer is not None else Transfer()
        start, received = self.sent, self.reader.received
        try:
            local = subscriptions.refresh(self.repo, sub)
            (remote_root,) = await self.roots([sub])
            if remote_root is None:
                raise NotServed(f"{self.peer} does not track {sub}",
                                hint="it must subscribe first: mizu subscribe " + str(sub))
            if remote_root == local.root:
                transfer.up_to_date = True
                return transfer
            missing = await self._their_missing(sub, local.root)
            transfer.up_to_date = not missing
            await self._send(sub, missing, transfer)
        finally:
            transfer.bytes_sent = self.sent - start
            transfer.bytes_received = self.reader.received - received
        return transfer

    async def _their_missing(self, sub: CID, root: CID | None) -> list[CID]:
        assert root is not None
        missing: list[CID] = []
        frontier = [root]
        while frontier:
            kept = dict(subscriptions.tree_nodes(self.repo, sub, frontier))
            nodes = [prolly.decode(c, kept.get(c, b"")) for c in frontier]
            frontier = []
            for node in nodes:
                for i in range(0, len(node.entries), MAX_BATCH):
                    batch = list(node.entries[i : i + MAX_BATCH])
                    have = (await self.request({"op": "have", "sub": sub, "cids": batch})).get("have")
                    if type(have) is not list or len(have) != len(batch):
                        raise PeerError(f"{self.peer} sent a malformed 'have' answer")
                    lacking = [c for c, h in zip(batch, have, strict=True) if h is not True]
                    (missing if node.level == 0 else frontier).extend(lacking)
        return missing

    async def _send(self, sub: CID, records: list[CID], transfer: Transfer) -> None:
        pairs: list[tuple[CID, bytes]] = []
        size = 0
        for cid, data in self._with_file_blocks(records):
            if pairs and (size + len(data) > MAX_RESPONSE_BYTES or len(pairs) >= MAX_BATCH):
                await self.request({"op": "put", "sub": sub, **Blocks(tuple(pairs)).fields()})
                pairs, size = [], 0
            pairs.append((cid, data))
            size += len(data)
            transfer.blocks += 1
        if pairs:
            await self.request({"op": "put", "sub": sub, **Blocks(tuple(pairs)).fields()})
        transfer.records = len(records)

    def _with_file_blocks(self, records: list[CID]) -> Iterable[tuple[CID, bytes]]:
        """Each record with the file blocks it links, a file's chunks before its nodes and
        its root last: a push cut inside a file leaves the peer without the root (a record),
        so their trees still differ and the next push sends the file again."""
        private = filters.private_messages(self.repo)
        for record in records:
            if record in private:
                continue
            stack: list[tuple[CID, bytes | None]] = [(record, None)]  # None: children not yet pushed
            while stack:
                cid, data = stack.pop()
                if data is not None:
                    yield cid, data  # its children are out
                    continue
                data = self.repo.find_block(cid)
                if data is None:
                    continue
                stack.append((cid, data))
                if cid.codec == DAG_PB:
                    stack.extend((link, None) for link in block_links(cid, data))

    # -- network queries -----------------------------------------------------------------

    async def query(self, query: Any) -> Transfer:
        transfer = Transfer()
        start = self.reader.received
        try:
            response = await self.request({"op": "query", "query": query})
            found = cid_list(response, "records", self.peer, limit=100_000)
            need = self.repo.missing(found)
            await self.fetch(need, transfer)
            transfer.records = len(need) - len(transfer.unavailable)
        finally:
            transfer.bytes_received = self.reader.received - start
        return transfer
