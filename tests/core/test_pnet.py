"""Private swarms: swarm.key files and the XSalsa20 stream kubo's pnet uses."""

from __future__ import annotations

import os

import nacl.secret
import pytest

from mizu_core.errors import UsageError
from mizu_core.sync import pnet


def test_xsalsa20_matches_libsodium() -> None:
    # secretbox is XSalsa20-Poly1305: its ciphertext is the message XORed with the
    # keystream after the 32 bytes that key Poly1305.
    for size in (1, 63, 64, 65, 1000):
        key, nonce, message = os.urandom(32), os.urandom(24), os.urandom(size)
        boxed = nacl.secret.SecretBox(key).encrypt(message, nonce).ciphertext[16:]
        stream = pnet.xsalsa20(key, nonce).encrypt(bytes(32 + size))[32:]
        assert bytes(m ^ s for m, s in zip(message, stream, strict=True)) == boxed


def test_the_stream_continues_across_writes() -> None:
    key, nonce = os.urandom(32), os.urandom(24)
    whole = pnet.xsalsa20(key, nonce).encrypt(bytes(100))
    cipher = pnet.xsalsa20(key, nonce)
    assert cipher.encrypt(bytes(30)) + cipher.encrypt(bytes(70)) == whole


def test_swarm_keys_round_trip_in_every_encoding() -> None:
    text = pnet.generate_swarm_key()
    header, encoding, hexkey, end = text.split("\n")
    assert (header, encoding, len(hexkey), end) == ("/key/swarm/psk/1.0.0/", "/base16/", 64, "")
    key = pnet.parse_swarm_key(text, "swarm.key")
    assert key == bytes.fromhex(hexkey)
    import base64

    assert pnet.parse_swarm_key(f"/key/swarm/psk/1.0.0/\n/base64/\n{base64.b64encode(key).decode()}\n", "k") == key


@pytest.mark.parametrize(("text", "says"), [
    ("hello", "not a swarm key"),
    ("/key/swarm/psk/1.0.0/\n/base16/\nabcd\n", "32 bytes"),
    ("/key/swarm/psk/1.0.0/\n/base16/\nzz\n", "not valid base16"),
    ("/key/swarm/psk/1.0.0/\n/rot13/\nabcd\n", "unknown swarm key encoding"),
])
def test_bad_swarm_keys_are_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        pnet.parse_swarm_key(text, "/x/swarm.key")
    assert "/x/swarm.key" in str(caught.value) and "\n" not in str(caught.value)
