"""`$signatures`: signing a message and checking the signatures it carries.

A signature signs the canonical DAG-CBOR encoding of the object it sits in, without its
`$signatures` field; several signers may sign the same bytes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mizu_core.errors import SignatureError
from mizu_core.message import codec
from mizu_core.message.cid import multibase_b58, multibase_decode

if TYPE_CHECKING:  # keys imports cryptography, which reads never need (keys.py says why)
    from mizu_core.message.keys import PrivateKey, PublicKey

SIGNATURES = "$signatures"


def signed_bytes(obj: dict[str, Any]) -> bytes:
    return codec.encode({k: v for k, v in obj.items() if k != SIGNATURES})


def signature_entries(obj: dict[str, Any]) -> list[Any]:
    value = obj.get(SIGNATURES)
    if value is None:
        return []
    return value if type(value) is list else [value]


def sign(message: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    """Return `message` with `key`'s signature added (unchanged if `key` already signed it)."""
    return sign_and_encode(message, key)[0]


def sign_and_encode(
    message: dict[str, Any], key: PrivateKey, encoded: bytes | None = None
) -> tuple[dict[str, Any], bytes]:
    """`sign`, plus the signed message's canonical encoding. `encoded`, if given, is the
    message's own encoding (spares encoding it again when it has no signatures yet)."""
    entries = signature_entries(message)
    public = key.public_key.multibase()
    if any(type(e) is dict and e.get("key") == public for e in entries):
        return message, encoded or codec.encode(message)
    unsigned = encoded if encoded is not None and SIGNATURES not in message else signed_bytes(message)
    digest = multibase_b58(key.sign(unsigned))
    signed = {**message, SIGNATURES: [*entries, {"key": public, "digest": digest}]}
    return signed, codec.encode(signed)


@lru_cache(maxsize=4096)
def _public_key(text: str) -> PublicKey:
    from mizu_core.message.keys import PublicKey

    if not text.startswith("z"):
        raise SignatureError(f"signature key '{_short(text)}' is not base58btc (z…)")
    try:
        return PublicKey.unmarshal(multibase_decode(text))
    except ValueError as e:
        raise SignatureError(f"signature key '{_short(text)}' is malformed: {e}") from None


def _short(text: str) -> str:
    return text if len(text) <= 16 else text[:12] + "…"


def verify_signatures(obj: dict[str, Any], where: str) -> list[PublicKey]:
    """Check every signature on `obj`; return the signers' keys or raise SignatureError."""
    entries = signature_entries(obj)
    if not entries:
        raise SignatureError(f"$signatures at {where} is empty")
    data = signed_bytes(obj)
    signers = []
    for entry in entries:
        if type(entry) is not dict or set(entry) != {"key", "digest"}:
            raise SignatureError(f'$signatures at {where}: each entry must be {{"key", "digest"}}')
        key_text, digest_text = entry["key"], entry["digest"]
        if type(key_text) is not str or type(digest_text) is not str:
            raise SignatureError(f"$signatures at {where}: key and digest must be strings")
        key = _public_key(key_text)
        if not digest_text.startswith("z"):
            raise SignatureError(f"signature digest at {where} is not base58btc (z…)")
        try:
            signature = multibase_decode(digest_text)
        except ValueError:
            raise SignatureError(f"signature digest at {where} is not base58btc") from None
        if not key.verify(data, signature):
            raise SignatureError(f"invalid signature from key {_short(key_text)} at {where}")
        signers.append(key)
    return signers
