"""Private swarms compatible with IPFS/kubo (`swarm.key`, libp2p pnet): each side sends a
random 24-byte nonce in the clear, then XORs XSalsa20(key, nonce) over all it writes.

It sits on the raw TCP connection below multistream-select and Noise, so a node without
the key (or with another) fails before any libp2p or Mizu protocol byte is understood.
py-libp2p's own `psk=` uses Salsa20 with an 8-byte nonce, which kubo does not speak.
"""

from __future__ import annotations

import functools
import os
import secrets
import struct
from pathlib import Path
from typing import Any

from mizu_core.errors import UsageError
from mizu_core.repo.repository import Repository

HEADER = "/key/swarm/psk/1.0.0/"
NONCE_SIZE = 24
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def generate_swarm_key() -> str:
    """The text of a new swarm.key, as ipfs-swarm-key-gen writes it."""
    return f"{HEADER}\n/base16/\n{secrets.token_hex(32)}\n"


def parse_swarm_key(text: str, source: str) -> bytes:
    """The 32-byte key of a swarm.key file (/base16/, /base64/ or /bin/ encoded)."""
    lines = text.split("\n", 2)
    if len(lines) < 3 or lines[0].strip() != HEADER:
        raise UsageError(f"{source} is not a swarm key (it must start with {HEADER})")
    encoding, body = lines[1].strip(), lines[2]
    try:
        if encoding == "/base16/":
            key = bytes.fromhex(body.strip())
        elif encoding == "/base64/":
            import base64

            key = base64.b64decode(body.strip(), validate=True)
        elif encoding == "/bin/":
            key = body.encode("latin-1")
        else:
            raise UsageError(f"{source}: unknown swarm key encoding '{encoding}'")
    except ValueError:
        raise UsageError(f"{source}: the key is not valid {encoding.strip('/')}") from None
    if len(key) != 32:
        raise UsageError(f"{source}: a swarm key is 32 bytes, this one is {len(key)}")
    return key


def swarm_key(repo: Repository) -> bytes | None:
    """The private-network key: `swarm.key-file` in the config, else `.mizu/swarm.key`."""
    configured = repo.config.get("swarm.key-file")
    path = Path(configured).expanduser() if configured else (repo.path / "swarm.key" if repo.path else None)
    if path is None or (not configured and not path.exists()):
        return None
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise UsageError(f"cannot read swarm key {path}: {e.strerror}") from None
    return parse_swarm_key(text, str(path))


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    """HSalsa20: the Salsa20 core without the final addition, giving XSalsa20's subkey."""
    k = struct.unpack("<8I", key)
    n = struct.unpack("<4I", nonce16)
    x = [_SIGMA[0], *k[:4], _SIGMA[1], *n, _SIGMA[2], *k[4:], _SIGMA[3]]
    for _ in range(10):
        for a, b, c, d in ((0, 4, 8, 12), (5, 9, 13, 1), (10, 14, 2, 6), (15, 3, 7, 11),
                           (0, 1, 2, 3), (5, 6, 7, 4), (10, 11, 8, 9), (15, 12, 13, 14)):
            x[b] ^= _rotl((x[a] + x[d]) & 0xFFFFFFFF, 7)
            x[c] ^= _rotl((x[b] + x[a]) & 0xFFFFFFFF, 9)
            x[d] ^= _rotl((x[c] + x[b]) & 0xFFFFFFFF, 13)
            x[a] ^= _rotl((x[d] + x[c]) & 0xFFFFFFFF, 18)
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def xsalsa20(key: bytes, nonce: bytes) -> Any:
    """A stream cipher object (`encrypt` XORs the keystream) for a 24-byte nonce."""
    from Crypto.Cipher import Salsa20

    return Salsa20.new(key=hsalsa20(key, nonce[:16]), nonce=nonce[16:])


@functools.cache
def _connection_class() -> Any:
    # The swarm checks that connections are RawConnections (py-libp2p's PskConn is one).
    from libp2p.network.connection.raw_connection import RawConnection

    class ProtectedConnection(_Protected, RawConnection):
        """A raw libp2p connection wrapped in the pnet stream cipher, both directions."""

    return ProtectedConnection


class _Protected:
    def __init__(self, conn: Any, key: bytes) -> None:
        self._conn = conn
        self._key = key
        self._writer: Any = None
        self._reader: Any = None
        self.is_initiator = getattr(conn, "is_initiator", False)

    async def write(self, data: bytes) -> None:
        if self._writer is None:
            nonce = os.urandom(NONCE_SIZE)
            self._writer = xsalsa20(self._key, nonce)
            await self._conn.write(nonce)
        await self._conn.write(self._writer.encrypt(data))

    async def read(self, n: int | None = None) -> bytes:
        if self._reader is None:
            nonce = b""
            while len(nonce) < NONCE_SIZE:
                chunk = await self._conn.read(NONCE_SIZE - len(nonce))
                if not chunk:
                    return b""
                nonce += chunk
            self._reader = xsalsa20(self._key, nonce)
        data = await self._conn.read(n)
        return self._reader.decrypt(data) if data else b""

    async def close(self) -> None:
        await self._conn.close()

    def get_remote_address(self) -> Any:
        return self._conn.get_remote_address()

    def __getattr__(self, name: str) -> Any:  # anything else the swarm asks of the socket
        return getattr(self._conn, name)


def protect(host: Any, key: bytes) -> None:
    """Make `host` speak kubo's pnet with `key` on every connection, both ways.

    py-libp2p applies its protector through a module-level function of its swarm when the
    swarm has a `psk`; that function is replaced with ours (a process runs one swarm).
    """
    import libp2p.network.swarm as swarm_module

    network = host.get_network()
    network.psk = key.hex()
    swarm_module.new_protected_conn = lambda conn, psk: _connection_class()(conn, bytes.fromhex(psk))  # type: ignore[attr-defined]
