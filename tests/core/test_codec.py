"""Canonical DAG-CBOR, CIDs and the JSON edge (SPEC §1)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.cid import CID, b58decode, b58encode
from tests.conftest import RSA_VECTOR_CID, SPEC_VECTORS, rsa_vector


@pytest.mark.parametrize(("message", "cid"), SPEC_VECTORS)
def test_spec_vectors(message: dict, cid: str) -> None:
    assert str(CID.for_block(codec.encode(message))) == cid


def test_signed_vector_cid() -> None:
    data = codec.encode(codec.from_json(rsa_vector()))
    assert str(CID.for_block(data)) == RSA_VECTOR_CID


def test_canonical_key_order_is_length_first() -> None:
    encoded = codec.encode({"bb": 1, "a": 2, "c": 3, "aaa": 4})
    assert codec.decode(encoded) == {"a": 2, "c": 3, "bb": 1, "aaa": 4}
    assert list(codec.decode(encoded)) == ["a", "c", "bb", "aaa"]


def test_agrees_with_an_independent_encoder() -> None:
    libipld = pytest.importorskip("libipld")
    value = {"z": [1, -1, 2**63, -(2**64), 1.5, "é", True, None, b"\x00"], "a": {"b": {}}}
    assert codec.encode(value) == libipld.encode_dag_cbor(value)


@pytest.mark.parametrize(
    "bad_hex",
    [
        "a2616201616101",  # keys out of order
        "a2616101616101",  # duplicate keys
        "fa3f800000",  # 32-bit float
        "1817",  # integer not in its shortest form
        "9f01ff",  # indefinite-length array
        "a1616101ff",  # trailing bytes
        "c074323031332d30332d32315432303a30343a30305a",  # tag 0 (date)
        "d82a4100",  # tag 42 without a CID
    ],
)
def test_decode_rejects_non_canonical(bad_hex: str) -> None:
    with pytest.raises(InvalidMessage):
        codec.decode(bytes.fromhex(bad_hex))


def test_integer_range() -> None:
    assert codec.decode(codec.encode(2**64 - 1)) == 2**64 - 1
    assert codec.decode(codec.encode(-(2**64))) == -(2**64)
    with pytest.raises(InvalidMessage, match="64 bits"):
        codec.encode(2**64)


def test_floats_stay_floats_and_nan_is_rejected() -> None:
    assert codec.encode(1.0) == bytes.fromhex("fb3ff0000000000000")
    assert type(codec.decode(codec.encode(1.0))) is float
    with pytest.raises(InvalidMessage):
        codec.encode(float("nan"))
    with pytest.raises(InvalidMessage):
        codec.parse_json('{"x": NaN}')


def test_links_and_bytes_round_trip_through_json() -> None:
    cid = SPEC_VECTORS[0][1]
    text = json.dumps({"link": {"/": cid}, "raw": {"/": {"bytes": "AAEC"}}})
    value = codec.from_json(json.loads(text))
    assert value == {"link": CID.parse(cid), "raw": b"\x00\x01\x02"}
    encoded = codec.encode(value)
    assert b"\xd8\x2a" in encoded  # tag 42
    assert codec.to_json(codec.decode(encoded)) == json.loads(text)


def test_deep_nesting_limit() -> None:
    deep: dict = {}
    node = deep
    for _ in range(codec.MAX_DEPTH - 1):
        node["a"] = {}
        node = node["a"]
    assert codec.decode(codec.encode(deep)) == deep
    node["a"] = {}
    with pytest.raises(InvalidMessage, match="nesting"):
        codec.encode(deep)


def test_json_errors_carry_position() -> None:
    with pytest.raises(InvalidMessage, match="line 2 column 5"):
        codec.parse_json('{"a":\n  1,,}')
    with pytest.raises(InvalidMessage, match="invalid UTF-8"):
        codec.parse_json(b'{"a": "\xff"}')
    with pytest.raises(InvalidMessage, match="surrogate"):
        codec.encode(codec.parse_json('{"a": "\\ud800"}'))


def test_cid_multibase_forms() -> None:
    cid = CID.parse(SPEC_VECTORS[0][1])
    assert CID.parse(cid.encode("base58btc")) == cid
    assert CID.parse("f" + cid.raw.hex()) == cid
    v0 = CID.for_block(b"x", version=0)
    assert str(v0).startswith("Qm") and CID.parse(str(v0)) == v0
    assert str(v0.to_v1()).startswith("bafybei")
    with pytest.raises(ValueError):
        CID.parse("bnotacid")


@given(st.binary(max_size=40))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200)
@given(json_values)
def test_any_json_value_round_trips(value: object) -> None:
    encoded = codec.encode(value)
    assert codec.decode(encoded) == value
    assert codec.encode(codec.decode(encoded)) == encoded
