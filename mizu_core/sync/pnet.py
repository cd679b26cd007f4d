"""Private swarms compatible with IPFS/kubo (`swarm.key`, libp2p pnet): the key file format,
XSalsa20, and a TCP transport that runs every connection through the pnet cipher, below
multistream-select and Noise, so a node without the same key is never understood.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import secrets
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizu_core.errors import UsageError

if TYPE_CHECKING:
    from Crypto.Cipher.Salsa20 import Salsa20Cipher
    from libp2p.abc import ITransport

    from mizu_core.repo.repository import Repository

HEADER = "/key/swarm/psk/1.0.0/"
KEY_SIZE = 32
NONCE_SIZE = 24
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_MASK = 0xFFFFFFFF
_KEYGEN_HINT = "make one with: mizu swarm keygen > .mizu/swarm.key"


# -- the swarm.key file ----------------------------------------------------------------


def generate_swarm_key() -> str:
    """The text of a new swarm.key, byte for byte as kubo and ipfs-swarm-key-gen write it."""
    return f"{HEADER}\n/base16/\n{secrets.token_hex(KEY_SIZE)}\n"


def parse_swarm_key(text: str, source: str) -> bytes:
    """The 32-byte key of a swarm.key file in any codec go-libp2p reads (/base16/,
    /base64/, /bin/). `source` names the file in the one-line error a bad key raises.

    Binary (/bin/) keys must reach here decoded as latin-1, so each byte is one character.
    """
    lines = text.split("\n", 2)
    # go-libp2p trims only line ends from the two header lines; surrounding blanks are
    # harmless, so they are forgiven here as well.
    if len(lines) < 3 or lines[0].strip() != HEADER:
        raise UsageError(f"{source} is not a swarm key (it must start with {HEADER})",
                         hint=_KEYGEN_HINT)
    codec, body = lines[1].strip(), lines[2]
    if codec == "/bin/":
        # Raw bytes: the key is the next 32 characters (blanks included), then at most a
        # line end.
        try:
            raw = body.encode("latin-1")
        except UnicodeEncodeError:
            raise UsageError(f"{source}: a /bin/ swarm key must be read as bytes (latin-1)") from None
        if len(raw) < KEY_SIZE or raw[KEY_SIZE:] not in (b"", b"\n", b"\r\n"):
            raise UsageError(f"{source}: a /bin/ swarm key is {KEY_SIZE} bytes, this one is {len(raw)}",
                             hint=_KEYGEN_HINT)
        key = raw[:KEY_SIZE]
    elif codec in ("/base16/", "/base64/"):
        # Unlike go-libp2p (which reads the first 32 bytes and ignores the rest), a
        # truncated or overlong key is refused: it is almost always a copy-paste slip.
        try:
            digits = "".join(body.split())
            key = bytes.fromhex(digits) if codec == "/base16/" else base64.b64decode(digits, validate=True)
        except (ValueError, binascii.Error):
            raise UsageError(f"{source}: the key is not valid {codec.strip('/')}") from None
        if len(key) != KEY_SIZE:
            raise UsageError(f"{source}: a swarm key is {KEY_SIZE} bytes, this one is {len(key)}",
                             hint=_KEYGEN_HINT)
    else:
        raise UsageError(f"{source}: unknown swarm key encoding '{codec}' (expected /base16/, /base64/ or /bin/)")
    return key


def swarm_key(repo: Repository) -> bytes | None:
    """The private-network key: `swarm.key-file` in the config, else `.mizu/swarm.key`."""
    configured = repo.config.get("swarm.key-file")
    path = Path(configured).expanduser() if configured else (repo.path / "swarm.key" if repo.path else None)
    if path is None or (not configured and not path.exists()):
        return None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read swarm key {path}: {e.strerror}") from None
    # latin-1 maps every byte to one character: /bin/ keys survive, and stray non-ASCII in a
    # text key is reported by the codec instead of as a UnicodeDecodeError.
    return parse_swarm_key(data.decode("latin-1"), str(path))


# -- XSalsa20 --------------------------------------------------------------------------


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20: the Salsa20 core without the final addition, giving XSalsa20's subkey.

    Pure Python (≈0.1 ms): it runs once per connection direction, the bulk work is C.
    """
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    x = [_SIGMA[0], *k[:4], _SIGMA[1], *n, _SIGMA[2], *k[4:], _SIGMA[3]]
    for _ in range(10):  # 20 rounds: a column round then a row round, ten times
        for a, b, c, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11),
                           (0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= _rotl((x[a] + x[d]) & _MASK, 7)
            x[c] ^= _rotl((x[b] + x[a]) & _MASK, 9)
            x[d] ^= _rotl((x[c] + x[b]) & _MASK, 13)
            x[a] ^= _rotl((x[d] + x[c]) & _MASK, 18)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def xsalsa20(key: bytes, nonce: bytes) -> Salsa20Cipher:
    """An XSalsa20 stream (`encrypt`/`decrypt` XOR the keystream and carry on where the
    previous call stopped) for a 32-byte key and a 24-byte nonce: Salsa20 keyed with
    HSalsa20(key, nonce[:16]) and the last 8 nonce bytes, as NaCl's crypto_stream."""
    from Crypto.Cipher import Salsa20

    if len(key) != KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError(f"XSalsa20 takes a {KEY_SIZE}-byte key and a {NONCE_SIZE}-byte nonce")
    return Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])


# -- the protector ---------------------------------------------------------------------


def pnet_transport(key: bytes) -> ITransport:
    """A TCP transport whose connections, dialled and accepted alike, speak kubo's pnet
    with `key`: give it to a host as its only transport (see host.new_host)."""
    if len(key) != KEY_SIZE:
        raise ValueError(f"a swarm key is {KEY_SIZE} bytes")
    transport: ITransport = _classes()[1](key)
    return transport


@functools.cache
def _classes() -> tuple[Any, Any]:
    """The protector's classes, built on first use so importing this module (for
    `mizu swarm keygen` or reading the key) does not pay libp2p's 1.4 s import."""
    import trio
    from libp2p.abc import IRawConnection
    from libp2p.custom_types import THandler
    from libp2p.io.abc import ReadWriteCloser
    from libp2p.network.connection.raw_connection import RawConnection
    from libp2p.transport.tcp.tcp import TCP, TCPListener
    from multiaddr import Multiaddr

    class PnetStream(ReadWriteCloser):
        """go-libp2p's pskConn: each direction starts with its own random 24-byte nonce in
        the clear, then everything is XORed with XSalsa20(psk, nonce). Both nonces are sent
        lazily (on the first write), exactly as go does, so neither side waits for the other.
        """

        def __init__(self, inner: ReadWriteCloser, key: bytes) -> None:
            self._inner = inner
            self._key = key
            self._writer: Salsa20Cipher | None = None
            self._reader: Salsa20Cipher | None = None
            # The keystream position must follow the byte order on the wire, so encrypting
            # and sending (and receiving and decrypting) happen under one lock each.
            self._write_lock = trio.Lock()
            self._read_lock = trio.Lock()

        async def write(self, data: bytes) -> None:
            async with self._write_lock:
                if self._writer is None:
                    nonce = os.urandom(NONCE_SIZE)
                    cipher = xsalsa20(self._key, nonce)
                    await self._inner.write(nonce + cipher.encrypt(data))  # one segment
                    self._writer = cipher
                else:
                    await self._inner.write(self._writer.encrypt(data))

        async def read(self, n: int | None = None) -> bytes:
            async with self._read_lock:
                if self._reader is None:
                    nonce = b""
                    while len(nonce) < NONCE_SIZE:  # TCP may deliver it in pieces
                        chunk = await self._inner.read(NONCE_SIZE - len(nonce))
                        if not chunk:
                            return b""  # closed before a nonce: plain end of stream
                        nonce += chunk
                    self._reader = xsalsa20(self._key, nonce)
                data = await self._inner.read(n)
                return self._reader.decrypt(data) if data else b""

        async def close(self) -> None:
            await self._inner.close()

        def get_remote_address(self) -> tuple[str, int] | None:
            return self._inner.get_remote_address()

    class PnetTCP(TCP):
        """TCP, with the pnet stream wrapped around every connection the moment it exists:
        the same place py-libp2p's own `psk=` protector goes (right after the transport
        dial, and before the inbound upgrade), but per host rather than per process."""

        def __init__(self, key: bytes) -> None:
            super().__init__()
            self._key = key

        def _protect(self, conn: IRawConnection) -> RawConnection:
            return RawConnection(PnetStream(conn, self._key), conn.is_initiator)

        async def dial(self, maddr: Multiaddr) -> IRawConnection:
            return self._protect(await super().dial(maddr))

        async def dial_with_source(self, maddr: Multiaddr, source: tuple[str, int]) -> IRawConnection:
            return self._protect(await super().dial_with_source(maddr, source))

        def create_listener(self, handler_function: THandler) -> TCPListener:
            key = self._key

            async def protected(stream: ReadWriteCloser) -> None:
                await handler_function(PnetStream(stream, key))

            return super().create_listener(protected)

    return PnetStream, PnetTCP
