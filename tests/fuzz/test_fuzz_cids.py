"""CID text and bytes: any text is a CID or a one-line ValueError (a UsageError from
`parse_cid`), quickly whatever its length; every valid CID reads back from each multibase;
Mizu IRIs holding hostile CIDs are not Mizu IRIs, and errors never quote them whole."""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mizu_core.errors import UsageError
from mizu_core.message.cid import (
    CID,
    DAG_CBOR,
    DAG_PB,
    IDENTITY_HASH,
    MAX_CID_BYTES,
    MAX_CID_TEXT,
    MAX_DIGEST_BYTES,
    RAW,
    SHA2_256,
    b58encode,
    multibase_decode,
    parse_cid,
    varint,
)
from mizu_core.message.uris import VIEW_RAW, normalise_iri, parse_static
from tests.fuzz import fuzz_settings

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = B36[r] + out
    return "0" * (len(data) - len(data.lstrip(b"\0"))) + out


def in_every_base(raw: bytes) -> list[str]:
    """The multibase texts of `raw` in each base Mizu reads."""
    b32 = base64.b32encode(raw).decode().rstrip("=")
    b64 = base64.b64encode(raw).decode()
    b64url = base64.urlsafe_b64encode(raw).decode()
    return [
        "f" + raw.hex(), "F" + raw.hex().upper(), "b" + b32.lower(), "B" + b32,
        "k" + _base36(raw), "K" + _base36(raw).upper(), "z" + b58encode(raw),
        "m" + b64.rstrip("="), "M" + b64, "u" + b64url.rstrip("="), "U" + b64url,
    ]


hash_codes = st.sampled_from([SHA2_256, IDENTITY_HASH, 0x13, 0xB220])
codecs = st.sampled_from([DAG_CBOR, DAG_PB, RAW, 0x0129, 0x300001])


@st.composite
def valid_cids(draw: st.DrawFn) -> CID:
    if draw(st.integers(0, 9)) == 0:  # CIDv0: a bare sha2-256 multihash
        return CID(b"\x12\x20" + draw(st.binary(min_size=32, max_size=32)))
    digest = draw(st.binary(min_size=0, max_size=MAX_DIGEST_BYTES))
    return CID(b"\x01" + varint(draw(codecs)) + varint(draw(hash_codes)) + varint(len(digest)) + digest)


@given(valid_cids())
@fuzz_settings(150)
def test_a_valid_cid_reads_back_from_every_base(cid: CID) -> None:
    raw = cid.to_v1().raw
    assert len(raw) <= MAX_CID_BYTES
    for text in in_every_base(raw):
        assert len(text) <= MAX_CID_TEXT, text
        assert CID.parse(text) == cid.to_v1(), text
    assert CID.parse(str(cid)) == cid  # its own text form (Qm… for a CIDv0)
    assert CID.parse(cid.encode("base58btc")) == cid
    assert CID.parse(f"  {cid}\n") == cid
    assert CID(cid.raw) == cid


hostile_text = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=B58, max_size=400).map(lambda t: "z" + t),
    st.text(alphabet=B36, max_size=400).map(lambda t: "k" + t),
    st.text(alphabet="0123456789abcdef", max_size=700).map(lambda t: "f" + t),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", max_size=500).map(lambda t: "b" + t),
    st.text(alphabet=B58, min_size=44, max_size=44).map(lambda t: "Qm" + t),
    st.binary(max_size=400).map(lambda b: "z" + b58encode(b)),
    st.binary(max_size=400).map(lambda b: "f" + b.hex()),
    st.integers(0, 10**6).map(lambda n: "z" + "2" * n),
    st.integers(0, 10**6).map(lambda n: "k" + "1" * n),
)


@given(hostile_text)
@fuzz_settings(300)
def test_any_text_is_a_cid_or_a_short_error_quickly(text: str) -> None:
    started = time.monotonic()
    try:
        cid = CID.parse(text)
    except ValueError as e:
        message = str(e)
        assert "\n" not in message and len(message) < 200, message
    else:
        assert len(cid.raw) <= MAX_CID_BYTES and len(cid.digest) <= MAX_DIGEST_BYTES
        assert CID.parse(str(cid)) == cid
    try:
        parse_cid(text)
    except UsageError as e:
        assert "\n" not in str(e) and len(str(e)) < 300, str(e)
    # a 1,000,000-character base58 "CID" took minutes before its length was bounded
    assert time.monotonic() - started < 0.5


@given(st.binary(max_size=MAX_CID_BYTES + 40))
@fuzz_settings(300)
def test_any_bytes_are_a_bounded_cid_or_a_value_error(raw: bytes) -> None:
    try:
        cid = CID(raw)
    except ValueError as e:
        assert "\n" not in str(e) and len(str(e)) < 200
    else:
        assert len(cid.raw) <= MAX_CID_BYTES and len(cid.digest) <= MAX_DIGEST_BYTES
        assert CID.parse(str(cid)) == cid


@pytest.mark.parametrize("size", [MAX_DIGEST_BYTES + 1, 511, 100_000])
def test_identity_cids_over_the_digest_limit_are_refused_in_every_form(size: int) -> None:
    raw = b"\x01\x55\x00" + varint(size) + b"x" * size
    with pytest.raises(ValueError, match="limit"):
        CID(raw)
    texts = in_every_base(raw) if size < 1000 else ["f" + raw.hex(), "z" + "2" * size]
    for text in texts:
        with pytest.raises(ValueError, match="limit"):
            CID.parse(text)
    at_limit = CID(b"\x01\x55\x00" + varint(MAX_DIGEST_BYTES) + b"x" * MAX_DIGEST_BYTES)
    assert at_limit.matches(b"x" * MAX_DIGEST_BYTES)


def test_multibase_values_are_bounded_before_decoding() -> None:
    started = time.monotonic()
    for prefix, digit in [("z", "2"), ("k", "1"), ("f", "0"), ("b", "a"), ("m", "A")]:
        with pytest.raises(ValueError, match="longer than"):
            multibase_decode(prefix + digit * 4_000_000)
    assert time.monotonic() - started < 1
    assert multibase_decode("z" + b58encode(b"\x01" * 4096)) == b"\x01" * 4096
    with pytest.raises(ValueError, match="over the 4096-byte limit"):
        multibase_decode("f" + "01" * 4097)
    with pytest.raises(ValueError, match="base64url"):
        multibase_decode("uab+c")  # the stdlib would skip the "+" without a word


@given(st.sampled_from(["z" + "2" * 300_000, "k" + "z" * 200_000, "f" + "00" * 10_000,
                        "bafy" + "a" * 5000]),
       st.sampled_from(["https://mizu.stream/v0/view-raw/", "https://mizu.stream/message/",
                        "https://mizu.stream/update/", "ipfs://"]),
       st.sampled_from(["", "/a/b"]))
@fuzz_settings(12)
def test_an_iri_with_a_hostile_cid_is_not_a_mizu_iri(cid_text: str, base: str, path: str) -> None:
    started = time.monotonic()
    iri = base + cid_text + path
    assert parse_static(iri) is None
    assert normalise_iri(iri) == iri  # any other IRI: unchanged
    assert time.monotonic() - started < 0.5


def test_a_message_with_a_hostile_link_fails_quickly_in_one_line() -> None:
    from mizu_core.errors import InvalidMessage
    from mizu_core.message import codec
    from mizu_core.message.validate import validate_message

    started = time.monotonic()
    with pytest.raises(InvalidMessage) as caught:
        validate_message({"$prev": {"$ref": VIEW_RAW + "z" + "2" * 200_000}})
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidMessage) as caught:
        codec.from_json({"link": {"/": "z" + "2" * 200_000}})
    assert "\n" not in str(caught.value)
    assert time.monotonic() - started < 1  # 13 s each before CID text was bounded
