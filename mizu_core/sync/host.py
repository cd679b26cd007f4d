"""How Mizu builds a libp2p host: a stable Ed25519 identity, Noise only (never plaintext),
Yamux, one connection per peer (py-libp2p otherwise waits 250 ms per dial), and the
kubo-compatible private-network protector when a swarm key is set.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from mizu_core.errors import PeerError


def quiet_libp2p() -> None:
    """libp2p logs expected failures (a peer without gossipsub) as errors: keep them out."""
    for name in ("libp2p", "multiaddr", "async_service", "zeroconf"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def new_host(seed: bytes, psk: bytes | None = None, mdns: bool = False) -> Any:
    from libp2p import new_host as libp2p_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import ConnectionConfig
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
    from libp2p.stream_muxer.yamux.yamux import Yamux

    quiet_libp2p()  # after the imports: libp2p sets up its loggers when imported
    key_pair = create_new_key_pair(seed)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)
    host = libp2p_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_ID): noise},
        muxer_opt={TProtocol(YAMUX_ID): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
        enable_mDNS=mdns,
    )
    from libp2p.network.config import RetryConfig

    network: Any = host.get_network()
    network.retry_config = RetryConfig(max_retries=1)  # callers retry on their own
    if psk is not None:
        from mizu_core.sync.pnet import protect

        protect(host, psk)
    return host


async def dial(host: Any, address: str, timeout: float) -> Any:
    """Connect to a peer multiaddr (with /p2p/ID) within `timeout`; return its peer id."""
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from multiaddr import Multiaddr

    try:
        info = info_from_p2p_addr(Multiaddr(address))
    except Exception as e:
        raise PeerError(f"'{address}' is not a peer multiaddr: {e}") from None
    network = host.get_network()
    cache = getattr(network, "_negative_peer_cache", None)
    if cache is not None:  # libp2p refuses to redial a failed peer for 60 s; we pace our own
        cache.evict(str(info.peer_id))
    with trio.move_on_after(timeout) as scope:
        try:
            await host.connect(info)
        except Exception as e:
            raise PeerError(f"cannot connect to {address}: {e}") from None
    if scope.cancelled_caught:
        raise PeerError(f"cannot connect to {address} within {timeout:g} s")
    return info.peer_id
