"""The libp2p side of sync: a node that serves, announces and keeps subscriptions live
(`serve`), and short-lived clients that pull, push or query a list of peers.

Only this module (with host.py and pnet.py) imports libp2p and trio's networking; the
command line imports it inside the network commands, so `mizu query` stays fast.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from mizu_core.errors import MizuError, NotFound, NotServed, PeerError, UsageError
from mizu_core.feeds import subscriptions
from mizu_core.message import codec
from mizu_core.message.cid import CID
from mizu_core.repo import serve_record
from mizu_core.repo.repository import Repository
from mizu_core.sync import process
from mizu_core.sync.host import quiet_libp2p
from mizu_core.sync.pnet import swarm_key
from mizu_core.sync.protocol import MAX_FRAME, PROTOCOL_ID
from mizu_core.sync.remotes import remote_addresses
from mizu_core.sync.server import Server, Stalled, Workers, answer_stream
from mizu_core.sync.session import SyncSession

T = TypeVar("T")
# Another service in the node's event loop (the HTTP gateway): started in the nursery
# before the node is ready, told by the event that the node stops; it returns the
# addresses it listens on, which the node prints and records after its own.
Extra = Callable[[trio.Nursery, trio.Event], Awaitable[list[str]]]
DEFAULT_PORT = 4737
DIAL_TIMEOUT = 5.0
# The slowest answer a pull waits for past its --timeout (bytes a second): a link with
# delay and loss, or a slow one, may take long over a large answer; a trickle may not.
MIN_RATE = 16 << 10
TOPIC_PREFIX = "/mizu/roots/"
POLL_INTERVAL = 0.25  # how often serve looks for local arrivals and subscriptions come or gone
RECONNECT_INTERVAL = 2.0
PROVIDE_INTERVAL = 30.0
# A feed's topic joined again this soon after leaving it waits until then (announcements
# go out meanwhile without joining): libp2p's gossipsub takes a join within 10 s of a leave
# for a GRAFT flood and keeps the node out of the topic's mesh for a minute.
REJOIN_DELAY = 11.0


def run(async_fn: Callable[[], Awaitable[T]]) -> T:
    quiet_libp2p()
    return process.run(async_fn)


# -- clients ---------------------------------------------------------------------------


@dataclass
class PeerOutcome:
    address: str
    result: Any = None
    error: MizuError | None = None
    connect_seconds: float = 0.0  # dial, security handshake and stream negotiation
    exchange_seconds: float = 0.0  # from then until the action is done


class PacedStream:
    """A sync stream that judges a peer by its progress, not by the clock alone: over a
    slow link (delay, loss) a 2 MiB answer may take many times `timeout` and be fine, while
    a peer that stops sending, or trickles, must not hold a pull.

    An exchange (a request written, then its answer read) may take `timeout` plus a second
    per `min_rate` bytes moved either way; once the answer has begun, the peer may not
    go silent for `timeout` seconds either. Before the answer begins only the first rule
    holds: a large request written is still on its way when the write returns."""

    def __init__(self, stream: Any, peer: str, timeout: float, min_rate: int = MIN_RATE) -> None:
        self.stream = stream
        self.peer = peer
        self.timeout = timeout
        self.min_rate = min_rate
        self.started = self.last = trio.current_time()
        self.sent = 0  # bytes of the last request
        self.received = 0  # bytes of its answer so far
        self.stalled = False  # the peer was given up on: its connection is no use any more

    def _deadline(self) -> float:
        return self.started + self.timeout + (self.sent + self.received) / self.min_rate

    async def write(self, data: bytes) -> None:
        self.started, self.sent, self.received = trio.current_time(), len(data), 0
        with trio.move_on_at(self._deadline()) as scope:
            await self.stream.write(data)
        if scope.cancelled_caught:
            self.stalled = True
            raise PeerError(f"{self.peer} did not take a {len(data)}-byte request within "
                            f"{self._deadline() - self.started:.0f} s")

    async def read(self, n: int) -> bytes:
        slow = self._deadline()
        idle = self.last + self.timeout if self.received else slow
        with trio.move_on_at(min(idle, slow)):
            chunk: bytes = await self.stream.read(n)
            self.received += len(chunk)
            self.last = trio.current_time()
            return chunk
        self.stalled = True
        if not self.received:
            raise PeerError(f"{self.peer} did not answer within {slow - self.started:.0f} s")
        if idle < slow:
            raise PeerError(f"{self.peer} stopped sending for {self.timeout:g} s in the middle of an answer")
        raise PeerError(f"{self.peer} did not answer within {slow - self.started:.0f} s: "
                        f"{self.received} bytes came, under {self.min_rate >> 10} KiB/s")


async def _open_session(host: Any, repo: Repository, address: str,
                        timeout: float) -> tuple[SyncSession, PacedStream, Any]:
    from mizu_core.sync.host import dial

    peer_id = await dial(host, address, timeout)
    stream = await open_stream(host, peer_id, timeout, redial=lambda: dial(host, address, timeout))
    paced = PacedStream(stream, str(peer_id), timeout)
    # The paced stream bounds each read and write; the session's own clock, per request,
    # only backs it up, so it allows the slowest answer of a frame's size that it lets by.
    return SyncSession(repo, paced, str(peer_id), timeout + 2 * MAX_FRAME / MIN_RATE), paced, peer_id


async def open_stream(host: Any, peer_id: Any, timeout: float,
                      redial: Callable[[], Awaitable[Any]] | None = None) -> Any:
    """A /mizu/sync/1.0.0 stream to a connected peer, within `timeout`. A connection that
    cannot open streams (one that is being closed, say by a finished DHT lookup) is
    dropped and dialled afresh, once."""
    for attempt in range(2):
        with trio.move_on_after(timeout):
            try:
                return await host.new_stream(peer_id, [PROTOCOL_ID])
            except Exception as e:
                if attempt:
                    raise PeerError(f"{peer_id}: cannot open a sync stream: {type(e).__name__}") from None
        if attempt:
            break
        with contextlib.suppress(Exception):
            await host.disconnect(peer_id)
        if redial is not None:
            await redial()
        else:
            with trio.move_on_after(timeout), contextlib.suppress(Exception):
                await host.connect(host.get_peerstore().peer_info(peer_id))
    raise PeerError(f"{peer_id} did not open a sync stream within {timeout:g} s")


def with_peers(
    repo: Repository, addresses: list[str],
    action: Callable[[SyncSession], Awaitable[Any]], timeout: float = DIAL_TIMEOUT,
    discover: list[CID] | None = None,
) -> list[PeerOutcome]:
    """Run `action` once per reachable peer, one after another, from a throwaway identity
    (so a pull can run beside `mizu serve` on the same repository). With `discover`, the
    peers reached are then asked (Kademlia DHT) who else provides those subscriptions, and
    the action runs on them too."""
    from mizu_core.sync.host import new_host

    if not addresses:
        raise PeerError("no peers to contact", hint="add one: mizu remote add NAME MULTIADDR")
    psk = swarm_key(repo)

    async def main() -> list[PeerOutcome]:
        host = new_host(secrets.token_bytes(32), psk)
        outcomes: list[PeerOutcome] = []
        async with host.run([]):
            await _each(host, addresses, outcomes)
            if discover and any(o.error is None for o in outcomes):
                contacted = {a.rsplit("/p2p/", 1)[-1] for a in addresses}
                found = await _providers(host, discover, timeout)
                await _each(host, [a for p, a in found.items() if p not in contacted], outcomes)
        return outcomes

    async def _each(host: Any, targets: list[str], outcomes: list[PeerOutcome]) -> None:
        for address in targets:
            outcome = PeerOutcome(address)
            try:
                started = trio.current_time()
                session, paced, peer_id = await _open_session(host, repo, address, timeout)
                outcome.connect_seconds = trio.current_time() - started
                try:
                    outcome.result = await action(session)
                    outcome.exchange_seconds = trio.current_time() - started - outcome.connect_seconds
                finally:
                    # A peer given up on is not asked for more providers over its dead link.
                    with trio.move_on_after(1), contextlib.suppress(Exception):
                        await (host.disconnect(peer_id) if paced.stalled else paced.stream.close())
            except MizuError as e:
                outcome.error = e
            except Exception as e:  # libp2p's own errors, a broken connection
                from mizu_core.sync.exchange import broken

                outcome.error = broken(address, e)
            outcomes.append(outcome)

    return run(main)


def _peer_id(text: str) -> Any:
    from libp2p.peer.id import ID

    return ID.from_base58(text)


def peer_address(info: Any) -> str:
    """A dialable multiaddr of a libp2p PeerInfo, with its /p2p/ id exactly once."""
    address = str(info.addrs[0]).split("/p2p/", 1)[0]
    return f"{address}/p2p/{info.peer_id}"


async def _providers(host: Any, subs: list[CID], timeout: float) -> dict[str, str]:
    """Peer id → address of the peers the connected peers' DHT lists as providers."""
    from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
    from libp2p.tools.anyio_service import background_trio_service

    dht = KadDHT(host, DHTMode.CLIENT)
    for peer in host.get_connected_peers():
        await dht.routing_table.add_peer(peer)
    found: dict[str, str] = {}
    async with background_trio_service(dht):
        with trio.move_on_after(timeout):
            for sub in subs:
                for info in await dht.find_providers(str(sub)):
                    if info.peer_id != host.get_id() and info.addrs:
                        found[str(info.peer_id)] = peer_address(info)
    return found


# -- the serving node ------------------------------------------------------------------


class ServingNode:
    """`mizu serve`: answers the protocol, announces and follows subscription roots (and,
    as `serve.asked-feeds` says, those of the feeds peers asked for)."""

    def __init__(self, repo: Repository, listen: list[str], mdns: bool,
                 log: Callable[[str], None], extra: Extra | None = None) -> None:
        self.repo = repo
        self.listen = listen
        self.mdns = mdns
        self.log = log
        self.extra = extra
        self.server = Server(repo)
        # Feeds peers asked for: answered only, also announced (and provided in the DHT),
        # or also followed (pulled from peers, like a subscription).
        self.asked_feeds: str = repo.config.get("serve.asked-feeds")
        self.roots: dict[CID, CID | None] = {}  # last root announced per subscription
        self.topics: set[CID] = set()  # the feeds announced, whose topic is joined (or soon)
        self.left: dict[CID, float] = {}  # when each topic left was left (trio's clock)
        self.asked: dict[CID, bool] = {}  # whether each is a feed peers asked for
        self.scopes: dict[CID, trio.CancelScope] = {}  # of each one's topic and provider tasks
        self.pulling: set[tuple[str, CID]] = set()
        self.discovered: dict[str, str] = {}  # peer id → multiaddr, found by mDNS

    def run(self, ready: Callable[[list[str]], None]) -> None:
        run(lambda: self._main(ready))

    async def _main(self, ready: Callable[[list[str]], None]) -> None:
        from multiaddr import Multiaddr

        from mizu_core.sync.host import new_host

        self.repo.open_for_writes()  # before answers start reading in worker threads
        self.workers = Workers()
        self.host = new_host(self.repo.identity.ed25519_seed(), swarm_key(self.repo), mdns=self.mdns)
        self.host.set_stream_handler(PROTOCOL_ID, self._answer)
        if self.mdns:
            from libp2p.discovery.events.peerDiscovery import peerDiscovery

            peerDiscovery.register_peer_discovered_handler(self._discovered)
        try:
            listen = [Multiaddr(a) for a in self.listen]
        except Exception as e:
            raise UsageError(f"not a multiaddr: {e}") from None
        async with self.host.run(listen), trio.open_nursery() as nursery:
            addresses = [str(a) for a in self.host.get_addrs()]
            if not addresses:  # libp2p leaves out what it could not bind, without a word
                raise MizuError(f"could not listen on {', '.join(self.listen)}")
            stop = trio.Event()
            http = await self.extra(nursery, stop) if self.extra is not None else []
            serve_record.record(self.repo, addresses, http)
            try:  # signals are caught before `ready` says the node is up
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    ready([*addresses, *http])
                    await self._services(nursery, signals)
            finally:
                serve_record.record(self.repo, None)
                stop.set()
                nursery.cancel_scope.cancel()

    async def _services(self, nursery: trio.Nursery, signals: Any) -> None:
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
        from libp2p.pubsub.gossipsub import PROTOCOL_ID as GOSSIP_ID
        from libp2p.pubsub.gossipsub import GossipSub
        from libp2p.pubsub.pubsub import Pubsub
        from libp2p.tools.anyio_service import background_trio_service

        gossip = GossipSub(
            protocols=[GOSSIP_ID], degree=6, degree_low=1, degree_high=12,
            heartbeat_initial_delay=0.1, heartbeat_interval=1,
            eclipse_protection_enabled=False,  # every test peer shares 127.0.0.1
        )
        self.pubsub = Pubsub(self.host, gossip)
        self.dht = KadDHT(self.host, DHTMode.SERVER)
        async with background_trio_service(self.pubsub), background_trio_service(gossip), \
                background_trio_service(self.dht):
            await self.pubsub.wait_until_ready()
            nursery.start_soon(self._follow_local, nursery)
            nursery.start_soon(self._keep_remotes_connected, nursery)
            nursery.start_soon(self._provide_to_new_peers)
            async for signum in signals:
                self.log(f"stopping on {signal.Signals(signum).name}")
                return

    async def _answer(self, stream: Any) -> None:
        peer_id = stream.muxed_conn.peer_id
        peer = str(peer_id)
        reset = stalled = False
        try:
            await answer_stream(self.server, stream, peer, workers=self.workers)
        except MizuError as e:
            self.log(f"dropped {peer}: {e}")
            reset = True  # what either side still buffers for it is discarded
            stalled = isinstance(e, Stalled)
        except Exception as e:  # a broken connection ends its stream, not the node
            if type(e).__name__ not in ("StreamEOF", "StreamReset", "StreamClosed"):
                self.log(f"stream from {peer} ended: {type(e).__name__}: {e}")
        finally:
            with trio.move_on_after(1) as scope, contextlib.suppress(Exception):
                await (stream.reset() if reset else stream.close())
            if stalled and scope.cancelled_caught:
                # Not even a reset could be sent: the peer takes nothing from TCP, so every
                # stream of the connection waits behind it. The connection goes.
                with trio.move_on_after(2), contextlib.suppress(Exception):
                    await self.host.disconnect(peer_id)

    async def _follow_local(self, nursery: trio.Nursery) -> None:
        """Track the subscriptions (and the feeds peers asked for) as they come and go,
        and local arrivals: every POLL_INTERVAL, join the topic of each new one and
        announce every new root; leave the topic of each one gone (unsubscribed, or a
        feed peers asked for dropped to make room or by gc) and stop providing it."""
        first = True
        while True:
            listed = subscriptions.listing(self.repo, asked=self.asked_feeds != "answer")
            present = {sub.cid: bool(sub.asked) for sub in listed}
            for cid in [c for c in self.topics if c not in present]:
                await self._leave(cid)
            for sub in listed:
                try:
                    fresh = subscriptions.refresh(self.repo, sub.cid)
                except NotFound:
                    continue  # dropped meanwhile: left at the next look
                except MizuError as e:
                    self.log(f"cannot refresh {sub.cid}: {e}")
                    continue
                asked = bool(sub.asked)
                if sub.cid not in self.topics:
                    await self._join(nursery, sub.cid, asked, first)
                elif self.asked[sub.cid] != asked:  # subscribed to, or unsubscribed and asked for again
                    self.asked[sub.cid] = asked
                    self.log(f"announcing {sub.cid}" + (", a feed peers asked for" if asked else ", subscribed"))
                if self.roots.get(sub.cid) != fresh.root:
                    self.roots[sub.cid] = fresh.root
                    await self._announce(sub.cid, fresh.root)
            first = False
            await trio.sleep(POLL_INTERVAL)

    async def _join(self, nursery: trio.Nursery, sub: CID, asked: bool, starting: bool) -> None:
        if asked:
            self.log(f"announcing {sub}, a feed peers asked for")
        elif not starting:
            self.log(f"announcing {sub}, subscribed")
        self.topics.add(sub)
        self.asked[sub] = asked
        self.scopes[sub] = trio.CancelScope()
        delay = self.left.pop(sub, -REJOIN_DELAY) + REJOIN_DELAY - trio.current_time()
        nursery.start_soon(self._feed_tasks, sub, self.scopes[sub], delay)

    async def _feed_tasks(self, sub: CID, scope: trio.CancelScope, delay: float) -> None:
        """What runs for one announced feed until it is left: keeping its provider record,
        and following its topic, joined after `delay` (see REJOIN_DELAY)."""
        with scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._provide, sub)
                if delay > 0:
                    await trio.sleep(delay)
                subscription = await self.pubsub.subscribe(TOPIC_PREFIX + str(sub))
                nursery.start_soon(self._follow_topic, sub, subscription)

    async def _leave(self, sub: CID) -> None:
        """Stop announcing `sub`: its tasks end, the node leaves its topic (gossipsub tells
        the peers) and drops it from what it provides in the DHT. Provider records other
        peers already hold cannot be withdrawn (Kademlia has no such message): they
        expire, and a peer that follows one is answered as any other asker."""
        asked = self.asked.pop(sub)
        self.scopes.pop(sub).cancel()
        self.topics.discard(sub)
        self.roots.pop(sub, None)
        with contextlib.suppress(Exception):
            await self.pubsub.unsubscribe(TOPIC_PREFIX + str(sub))
        now = trio.current_time()
        self.left = {c: t for c, t in self.left.items() if now - t < REJOIN_DELAY}
        self.left[sub] = now
        self._unprovide(sub)
        self.log(f"stopped announcing {sub}: " + ("a feed peers asked for, dropped" if asked else "unsubscribed"))

    def _unprovide(self, sub: CID) -> None:
        """Forget our own provider record of `sub` (answered to DHT lookups from our own
        store) and stop republishing it."""
        with contextlib.suppress(Exception):  # libp2p's provider store is not public API
            from libp2p.kad_dht.kad_dht import _encode_key

            store = self.dht.provider_store
            key = _encode_key(str(sub))
            store.providing_keys.discard(key)
            store._last_republish.pop(key, None)
            providers = store.providers.get(key)
            if providers is not None:
                providers.pop(str(self.host.get_id()), None)
                if not providers:
                    del store.providers[key]

    async def _announce(self, sub: CID, root: CID | None) -> None:
        if root is None:
            return
        try:
            await self.pubsub.publish(TOPIC_PREFIX + str(sub), codec.encode({"sub": sub, "root": root}))
        except Exception as e:  # no peers on the topic yet: they ask on connect
            self.log(f"announce of {sub} failed: {type(e).__name__}")

    async def _provide(self, sub: CID) -> None:
        """Keep a provider record for `sub` in the DHT: again every PROVIDE_INTERVAL, since
        the peers closest to the key change as peers come and go."""
        while sub in self.topics:
            with trio.move_on_after(10):
                try:
                    await self.dht.provide(str(sub))
                except Exception as e:
                    self.log(f"DHT provide for {sub} failed: {type(e).__name__}")
            await trio.sleep(PROVIDE_INTERVAL)

    async def _provide_to_new_peers(self) -> None:
        """Every peer that connects (either way) joins the DHT's routing table and gets our
        provider records at once, so whoever asks it finds this node (not 30 s later)."""
        known: set[Any] = set()
        while True:
            fresh = [p for p in self.host.get_connected_peers() if p not in known]
            if fresh:
                known.update(fresh)
                for peer in fresh:
                    with contextlib.suppress(Exception):
                        await self.dht.routing_table.add_peer(peer)
                with trio.move_on_after(10):
                    for sub in list(self.topics):
                        if sub not in self.topics:
                            continue  # left meanwhile
                        with contextlib.suppress(Exception):
                            await self.dht.provide(str(sub))
                self.log(f"provider of {len(self.topics)} subscriptions to {len(fresh)} new peers")
            known.intersection_update(self.host.get_connected_peers())
            await trio.sleep(POLL_INTERVAL)

    async def _follow_topic(self, sub: CID, subscription: Any) -> None:
        from libp2p.peer.id import ID

        while True:
            try:
                message = await subscription.get()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return  # the topic was left
            try:
                value = codec.decode(message.data)
                root = value.get("root") if type(value) is dict else None
                peer = ID(message.from_id)
            except Exception:
                continue
            if type(root) is not CID or peer == self.host.get_id() or not self._follows(sub):
                continue
            if root not in subscriptions.node_cids(self.repo, sub):
                await self._pull_from(peer, [sub])

    def _follows(self, sub: CID) -> bool:
        """Whether this node pulls `sub` from its peers: a subscription, or (with
        serve.asked-feeds = follow) a feed peers asked for."""
        try:
            return not subscriptions.get(self.repo, sub, asked=True).asked or self.asked_feeds == "follow"
        except MizuError:
            return False  # dropped meanwhile

    def _followed(self) -> list[CID]:
        return [s.cid for s in subscriptions.listing(self.repo, asked=self.asked_feeds == "follow")]

    async def _pull_from(self, peer: Any, subs: list[CID]) -> None:
        for sub in subs:
            key = (str(peer), sub)
            if key in self.pulling:
                continue
            self.pulling.add(key)
            try:
                stream = await open_stream(self.host, peer, DIAL_TIMEOUT)
                try:
                    transfer = await SyncSession(self.repo, stream, str(peer)).pull(sub)
                finally:
                    with trio.move_on_after(1):
                        await stream.close()
                if transfer.records:
                    self.log(f"pulled {transfer.records} records for {sub} from {peer}")
            except NotServed:
                pass
            except MizuError as e:
                self.log(f"pull of {sub} from {peer} failed: {e}")
            except Exception as e:
                self.log(f"pull of {sub} from {peer} failed: {type(e).__name__}: {e}")
            finally:
                self.pulling.discard(key)

    def _discovered(self, info: Any) -> None:
        if info.peer_id != self.host.get_id() and info.addrs:
            self.discovered[str(info.peer_id)] = peer_address(info)

    async def _keep_remotes_connected(self, nursery: trio.Nursery) -> None:
        """Dial every remote (and peer found by mDNS) that is not connected; on each new
        connection, compare roots (an announcement made while we were apart is missed),
        and again every `serve.recheck-interval` seconds (gossipsub may drop an announcement)."""
        from mizu_core.sync.host import dial

        interval: int = self.repo.config.get("serve.recheck-interval")
        last_check = trio.current_time()
        while True:
            connected = {str(p) for p in self.host.get_connected_peers()}
            recheck = trio.current_time() - last_check >= interval
            if recheck:
                last_check = trio.current_time()
            for address in [*remote_addresses(self.repo).values(), *self.discovered.values()]:
                peer_id = address.rsplit("/p2p/", 1)[-1]
                if peer_id in connected:
                    if recheck:
                        nursery.start_soon(self._pull_from, _peer_id(peer_id), self._followed())
                    continue
                try:
                    peer = await dial(self.host, address, DIAL_TIMEOUT)
                except MizuError:
                    continue
                self.log(f"connected to {address}")
                nursery.start_soon(self._pull_from, peer, self._followed())
            await trio.sleep(RECONNECT_INTERVAL)
