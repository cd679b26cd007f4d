"""Keys in libp2p's marshalled form: signing, verifying, PEM files and peer ids.

`$signatures` names keys as the libp2p `PublicKey` protobuf (field 1 = type, field 2 =
bytes). Ed25519 is what Mizu creates; RSA (PKCS#1 v1.5, SHA-256) is what the original
client used; secp256k1 and ECDSA (DER signatures over SHA-256) verify too.

Importing cryptography takes about a tenth of a cold `mizu query`, which never needs a
key, so modules on the read path import this one under TYPE_CHECKING or where it is used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from mizu_core.errors import BadKey, SignatureError, UsageError
from mizu_core.message.cid import b58encode, multibase_b58, read_varint, varint

RSA, ED25519, SECP256K1, ECDSA = 0, 1, 2, 3


def _parse_protobuf_key(data: bytes) -> tuple[int, bytes]:
    key_type: int | None = None
    key_data: bytes | None = None
    pos = 0
    try:
        while pos < len(data):
            tag, pos = read_varint(data, pos)
            if tag == 0x08:
                key_type, pos = read_varint(data, pos)
            elif tag == 0x12:
                length, pos = read_varint(data, pos)
                if pos + length > len(data):
                    raise ValueError("truncated key bytes")
                key_data, pos = data[pos : pos + length], pos + length
            else:
                raise ValueError(f"unexpected protobuf field tag {tag}")
    except ValueError as e:
        raise SignatureError(f"malformed public key: {e}") from None
    if key_type is None or key_data is None:
        raise SignatureError("malformed public key: type or data missing")
    return key_type, key_data


@lru_cache(maxsize=256)  # a signer's key is marshalled for every message it signs
def _marshal(key_type: int, data: bytes) -> bytes:
    return b"\x08" + varint(key_type) + b"\x12" + varint(len(data)) + data


@dataclass(frozen=True)
class PublicKey:
    key_type: int
    data: bytes

    @classmethod
    def unmarshal(cls, marshalled: bytes) -> PublicKey:
        return cls(*_parse_protobuf_key(marshalled))

    def marshal(self) -> bytes:
        return _marshal(self.key_type, self.data)

    def multibase(self) -> str:
        return _multibase(self.marshal())

    def peer_id(self) -> str:
        """The libp2p peer id: identity multihash for small keys, sha2-256 otherwise."""
        marshalled = self.marshal()
        if len(marshalled) <= 42:
            return b58encode(b"\x00" + varint(len(marshalled)) + marshalled)
        return b58encode(b"\x12\x20" + hashlib.sha256(marshalled).digest())

    def verify(self, data: bytes, signature: bytes) -> bool:
        try:
            if self.key_type == ED25519:
                if _sodium_verify(self.data, data, signature):
                    return True
                _ed25519_key(self.data).verify(signature, data)  # the refusal, as before
            elif self.key_type == RSA:
                key = serialization.load_der_public_key(self.data)
                if not isinstance(key, rsa.RSAPublicKey):
                    return False
                key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            elif self.key_type == SECP256K1:
                pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), self.data)
                pub.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            elif self.key_type == ECDSA:
                key = serialization.load_der_public_key(self.data)
                if not isinstance(key, ec.EllipticCurvePublicKey):
                    return False
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            else:
                raise SignatureError(f"unsupported key type {self.key_type}")
        except (InvalidSignature, ValueError, UnsupportedAlgorithm):
            return False
        return True


_SODIUM_AFTER = 256  # verifications before PyNaCl's import (~20 ms) pays for itself
_verified = 0
_sodium_open: Callable[[bytes, bytes], bytes] | None = None


def _sodium_verify(key: bytes, data: bytes, signature: bytes) -> bool:
    """Ed25519 through libsodium (PyNaCl, which the network layer brings): about half the
    time of `cryptography`'s, GIL released. Used from the 257th verification of a process
    on (pulls, imports, fsck); False means "not verified here", never "invalid": what
    libsodium refuses (it is stricter, e.g. on small-order keys) goes to `cryptography`,
    so exactly the same signatures are accepted either way."""
    global _verified, _sodium_open
    if _sodium_open is None:
        _verified += 1
        if _verified <= _SODIUM_AFTER:
            return False
        try:
            from nacl.bindings import crypto_sign_open
        except ImportError:
            _verified = -(1 << 62)  # not installed: never try again
            return False
        _sodium_open = crypto_sign_open
    try:
        _sodium_open(signature + data, key)
    except Exception:  # BadSignatureError, or a key or signature of the wrong length
        return False
    return True


@lru_cache(maxsize=1024)
def _ed25519_key(data: bytes) -> ed25519.Ed25519PublicKey:
    """Loaded once per key: a feed's messages mostly share a few signers."""
    return ed25519.Ed25519PublicKey.from_public_bytes(data)


@lru_cache(maxsize=1024)
def _multibase(marshalled: bytes) -> str:
    return multibase_b58(marshalled)


PrivateKeyObject = (
    ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
)


class PrivateKey:
    """A signing key of any supported type, with its libp2p public key."""

    def __init__(self, key: PrivateKeyObject) -> None:
        self._key = key
        self.public_key = self._public_key()
        self._sodium: tuple[Callable[[bytes, bytes], bytes], bytes] | None = None

    @property
    def deterministic(self) -> bool:
        """Whether signing the same bytes twice gives the same signature: Ed25519 (RFC
        8032) and RSA PKCS#1 v1.5 do; ECDSA here draws a random nonce."""
        return isinstance(self._key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey)

    def for_many(self) -> PrivateKey:
        """This key, made to sign many messages: an Ed25519 key signs through libsodium
        when PyNaCl is installed (it comes with the network layer). The signatures are
        the same (Ed25519 signing is deterministic, RFC 8032) and take ~30% less time, but
        importing PyNaCl takes ~20 ms: not worth it for a few messages."""
        if not isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self
        try:
            from nacl.bindings import crypto_sign, crypto_sign_seed_keypair
        except ImportError:
            return self
        fast = PrivateKey(self._key)
        fast._sodium = (crypto_sign, crypto_sign_seed_keypair(self.ed25519_seed())[1])
        return fast

    def _public_key(self) -> PublicKey:
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return PublicKey(ED25519, raw)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if isinstance(key, rsa.RSAPrivateKey):
            return PublicKey(RSA, der)
        if isinstance(key.curve, ec.SECP256K1):
            point = key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
            return PublicKey(SECP256K1, point)
        return PublicKey(ECDSA, der)

    @classmethod
    def generate(cls, key_type: str = "ed25519") -> PrivateKey:
        if key_type == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        if key_type == "rsa":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if key_type == "secp256k1":
            return cls(ec.generate_private_key(ec.SECP256K1()))
        if key_type == "ecdsa":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        raise UsageError(f"unknown key type '{key_type}' (ed25519, rsa, secp256k1, ecdsa)")

    @classmethod
    def from_pem(cls, pem: bytes, password: str | None = None, source: str = "key") -> PrivateKey:
        secret = password.encode("utf-8") if password else None
        try:
            key = serialization.load_pem_private_key(pem, password=secret)
        except TypeError:
            if secret is None:
                raise BadKey(
                    f"{source} is encrypted and no password was given",
                    hint="append ,PASSWORD to --pem or set MIZU_KEY_PASSWORD",
                ) from None
            raise BadKey(f"{source} is not encrypted but a password was given") from None
        except ValueError:
            if secret is not None and b"ENCRYPTED" in pem:
                raise BadKey(f"wrong password for {source}") from None
            raise BadKey(f"{source} is not a PEM private key") from None
        except UnsupportedAlgorithm as e:
            raise BadKey(f"{source}: unsupported key algorithm ({e})") from None
        if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)) and not (
            isinstance(key, ec.EllipticCurvePrivateKey)
            and isinstance(key.curve, (ec.SECP256K1, ec.SECP256R1))
        ):
            raise BadKey(f"{source}: unsupported key type {type(key).__name__}")
        return cls(key)

    def to_pem(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode("utf-8"))
            if password
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def ed25519_seed(self) -> bytes:
        """The 32-byte seed of an Ed25519 key: what a libp2p host's identity is made from."""
        if not isinstance(self._key, ed25519.Ed25519PrivateKey):
            raise BadKey("a node identity must be an Ed25519 key")
        return self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def sign(self, data: bytes) -> bytes:
        if self._sodium is not None:
            sign, secret = self._sodium
            return sign(data, secret)[:64]  # the signature, then the message
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
