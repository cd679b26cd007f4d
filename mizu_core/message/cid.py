"""Content identifiers: the binary CID, its multibase text forms, and block hashing.

CIDs are built by hand rather than through `multiformats`, which is ~50x slower on the
publish hot path; the text forms are byte-identical to what IPFS tools print.

Turning base58 or base36 text into bytes takes time quadratic in its length, so every
length is bounded before anything is decoded: a CID is at most MAX_CID_BYTES bytes (its
digest at most MAX_DIGEST_BYTES, identity hashes included) and its text at most
MAX_CID_TEXT characters; other multibase values (keys, signatures) at most
MAX_MULTIBASE_BYTES. man/mizu-protocol.5 documents them.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable

from mizu_core.errors import UsageError, shorten
from mizu_core.speedups import disabled, native

DAG_PB = 0x70
DAG_CBOR = 0x71
RAW = 0x55
SHA2_256 = 0x12
IDENTITY_HASH = 0x00

# A digest longer than this is refused, whatever the hash function: kubo (boxo's verifcid)
# refuses identity digests over 128 bytes too. It keeps every CID far below LMDB's 511-byte
# key limit, with the prefixes the store's tables put before it.
MAX_DIGEST_BYTES = 128
# Version, codec, hash code and digest length (varints), and the digest: 149 bytes at most
# with 9-byte varints; a few more allowed, none needed.
MAX_CID_BYTES = 160
MAX_CID_TEXT = 2 * MAX_CID_BYTES + 1  # the longest text of the longest CID: base16 and its "f"
MAX_MULTIBASE_BYTES = 4096  # keys and signatures as multibase text (an RSA-16384 key fits)

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}
_B36_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


_B32_PAIRS = [a + b for a in "abcdefghijklmnopqrstuvwxyz234567" for b in "abcdefghijklmnopqrstuvwxyz234567"]
_B58_CHUNK = 58**10
_B58_PAIRS = [a + b for a in _B58_ALPHABET for b in _B58_ALPHABET]


def _b32encode_lower(data: bytes) -> str:
    """RFC 4648 base32, lower case, unpadded (the stdlib's is pure Python and 5x slower)."""
    padded = data + b"\0" * (-len(data) % 5)
    pairs = _B32_PAIRS
    out = []
    for i in range(0, len(padded), 5):
        n = int.from_bytes(padded[i : i + 5], "big")
        out.append(pairs[n >> 30] + pairs[(n >> 20) & 1023] + pairs[(n >> 10) & 1023] + pairs[n & 1023])
    return "".join(out)[: (len(data) * 8 + 4) // 5]


b32encode_lower = native.base32 if native is not None else _b32encode_lower


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    # Ten digits per big-int division, two per small one (a table of digit pairs).
    pairs = _B58_PAIRS
    while n:
        n, chunk = divmod(n, _B58_CHUNK)
        for _ in range(5):
            chunk, r = divmod(chunk, 3364)
            out.append(pairs[r])
    text = "".join(reversed(out)).lstrip("1")
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + text


def multibase_b58(data: bytes) -> str:
    """Multibase base58btc: how keys and signatures are written in `$signatures`."""
    return "z" + b58encode(data)


def _b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        digit = _B58_INDEX.get(c)
        if digit is None:
            raise ValueError(f"invalid base58 character {c!r}")
        n = n * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def _b58decode_python_multibase(text: str) -> tuple[str, bytes]:
    return text[0], _b58decode(text[1:])


_decode_multibase: Callable[[str], tuple[str, bytes]] | None = None  # libipld's, once imported


def _b58decode_libipld(text: str) -> bytes:
    """`_b58decode` by libipld (Rust), 2.8 times as fast as the C it replaced on keys and
    signatures (bench/native.py). libipld is imported when first needed: `mizu view` need not
    pay for it. What it refuses goes through `_b58decode`, to be refused with the same
    ValueError."""
    global _decode_multibase
    decode = _decode_multibase
    if decode is None:
        try:
            import libipld

            decode = libipld.decode_multibase
        except ImportError:  # a dependency; but without it, the pure Python
            decode = _b58decode_python_multibase
        _decode_multibase = decode
    try:
        return decode("z" + text)[1]
    except ValueError:
        return _b58decode(text)


b58encode = native.b58encode if native is not None else _b58encode
b58decode = _b58decode if disabled else _b58decode_libipld


def _b36decode(text: str) -> bytes:
    n = 0
    for c in text.lower():
        digit = _B36_ALPHABET.find(c)
        if digit < 0:
            raise ValueError(f"invalid base36 character {c!r}")
        n = n * 36 + digit
    zeros = len(text) - len(text.lstrip("0"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def _b32decode(text: str) -> bytes:
    text = text.upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _b64decode(text: str, urlsafe: bool) -> bytes:
    text = text.rstrip("=")
    if urlsafe:  # the stdlib's urlsafe decoder skips characters it does not know: refuse them
        if "+" in text or "/" in text:
            raise ValueError("invalid base64url character")
        text = text.translate(_URLSAFE)
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


_URLSAFE = str.maketrans("-_", "+/")


# Bits per character of each multibase prefix this module decodes.
_BITS = {"f": 4.0, "F": 4.0, "b": 5.0, "B": 5.0, "k": math.log2(36), "K": math.log2(36),
         "z": math.log2(58), "m": 6.0, "M": 6.0, "u": 6.0, "U": 6.0}


def multibase_decode(text: str, max_bytes: int = MAX_MULTIBASE_BYTES) -> bytes:
    """Decode a multibase string (base16, base32, base36, base58btc, base64 variants) of at
    most `max_bytes` bytes. Longer text is refused before it is decoded (base58 and base36
    take time quadratic in their length); errors never quote the text."""
    if not text:
        raise ValueError("empty multibase string")
    prefix, body = text[0], text[1:]
    bits = _BITS.get(prefix)
    if bits is None:
        raise ValueError(f"unsupported multibase prefix {prefix!r}")
    # Base58 and base36 spell each leading zero byte with one character: at most max_bytes.
    limit = max(max_bytes, math.ceil(max_bytes * 8 / bits)) + 2  # + padding
    if len(body) > limit:
        raise ValueError(f"{len(text)} characters, longer than {max_bytes} bytes can be")
    try:
        if prefix in "fF":
            data = bytes.fromhex(body)
        elif prefix in "bB":
            data = _b32decode(body)
        elif prefix in "kK":
            data = _b36decode(body)
        elif prefix == "z":
            data = b58decode(body)
        else:
            data = _b64decode(body, urlsafe=prefix in "uU")
    except (ValueError, base64.binascii.Error) as e:  # type: ignore[attr-defined]
        raise ValueError(f"invalid multibase string: {e}") from None
    if len(data) > max_bytes:
        raise ValueError(f"{len(data)} bytes, over the {max_bytes}-byte limit")
    return data


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


_SMALL_VARINTS = [bytes((n,)) for n in range(0x80)]


class CID:
    """An immutable CID held in its binary form (what tag 42 carries, minus the 0x00)."""

    __slots__ = ("_text", "codec", "digest", "hash_code", "raw", "version")

    def __init__(self, raw: bytes, text: str | None = None) -> None:
        """`raw` is the binary CID; `text`, if given, must be its canonical string."""
        if len(raw) == 36 and raw[0] == 1 and raw[1] < 0x80 and raw[2] == SHA2_256 and raw[3] == 32:
            # The common case (CIDv1, one-byte codec, sha2-256), without parsing varints.
            self.raw, self._text, self.version, self.codec = bytes(raw), text, 1, raw[1]
            self.hash_code, self.digest = SHA2_256, self.raw[4:]
            return
        if len(raw) > MAX_CID_BYTES:
            raise ValueError(f"invalid CID: {len(raw)} bytes, over the {MAX_CID_BYTES}-byte limit")
        try:
            if len(raw) == 34 and raw[0] == SHA2_256 and raw[1] == 32:
                version, codec, mh = 0, DAG_PB, raw
            else:
                version, pos = read_varint(raw, 0)
                if version != 1:
                    raise ValueError(f"unsupported CID version {version}")
                codec, pos = read_varint(raw, pos)
                mh = raw[pos:]
            hash_code, pos = read_varint(mh, 0)
            length, pos = read_varint(mh, pos)
        except ValueError as e:
            raise ValueError(f"invalid CID: {e}") from None
        if length > MAX_DIGEST_BYTES:
            raise ValueError(f"invalid CID: a {length}-byte digest, over the {MAX_DIGEST_BYTES}-byte limit")
        if len(mh) - pos != length:
            raise ValueError("invalid CID: multihash length does not match its digest")
        self.raw = bytes(raw)
        self._text = text
        self.version = version
        self.codec = codec
        self.hash_code = hash_code
        self.digest = mh[pos:]

    def __reduce__(self) -> tuple[type[CID], tuple[bytes, str | None]]:
        return (CID, (self.raw, self._text))  # the text too, if made: it is the costly part

    @classmethod
    def for_block(cls, data: bytes, codec: int = DAG_CBOR, version: int = 1) -> CID:
        digest = hashlib.sha256(data).digest()
        if version == 0:
            return cls(b"\x12\x20" + digest)
        return cls(b"\x01" + varint(codec) + b"\x12\x20" + digest)

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID in any multibase (CIDv0 `Qm…` included); raise ValueError if not one.
        Text longer than MAX_CID_TEXT is refused before it is decoded."""
        text = text.strip()
        if len(text) > MAX_CID_TEXT:
            raise ValueError(f"{len(text)} characters, over the {MAX_CID_TEXT}-character limit")
        if len(text) == 46 and text.startswith("Qm"):
            return cls(b58decode(text))
        return cls(multibase_decode(text, MAX_CID_BYTES))

    def matches(self, data: bytes) -> bool:
        """True when `data` hashes to this CID (only sha2-256 and identity are supported)."""
        if self.hash_code == SHA2_256:
            return hashlib.sha256(data).digest() == self.digest
        if self.hash_code == IDENTITY_HASH:
            return data == self.digest
        return False

    def to_v1(self) -> CID:
        if self.version == 1:
            return self
        return CID(b"\x01" + varint(self.codec) + self.raw)

    def encode(self, base: str = "base32") -> str:
        if self.version == 0 and base == "base58btc":
            return b58encode(self.raw)
        raw = self.to_v1().raw
        if base == "base58btc":
            return multibase_b58(raw)
        return "b" + b32encode_lower(raw)

    def __str__(self) -> str:
        if self._text is None:  # cached: a CID is printed and turned into IRIs often
            self._text = self.encode("base58btc") if self.version == 0 else self.encode()
        return self._text

    def __repr__(self) -> str:
        return f"CID({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CID) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __lt__(self, other: CID) -> bool:
        return self.raw < other.raw


def parse_cid(text: str) -> CID:
    """Parse a CID typed by a user; a bad one is a usage error naming the text."""
    try:
        return CID.parse(text)
    except ValueError as e:
        raise UsageError(f"'{shorten(text)}' is not a CID ({e})") from None
