"""DAG-CBOR decoding of arbitrary and damaged bytes: a value that encodes back to exactly
those bytes (the canonical form is enforced), or a one-line InvalidMessage; and every
value Mizu can store reads back equal, byte for byte."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mizu_core.errors import InvalidMessage
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW
from tests.fuzz import fuzz_settings

cids = st.builds(CID.for_block, st.binary(max_size=8), st.sampled_from([DAG_CBOR, DAG_PB, RAW]),
                 st.sampled_from([1])) | st.builds(lambda d: CID.for_block(d, DAG_PB, 0), st.binary(max_size=8))
scalars = (
    st.none() | st.booleans()
    | st.integers(min_value=-(1 << 64), max_value=(1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.binary(max_size=20) | cids
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


def _decode(data: bytes) -> Any:
    """`codec.decode`, which may only refuse with a one-line InvalidMessage."""
    try:
        value = codec.decode(data)
    except InvalidMessage as e:
        assert "\n" not in str(e)
        return None
    assert codec.encode(value) == data  # canonical: nothing else decodes
    return value


@fuzz_settings(300)
@given(values)
def test_every_value_reads_back_equal(value: Any) -> None:
    data = codec.encode(value)
    back = codec.decode(data)
    assert back == value and codec.encode(back) == data
    assert codec.decode_trusted(data) == value


@fuzz_settings(300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_canonically_or_fail_in_one_line(data: bytes) -> None:
    _decode(data)


@fuzz_settings(300)
@given(values, st.data())
def test_damaged_encodings_decode_canonically_or_fail_in_one_line(value: Any, data: st.DataObject) -> None:
    encoded = bytearray(codec.encode(value))
    kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append", "head"]))
    at = data.draw(st.integers(0, max(0, len(encoded) - 1)))
    if kind == "flip" and encoded:
        encoded[at] ^= data.draw(st.integers(1, 255))
    elif kind == "insert":
        encoded[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    elif kind == "delete":
        del encoded[at:at + data.draw(st.integers(1, 4))]
    elif kind == "truncate":
        del encoded[at:]
    elif kind == "append":
        encoded += data.draw(st.binary(min_size=1, max_size=4))
    else:  # a non-canonical head: the same number written longer, or indefinite lengths
        encoded[at:at + 1] = data.draw(st.sampled_from([b"\x18\x01", b"\x19\x00\x01", b"\x5f", b"\x7f", b"\x9f",
                                                        b"\xbf", b"\xff", b"\xf7", b"\xf9\x3c\x00", b"\xfa\x3f\x80\x00\x00",
                                                        b"\xd8\x2a", b"\xc1", b"\xd9\xd9\xf7"]))
    _decode(bytes(encoded))


def test_known_non_canonical_forms_are_refused() -> None:
    for data in (
        b"\x18\x01",  # 1 in two bytes
        b"\xa2\x61b\x01\x61a\x02",  # keys out of order
        b"\xa2\x61a\x01\x61a\x02",  # a key twice
        b"\xfa\x3f\x80\x00\x00",  # a 32-bit float
        b"\xfb" + struct.pack(">d", float("nan")),
        b"\xfb" + struct.pack(">d", float("inf")),
        b"\x9f\xff",  # an indefinite list
        b"\xf7",  # undefined
        b"\xc1\x01",  # a tag other than 42
        b"\xd8\x2a\x41\x01",  # tag 42 without the multibase zero
        b"\xa1\x01\x02",  # a map key that is not a string
        b"\x01\x02",  # bytes after the value
    ):
        assert _decode(data) is None, data.hex()
