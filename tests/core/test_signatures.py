"""Keys and `$signatures` (SPEC §3): every key type signs and verifies; tampering fails."""

from __future__ import annotations

import sys

import pytest

from mizu_core.errors import BadKey, SignatureError
from mizu_core.message import codec
from mizu_core.message.keys import ED25519, RSA, PrivateKey, PublicKey
from mizu_core.message.signatures import sign, verify_signatures
from tests.conftest import rsa_vector


def test_original_client_rsa_vector_verifies() -> None:
    keys = verify_signatures(codec.from_json(rsa_vector()), "/")
    assert [k.key_type for k in keys] == [RSA]


@pytest.mark.parametrize("field", ["content", "key", "digest"])
def test_changing_one_character_breaks_the_vector(field: str) -> None:
    message = rsa_vector()
    if field == "content":
        message["content"] = "roses are rad"
    else:
        entry = message["$signatures"][0]
        text = entry[field]
        entry[field] = text[:-5] + ("A" if text[-5] != "A" else "B") + text[-4:]
    with pytest.raises(SignatureError):
        verify_signatures(message, "/")


@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "secp256k1", "ecdsa"])
def test_every_key_type_signs_and_verifies(key_type: str) -> None:
    key = PrivateKey.generate(key_type)
    signed = sign({"text": "hi"}, key)
    assert verify_signatures(signed, "/") == [key.public_key]
    other = PrivateKey.generate(key_type)
    forged = {**signed, "$signatures": [{**signed["$signatures"][0], "key": other.public_key.multibase()}]}
    with pytest.raises(SignatureError):
        verify_signatures(forged, "/")


def test_ed25519_peer_id_and_marshal_round_trip() -> None:
    key = PrivateKey.generate()
    assert key.public_key.key_type == ED25519
    assert key.public_key.peer_id().startswith("12D3KooW")
    assert PublicKey.unmarshal(key.public_key.marshal()) == key.public_key


def test_sign_twice_with_one_key_adds_one_signature() -> None:
    key = PrivateKey.generate()
    once = sign({"a": 1}, key)
    assert sign(once, key) == once
    twice = sign(once, PrivateKey.generate())
    assert len(twice["$signatures"]) == 2 and len(verify_signatures(twice, "/")) == 2


def test_pem_round_trip_with_and_without_password() -> None:
    key = PrivateKey.generate("rsa")
    assert PrivateKey.from_pem(key.to_pem()).public_key == key.public_key
    encrypted = key.to_pem("s3cret")
    assert PrivateKey.from_pem(encrypted, "s3cret").public_key == key.public_key
    with pytest.raises(BadKey, match="wrong password"):
        PrivateKey.from_pem(encrypted, "nope")
    with pytest.raises(BadKey, match="no password"):
        PrivateKey.from_pem(encrypted)
    with pytest.raises(BadKey, match="not a PEM private key"):
        PrivateKey.from_pem(b"hello")


def test_malformed_signature_entries() -> None:
    key = PrivateKey.generate()
    signed = sign({"a": 1}, key)
    entry = signed["$signatures"][0]
    for bad in ([], [{"key": entry["key"]}], [{**entry, "extra": 1}], [{**entry, "key": "x" + entry["key"][1:]}]):
        with pytest.raises(SignatureError):
            verify_signatures({**signed, "$signatures": bad}, "/")


@pytest.mark.parametrize("size", [0, 1, 64, 1000])
def test_a_key_for_many_messages_signs_the_same(size: int) -> None:
    key = PrivateKey.generate()
    many = key.for_many()
    data = bytes(range(256)) * 4
    assert many.sign(data[:size]) == key.sign(data[:size])
    assert many.public_key == key.public_key


def test_a_key_for_many_messages_without_pynacl_or_not_ed25519_is_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rsa = PrivateKey.generate("rsa")
    assert rsa.for_many() is rsa
    monkeypatch.setitem(sys.modules, "nacl.bindings", None)  # as if PyNaCl were missing
    key = PrivateKey.generate()
    assert key.for_many() is key


@pytest.mark.parametrize("through_sodium", [False, True])
def test_ed25519_verifies_alike_through_either_library(
    monkeypatch: pytest.MonkeyPatch, through_sodium: bool
) -> None:
    from mizu_core.message import keys

    monkeypatch.setattr(keys, "_verified", 0)
    monkeypatch.setattr(keys, "_sodium_open", None)
    monkeypatch.setattr(keys, "_SODIUM_AFTER", 0 if through_sodium else 1 << 30)
    key = PrivateKey.generate()
    public = key.public_key
    data = b"some signed bytes"
    signature = key.sign(data)
    assert public.verify(data, signature)
    assert not public.verify(data + b"!", signature)
    assert not public.verify(data, signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not public.verify(data, signature[:63])
    assert not PublicKey(ED25519, public.data[:31]).verify(data, signature)
    assert (keys._sodium_open is not None) == through_sodium
