"""Private swarms: swarm.key files, the XSalsa20 stream kubo's pnet uses, and real hosts on
127.0.0.1 that connect only when they hold the same key (and only over Noise)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nacl.secret
import pytest
import trio

from mizu_core.errors import PeerError, UsageError
from mizu_core.sync import pnet
from mizu_core.sync.host import dial, new_host

TEST_PROTOCOL = "/mizu/test-echo/1.0.0"
LOCALHOST = "/ip4/127.0.0.1/tcp/0"
DIAL_TIMEOUT = 5.0  # an accepted dial takes ≈10 ms on loopback
# Another swarm's bytes are noise, not an error: both ends wait for a multistream hello
# that never comes, so a refused dial ends by timing out (as in go-libp2p).
REFUSAL_TIMEOUT = 0.5


# -- XSalsa20 --------------------------------------------------------------------------

# NaCl's own test vectors (tests/core1.c, stream3.c, stream.c in NaCl; the same in
# libsodium's test/default): HSalsa20 of a Curve25519 shared secret with a zero nonce gives
# `firstkey`; XSalsa20(firstkey, NONCE) starts with STREAM_32 and its first 4 MiB hash to
# STREAM_4M_SHA256.
SHARED_SECRET = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
FIRSTKEY = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
STREAM_32 = bytes.fromhex("eea6a7251c1e72916d11c2cb214d3c252539121d8e234e652d651fa4c8cff880")
STREAM_4M_SHA256 = "662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2"


def test_hsalsa20_known_answer() -> None:
    assert pnet.hsalsa20(SHARED_SECRET, bytes(16)) == FIRSTKEY


def test_xsalsa20_known_answer() -> None:
    stream = pnet.xsalsa20(FIRSTKEY, NONCE).encrypt(bytes(4 * 1024 * 1024))
    assert stream[:32] == STREAM_32
    assert hashlib.sha256(stream).hexdigest() == STREAM_4M_SHA256


def test_xsalsa20_matches_libsodium() -> None:
    # secretbox is XSalsa20-Poly1305: its ciphertext (after the 16-byte tag) is the message
    # XORed with the keystream from offset 32 (the first 32 bytes key Poly1305).
    for size in (1, 63, 64, 65, 1000):
        key, nonce, message = os.urandom(32), os.urandom(24), os.urandom(size)
        boxed = nacl.secret.SecretBox(key).encrypt(message, nonce).ciphertext[16:]
        stream = pnet.xsalsa20(key, nonce).encrypt(bytes(32 + size))[32:]
        assert bytes(m ^ s for m, s in zip(message, stream, strict=True)) == boxed


def test_the_stream_continues_across_writes() -> None:
    key, nonce = os.urandom(32), os.urandom(24)
    whole = pnet.xsalsa20(key, nonce).encrypt(bytes(100))
    cipher = pnet.xsalsa20(key, nonce)
    assert cipher.encrypt(bytes(30)) + cipher.encrypt(bytes(7)) + cipher.encrypt(bytes(63)) == whole


# -- swarm.key files -------------------------------------------------------------------


def test_a_new_swarm_key_is_written_like_kubo_does() -> None:
    text = pnet.generate_swarm_key()
    header, codec, hexkey, end = text.split("\n")
    assert (header, codec, end) == ("/key/swarm/psk/1.0.0/", "/base16/", "")
    assert len(hexkey) == 64 and hexkey == hexkey.lower()
    assert pnet.parse_swarm_key(text, "swarm.key") == bytes.fromhex(hexkey)
    assert pnet.generate_swarm_key() != text


def test_swarm_keys_parse_in_every_codec_go_reads() -> None:
    key = secrets.token_bytes(32)
    head = "/key/swarm/psk/1.0.0/\n"
    assert pnet.parse_swarm_key(f"{head}/base16/\n{key.hex().upper()}", "k") == key
    assert pnet.parse_swarm_key(f"{head}/base64/\n{base64.b64encode(key).decode()}\n", "k") == key
    assert pnet.parse_swarm_key(f"{head}/bin/\n" + key.decode("latin-1"), "k") == key
    crlf = f"/key/swarm/psk/1.0.0/\r\n/base16/\r\n{key.hex()}\r\n"
    assert pnet.parse_swarm_key(crlf, "k") == key


@pytest.mark.parametrize(("text", "says"), [
    ("", "not a swarm key"),
    ("hello", "not a swarm key"),
    ("/key/swarm/psk/2.0.0/\n/base16/\n" + "00" * 32, "not a swarm key"),
    ("/key/swarm/psk/1.0.0/\n/base16/\nabcd\n", "32 bytes, this one is 2"),
    ("/key/swarm/psk/1.0.0/\n/base16/\n" + "00" * 33 + "\n", "32 bytes, this one is 33"),
    ("/key/swarm/psk/1.0.0/\n/base16/\nzz\n", "not valid base16"),
    ("/key/swarm/psk/1.0.0/\n/base64/\n!!!!\n", "not valid base64"),
    ("/key/swarm/psk/1.0.0/\n/bin/\nshort", "32 bytes"),
    ("/key/swarm/psk/1.0.0/\n/rot13/\nabcd\n", "unknown swarm key encoding"),
])
def test_bad_swarm_keys_are_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        pnet.parse_swarm_key(text, "/x/swarm.key")
    assert "/x/swarm.key" in str(caught.value) and "\n" not in str(caught.value)


def test_the_repository_key_file_is_read_as_bytes(tmp_path: Path) -> None:
    repo = SimpleNamespace(config={}, path=tmp_path)
    assert pnet.swarm_key(repo) is None  # type: ignore[arg-type]  # no key: a public node
    key = bytes(range(200, 232))  # not UTF-8
    (tmp_path / "swarm.key").write_bytes(b"/key/swarm/psk/1.0.0/\n/bin/\n" + key)
    assert pnet.swarm_key(repo) == key  # type: ignore[arg-type]
    repo.config["swarm.key-file"] = str(tmp_path / "missing.key")
    with pytest.raises(UsageError, match="cannot read swarm key"):
        pnet.swarm_key(repo)  # type: ignore[arg-type]


# -- real hosts on 127.0.0.1 -----------------------------------------------------------


def run(test: Callable[[], Awaitable[None]], seconds: float = 10) -> None:
    """Run a trio test with a deadline, so a handshake that never ends fails the test."""

    async def bounded() -> None:
        with trio.fail_after(seconds):
            await test()

    trio.run(bounded)


async def _echo(stream: Any) -> None:
    data = await stream.read(1024)
    await stream.write(data[::-1])
    await stream.close()


async def _read_exactly(stream: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


@asynccontextmanager
async def serving(psk: bytes | None, host: Any = None) -> AsyncIterator[tuple[Any, str]]:
    """A host listening on 127.0.0.1 (any port) with an echo protocol, and its address."""
    from libp2p.custom_types import TProtocol
    from multiaddr import Multiaddr

    host = host or new_host(secrets.token_bytes(32), psk)
    host.set_stream_handler(TProtocol(TEST_PROTOCOL), _echo)
    async with host.run([Multiaddr(LOCALHOST)]):
        address = str(host.get_addrs()[0])
        assert address.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/" in address
        yield host, address


@asynccontextmanager
async def client(psk: bytes | None, host: Any = None) -> AsyncIterator[Any]:
    host = host or new_host(secrets.token_bytes(32), psk)
    async with host.run([]):
        yield host


async def refused(server: Any, dialer: Any, address: str) -> None:
    """The dial fails (by REFUSAL_TIMEOUT) and neither side holds a connection."""
    with pytest.raises(PeerError, match="cannot connect to") as caught:
        await dial(dialer, address, REFUSAL_TIMEOUT)
    assert "\n" not in str(caught.value)
    assert dialer.get_id() not in server.get_connected_peers()
    assert server.get_id() not in dialer.get_connected_peers()


def test_hosts_with_the_same_key_connect_and_talk() -> None:
    from libp2p.custom_types import TProtocol

    key = pnet.parse_swarm_key(pnet.generate_swarm_key(), "swarm.key")

    async def main() -> None:
        async with serving(key) as (server, address), client(key) as dialer:
            peer = await dial(dialer, address, DIAL_TIMEOUT)
            assert peer == server.get_id()
            stream = await dialer.new_stream(peer, [TProtocol(TEST_PROTOCOL)])
            await stream.write(b"private swarm")
            assert await _read_exactly(stream, 13) == b"mraws etavirp"
            await stream.close()

    run(main)


def test_the_wire_is_kubo_pnet() -> None:
    """Speak pnet by hand: our nonce in the clear, then XSalsa20 over a multistream-select
    hello; the host answers with its own nonce and an encrypted multistream hello."""
    key = secrets.token_bytes(32)
    hello = b"/multistream/1.0.0\n"

    async def main() -> None:
        async with serving(key) as (_, address):
            port = int(address.split("/")[4])
            sock = await trio.open_tcp_stream("127.0.0.1", port)
            async with sock:
                nonce = os.urandom(24)
                await sock.send_all(nonce + pnet.xsalsa20(key, nonce).encrypt(bytes([len(hello)]) + hello))
                received = b""
                while len(received) < 24 + 1 + len(hello):
                    chunk = await sock.receive_some()
                    assert chunk, "the host closed the connection"
                    received += chunk
            their_nonce, body = received[:24], received[24:]
            assert their_nonce != nonce
            plain = pnet.xsalsa20(key, their_nonce).decrypt(body)
            assert plain[: 1 + len(hello)] == bytes([len(hello)]) + hello

    run(main)


@pytest.mark.parametrize("dialer_key", ["another key", "no key"])
def test_a_keyed_host_refuses_other_swarms(dialer_key: str) -> None:
    key = secrets.token_bytes(32)
    other = secrets.token_bytes(32) if dialer_key == "another key" else None

    async def main() -> None:
        async with serving(key) as (server, address), client(other) as dialer:
            await refused(server, dialer, address)

    run(main)


def test_a_keyed_host_cannot_join_a_public_one() -> None:
    async def main() -> None:
        async with serving(None) as (server, address), client(secrets.token_bytes(32)) as dialer:
            await refused(server, dialer, address)

    run(main)


def test_a_plaintext_dialer_is_refused() -> None:
    """A dialer that only offers /plaintext/2.0.0 gets in to a host with libp2p's default
    security list (the trap), and is turned away by ours at security negotiation."""
    from libp2p import new_host as libp2p_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.network.config import RetryConfig
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

    def plaintext_host() -> Any:
        key_pair = create_new_key_pair(secrets.token_bytes(32))
        host = libp2p_host(key_pair=key_pair,
                           sec_opt={TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(key_pair)})
        host.get_network().retry_config = RetryConfig(max_retries=0)  # fail at once
        return host

    async def main() -> None:
        default = libp2p_host(key_pair=create_new_key_pair(secrets.token_bytes(32)))
        async with serving(None, default) as (_, address), client(None, plaintext_host()) as dialer:
            await dial(dialer, address, DIAL_TIMEOUT)  # the trap is real
        async with serving(None) as (server, address), client(None, plaintext_host()) as dialer:
            with pytest.raises(PeerError, match="protocol not supported: /plaintext/"):
                await dial(dialer, address, DIAL_TIMEOUT)
            assert dialer.get_id() not in server.get_connected_peers()

    run(main)


def test_the_identity_follows_the_seed() -> None:
    seed = secrets.token_bytes(32)
    assert new_host(seed).get_id() == new_host(seed).get_id() != new_host(os.urandom(32)).get_id()
    with pytest.raises(ValueError, match="32 bytes"):
        new_host(b"short")


def test_a_bad_address_is_a_peer_error() -> None:
    async def main() -> None:
        async with client(None) as dialer:
            with pytest.raises(PeerError, match="not a peer multiaddr"):
                await dial(dialer, "/ip4/127.0.0.1/tcp/1", DIAL_TIMEOUT)  # no /p2p/ id

    run(main)


def test_network_work_ignores_sigpipe_and_restores_it() -> None:
    # The CLI lets SIGPIPE kill it (`mizu log | head`); a node must survive a peer that
    # resets a connection under a write, so the network runs with SIGPIPE ignored.
    import signal

    import trio

    from mizu_core.sync.node import run

    async def disposition() -> object:
        await trio.sleep(0)
        return signal.getsignal(signal.SIGPIPE)

    before = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        assert run(disposition) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGPIPE, before)
