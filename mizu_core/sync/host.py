"""How Mizu builds and dials a libp2p host: a stable Ed25519 identity, Noise only (never
plaintext), Yamux, one connection per peer, TCP only, and the kubo-compatible pnet protector
(pnet.py) on every connection when a swarm key is set.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from mizu_core.errors import PeerError

if TYPE_CHECKING:
    from libp2p.abc import IHost
    from libp2p.peer.id import ID


def quiet_libp2p() -> None:
    """libp2p logs expected failures (a peer without gossipsub) as errors: keep them out."""
    for name in ("libp2p", "multiaddr", "async_service", "zeroconf"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def new_host(seed: bytes, psk: bytes | None = None, mdns: bool = False) -> Any:
    """A host (libp2p's IHost) whose peer id follows from the 32-byte `seed`; with `psk` (a
    parsed swarm key) it only ever talks to nodes of that private swarm, kubo ones included.

    Typed Any for callers: IHost wants TProtocol where Mizu passes its protocol id as str.
    """
    from libp2p import new_host as libp2p_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import ConnectionConfig, RetryConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux
    from libp2p.transport.tcp.tcp import TCP

    from mizu_core.sync.pnet import pnet_transport

    if len(seed) != 32:
        raise ValueError("a host identity seed is 32 bytes")
    quiet_libp2p()  # after the imports: libp2p sets up its loggers when imported
    key_pair = create_new_key_pair(seed)
    # Noise alone: py-libp2p's default list also offers /plaintext/2.0.0, which would let
    # any peer in unauthenticated and unencrypted.
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)
    host: IHost = libp2p_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_ID): noise},
        muxer_opt={TProtocol(YAMUX_ID): Yamux},
        # With one connection allowed, the swarm stops its happy-eyeballs timer as soon as a
        # dial succeeds instead of always waiting it out (250 ms per connect).
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        # Given explicitly so a private host has no other way in or out than pnet over TCP
        # (libp2p's own `psk=` is Salsa20 with an 8-byte nonce, which kubo does not speak).
        transports=[pnet_transport(psk) if psk is not None else TCP()],
        enable_mDNS=mdns,
    )
    # new_host does not pass retry_config through to the swarm; callers retry on their own.
    network = host.get_network()
    network.retry_config = RetryConfig(max_retries=1)  # type: ignore[attr-defined]
    return host


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _reason(error: BaseException) -> str:
    """The root cause of a failed connect, in one line: the swarm's own message is only
    'no addresses established a successful connection'."""
    while True:
        inner = getattr(error, "errors", None)  # libp2p's MultiError: one per address tried
        if isinstance(inner, list | tuple) and inner and isinstance(inner[0], BaseException):
            error = inner[0]
        elif isinstance(error, BaseExceptionGroup):  # trio's, from trying each socket
            error = error.exceptions[0]
        elif error.__cause__ is not None:
            error = error.__cause__
        else:
            return _first_line(error)


async def dial(host: IHost, address: str, timeout: float) -> ID:
    """Connect to a peer multiaddr (with /p2p/ID) within `timeout` seconds and return its
    peer id; any failure (refused, wrong swarm key, no Noise, timeout) is one PeerError."""
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from multiaddr import Multiaddr

    try:
        info = info_from_p2p_addr(Multiaddr(address))
    except Exception as e:
        raise PeerError(f"'{address}' is not a peer multiaddr: {_first_line(e)}") from None
    # libp2p refuses to redial a peer for 60 s after a failure; Mizu paces its own retries.
    cache = getattr(host.get_network(), "_negative_peer_cache", None)
    if cache is not None:
        cache.evict(str(info.peer_id))
    # A handshake that reads garbage (another swarm key) can wait forever: always bounded.
    with trio.move_on_after(timeout) as scope:
        try:
            await host.connect(info)
        except Exception as e:
            raise PeerError(f"cannot connect to {address}: {_reason(e)}") from None
    if scope.cancelled_caught:
        raise PeerError(f"cannot connect to {address} within {timeout:g} s")
    return info.peer_id
