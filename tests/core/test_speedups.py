"""The C speedups give exactly what the pure-Python code gives (which stays the fallback)."""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mizu_core import speedups, terms
from mizu_core.errors import InvalidMessage
from mizu_core.message import cid as cid_module
from mizu_core.message import codec, triples, validate
from mizu_core.message.cid import CID
from mizu_core.repo import index, kv, tables
from mizu_core.speedups import native

requires_native = pytest.mark.skipif(native is None, reason="not built, or MIZU_PURE_PYTHON is set")


def test_the_speedups_are_built() -> None:
    # CI has a C compiler: there, the C code must be what the other tests run.
    if speedups.disabled:
        pytest.skip("MIZU_PURE_PYTHON is set")
    assert native is not None, "mizu_core._speedups was not built (is a C compiler installed?)"


@requires_native
def test_index_keys_match_python() -> None:
    rng = random.Random(7)
    big = (1 << 64) - 1
    triples = [(rng.choice((1, 2, 3, 255, 256, big)), rng.randrange(1, 6), rng.randrange(1 << 40))
               for _ in range(2_000)] + [(big, big, big), (1, 1, 1), (1, 1, 1)]
    rows = b"".join(index.ROW.pack(*t) for t in triples)
    assert native.index_keys(rows, {}) == index._index_keys(rows, {})
    replaced = {1: 7, 3: 1, big: 2, 4: 9}  # ids a write gave, mapped to those the store had
    assert native.index_keys(rows, replaced) == index._index_keys(rows, replaced)
    spo = native.index_keys(rows, replaced)[0]
    keys = [k for k, _ in native.KeyPairs(spo)]
    assert keys == [k for k, _ in index._key_pairs(spo)] == sorted(keys)
    assert index.ID_KEY.pack(2, 2, 2) in keys and index.ID_KEY.pack(7, 7, 7) in keys
    assert native.index_keys(b"", {}) == index._index_keys(b"", {}) == (b"", b"", b"", {})


@requires_native
def test_key_pairs_hand_out_each_key_even_to_a_consumer_that_keeps_the_pairs() -> None:
    keys = b"".join(index.ID_KEY.pack(i, i, i) for i in range(5))
    kept = list(native.KeyPairs(keys))  # a list keeps every pair: none may be reused
    assert kept == [(index.ID_KEY.pack(i, i, i), b"") for i in range(5)]
    streamed = [k for k, _ in native.KeyPairs(keys)]  # each pair let go: reused
    assert streamed == [index.ID_KEY.pack(i, i, i) for i in range(5)]
    for bad in ((keys[:23],), (bytearray(keys),), (keys, 0)):
        with pytest.raises((TypeError, ValueError)):
            native.KeyPairs(*bad)


@requires_native
@pytest.mark.parametrize("bad", [(b"x" * 23, {}), (b"x" * 24, {-1: 2}), (b"x" * 24, {1: "2"}),
                                 ([(1, 2, 3)], {})])
def test_index_keys_reject_what_is_not_id_rows(bad: tuple) -> None:  # type: ignore[type-arg]
    with pytest.raises((TypeError, ValueError, OverflowError)):
        native.index_keys(*bad)


@requires_native
def test_key_reader_matches_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    ids = (1, 2, 3, 1 << 63, (1 << 64) - 1)
    keys = sorted({tables.ID_KEY.pack(*(rng.choice(ids) for _ in range(3))) for _ in range(300)})
    store = kv.LmdbStore(str(tmp_path), create=True)
    with store.writer() as txn:
        txn.put_many("spo", [(k, b"") for k in keys])
    prefixes = [b"", b"\xff", b"\xff" * 8, b"\x00" * 7, b"\x00" * 9] + [k[:n] for k in keys[::5] for n in (8, 16, 24)]
    with store.reader() as txn:
        for short in (1, 2, 3, 64):
            native_read = txn.key_reader("spo", kv.unpack_ids, short)
            assert type(native_read) is native.KeyReader
            with monkeypatch.context() as m:
                m.setattr(kv, "native", None)
                python_read = txn.key_reader("spo", kv.unpack_ids, short)
            for prefix in prefixes:
                found, expected = native_read(prefix), python_read(prefix)
                assert type(found) is type(expected), (short, prefix)  # a list, or a stream
                rows = list(found)
                assert rows == list(expected), (short, prefix)
                assert rows == [kv.unpack_ids(k) for k in keys if k.startswith(prefix)]
        with pytest.raises(TypeError):
            native_read("not bytes")  # type: ignore[arg-type]
    store.close()


@requires_native
def test_id_stream_ends_at_the_first_key_without_the_prefix() -> None:
    a, b, c = (tables.ID_KEY.pack(1, 2, n) for n in (3, 4, 5))
    other = tables.ID_KEY.pack(2, 0, 0)
    stream = native.IdStream(iter([a, b, other, c]), a[:8])
    assert list(stream) == [(1, 2, 3), (1, 2, 4)] and list(stream) == []  # and stays ended
    with pytest.raises(ValueError, match="index key of 3 bytes"):
        list(native.IdStream([b"abc"], b""))
    with pytest.raises(TypeError):
        list(native.IdStream(["text"], b""))


# --- the C encoder against codec.py's: every byte, and every refusal ---------------------

_CID = CID.for_block(b"x")
_scalars = (st.text() | st.integers(min_value=-(2**64), max_value=2**64 - 1) | st.booleans()
            | st.none() | st.binary(max_size=40) | st.just(_CID)
            | st.floats(allow_nan=False, allow_infinity=False))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=40)


@requires_native
@settings(max_examples=400, deadline=None)
@given(_values)
def test_encoder_writes_what_python_writes(value: object) -> None:
    encode = native.Encoder(CID, InvalidMessage)
    assert encode(value) == codec._encode_python(value)
    assert encode(value, 7) == codec._encode_python(value, 7)


def _nested(depth: int) -> object:
    value: object = 1
    for n in range(depth):
        value = [value] if n % 2 else {"k": value}
    return value


@requires_native
@pytest.mark.parametrize("bad", [
    2**64, -(2**64) - 1, float("nan"), float("inf"), {1: 2}, {"a": [{"b": (1,)}]},
    {"a": {1.5: 1}}, object(), True.__class__.__mro__, _nested(257), "\ud800", {"\udfff": 1},
])
def test_encoder_refuses_what_python_refuses(bad: object) -> None:
    encode = native.Encoder(CID, InvalidMessage)
    with pytest.raises(Exception) as python:
        codec._encode_python(bad)
    with pytest.raises(python.type) as c:
        encode(bad)
    assert str(c.value) == str(python.value)


@requires_native
def test_encoder_depth_limit_is_python_s() -> None:
    encode = native.Encoder(CID, InvalidMessage)
    assert encode(_nested(256)) == codec._encode_python(_nested(256))
    assert codec.encode(_nested(256)) == codec._encode_python(_nested(256))


@requires_native
@pytest.mark.parametrize("limit", [3, 1 << 16])
def test_interning_many_triples_matches_one_at_a_time(limit: int) -> None:
    rng = random.Random(5)
    pool = [terms.literal(n) for n in range(40)] + [terms.iri("x" * 300), terms.iri("y" * 300)]

    def term() -> bytes:  # the same object again, or an equal one (C finds objects seen by address)
        t = rng.choice(pool)
        return t if rng.random() < 0.5 else bytes(bytearray(t))

    batches = [[(term(), term(), term()) for _ in range(rng.randrange(0, 30))] for _ in range(6)]

    def run(use_native: bool) -> tuple[list[tuple[int, ...]], dict[int, bytes]]:
        store = kv.MemoryStore()
        with store.writer() as txn, pytest.MonkeyPatch.context() as m:
            m.setattr(index, "native", native if use_native else None)
            m.setattr(index.TermDictionary, "CACHE_LIMIT", limit)
            dictionary, out = index.TermDictionary(txn), bytearray()
            for n, batch in enumerate(batches):
                half = len(batch) // 2  # two records' terms
                dictionary.intern_terms([[t for triple in part for t in triple]
                                         for part in (batch[:half], batch[half:])], out)
                if n == 3:
                    dictionary.settle()
            rows = list(index.ROW.iter_unpack(out))
            ids = {i for row in rows for i in row}
            return rows, {i: dictionary.term(i) for i in ids}

    rows, names = run(True)
    assert (rows, names) == run(False)
    assert [tuple(names[i] for i in row) for row in rows] == [t for batch in batches for t in batch]
    out = bytearray(b"kept")
    with pytest.raises(TypeError):
        native.intern_terms([[b"x", b"y", b"z"], [b"a", "b", b"c"]], out, {}, {}, [], 1, 10, 10)
    assert out == b"kept"  # a failed call appends nothing
    with pytest.raises(ValueError, match="whole triples"):
        native.intern_terms([[b"a", b"b"]], out, {}, {}, [], 1, 10, 10)


@requires_native
def test_interning_more_terms_than_the_seen_table_holds() -> None:
    many = [b"S%d" % (i // 3) for i in range(3 * 40_000)]  # 40,000 distinct, each thrice
    ids: dict[bytes, int] = {}
    new: dict[bytes, int] = {}
    out = bytearray()
    native.intern_terms([many, many[:30]], out, ids, new, [], 1, 1 << 20, 300)
    assert list(struct.unpack(f"={len(many) + 30}Q", out)) == [new[t] for t in many + many[:30]]
    assert sorted(new.values()) == list(range(1, 40_001))


@requires_native
@given(st.binary(max_size=400))
def test_term_hash_is_hashlib_blake2b(term: bytes) -> None:
    assert native.term_hash(term) == index._term_hash(term)


@requires_native
def test_term_rows_match_python() -> None:
    rng = random.Random(11)
    new = {rng.randbytes(rng.randrange(300)): i for i in range(1, 3_000)}
    skip = {i: 1 for i in range(5, 3_000, 7)}
    assert native.term_claims(new) == index._term_claims(new)
    # two terms whose hashes share the 33 bits the radix sort orders by, the later first
    alike = {b"t66418": 1, b"t44409": 2, **{b"u%d" % i: i for i in range(3, 500)}}
    assert index._term_hash(b"t66418")[:4] == index._term_hash(b"t44409")[:4]
    assert native.term_claims(alike) == index._term_claims(alike)
    assert native.term_rows(new, skip) == index._term_rows(new, skip)
    assert native.term_rows(new, {}) == index._term_rows(new, {})
    with pytest.raises(TypeError):
        native.term_claims({"a": 1})


@requires_native
@given(st.binary(max_size=80))
def test_base32_matches_python(data: bytes) -> None:
    assert native.base32(data) == cid_module._b32encode_lower(data)
    assert native.base32(data) == base64.b32encode(data).decode().rstrip("=").lower()


_with_zeros = st.tuples(st.integers(0, 3), st.binary(max_size=80)).map(lambda z: b"\0" * z[0] + z[1])


@requires_native
@given(_with_zeros)
def test_base58_matches_python(data: bytes) -> None:
    assert native.b58encode(data) == cid_module._b58encode(data)


# --- base58btc decoding by libipld (the C's was slower) against cid.py's -----------------

def test_base58_is_decoded_by_libipld() -> None:
    if speedups.disabled:
        pytest.skip("MIZU_PURE_PYTHON is set")
    import libipld

    assert cid_module.b58decode is cid_module._b58decode_libipld
    assert cid_module.b58decode("2") == b"\x01"
    assert cid_module._decode_multibase is libipld.decode_multibase


@given(_with_zeros)
def test_base58_decoding_by_libipld_is_python_s(data: bytes) -> None:
    text = cid_module._b58encode(data)
    assert cid_module._b58decode_libipld(text) == cid_module._b58decode(text) == data


@given(st.text(cid_module._B58_ALPHABET + "0OIl +/=é\x00\ud800", max_size=60))
def test_base58_decoding_by_libipld_takes_and_refuses_what_python_does(text: str) -> None:
    def outcome(decode: Callable[[str], bytes]) -> object:
        try:
            return decode(text)
        except ValueError as e:
            return str(e)

    assert outcome(cid_module._b58decode_libipld) == outcome(cid_module._b58decode)


@pytest.mark.parametrize("bad", ["0", "abcO", "I", "l1", "é", "z\x00"])
def test_base58_refuses_what_python_refuses(bad: str) -> None:
    with pytest.raises(ValueError) as python:
        cid_module._b58decode(bad)
    with pytest.raises(ValueError) as library:
        cid_module._b58decode_libipld(bad)
    assert str(library.value) == str(python.value)


# --- the C triple mapping against message/triples.py's ------------------------------------

_MESSAGE_CID = "bafyreihedihs5xnwh52scar3h2irbzvb5cqjjsf4axjhcbntqowjlhthya"
_pointers = st.sampled_from([
    "#", "#/a", "#/tags/1", "#/o/k", "#/missing/x", f"mizu://{_MESSAGE_CID}",
    f"https://mizu.stream/message/{_MESSAGE_CID}/a", "https://example.org/x", "not a uri",
])
_keys = st.sampled_from(["a", "tags", "o", "k", "$prev", "$include", "$schema", "$$raw",
                         "@where", "@construct", "a b/c", "ü", ""])
_message_values = st.recursive(
    _scalars | _pointers | st.builds(lambda ref: {"$ref": ref}, _pointers),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=30,
)


@requires_native
@settings(max_examples=500, deadline=None)
@given(st.dictionaries(_keys, _message_values, max_size=6))
def test_triple_mapping_is_python_s(message: dict) -> None:  # type: ignore[type-arg]
    with pytest.MonkeyPatch.context() as m:
        m.setattr(triples, "native", None)
        python = triples.message_triples(_MESSAGE_CID, message)
    assert triples.message_triples(_MESSAGE_CID, message) == python


@requires_native
@pytest.mark.parametrize("bad", [{"a": (1, 2)}, {"a": [{"b": {1, 2}}]}, {"a": {3: "x"}}])
def test_triple_mapping_refuses_what_python_refuses(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(TypeError):
        triples.message_triples(_MESSAGE_CID, bad)


def _reserved_in(value: object, depth: int = 0) -> bool:
    """What `has_reserved` answers, walked in Python."""
    if depth > codec.MAX_DEPTH:
        return True
    if type(value) is list:
        return any(_reserved_in(v, depth + 1) for v in value if type(v) in (dict, list))
    if type(value) is dict:
        return any(type(k) is not str or k.startswith("$")
                   or (type(v) in (dict, list) and _reserved_in(v, depth + 1))
                   for k, v in value.items())
    return False


@requires_native
@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_keys, _message_values, max_size=6))
def test_messages_without_reserved_fields_skip_the_walk_only(message: dict) -> None:  # type: ignore[type-arg]
    assert native.has_reserved(message) == _reserved_in(message)

    def outcome(use_native: bool) -> object:
        with pytest.MonkeyPatch.context() as m:
            m.setattr(validate, "native", native if use_native else None)
            try:
                return validate.validate_message(message)
            except InvalidMessage as e:
                return str(e)

    assert outcome(True) == outcome(False)


@requires_native
def test_has_reserved_sees_keys_that_are_not_text_and_deep_nesting() -> None:
    assert native.has_reserved({"a": [{1: "x"}]})
    deep: list[object] = []
    for _ in range(codec.MAX_DEPTH + 2):
        deep = [deep]
    assert native.has_reserved({"a": deep}) and not native.has_reserved({"a": [[[]]]})
    assert not native.has_reserved("text") and not native.has_reserved({})


@requires_native
def test_bloom_probe_is_python_s() -> None:
    rng = random.Random(3)
    hashes = [rng.randbytes(16) for _ in range(3_000)]
    batches = [[(h, b"") for h in sorted(rng.sample(hashes, 400))] for _ in range(5)]
    blooms = [bytearray(1 << 9), bytearray(1 << 9)]  # small: false positives happen too
    for batch in batches:
        assert native.bloom_probe(blooms[0], batch) == index._bloom_probe(blooms[1], batch)
    assert blooms[0] == blooms[1]
    assert index._bloom_probe(bytearray(1 << 16), batches[0]) == []
    assert native.bloom_probe(blooms[0], batches[0]) == list(range(400))  # all claimed before
    with pytest.raises(ValueError):
        native.bloom_probe(bytearray(3), batches[0])
