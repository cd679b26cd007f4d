"""The C speedups give exactly what the pure-Python code gives (which stays the fallback)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mizu_core import speedups
from mizu_core.repo import index, kv
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
    assert native.index_keys(triples) == index._index_keys(triples)
    assert native.index_keys([]) == index._index_keys([]) == ([], [], [])


@requires_native
@pytest.mark.parametrize("bad", [[(1, 2)], [(1, 2, -3)], [(1, 2, 1 << 64)], [(1, 2, "3")], [[1, 2, 3]]])
def test_index_keys_reject_what_is_not_an_id_triple(bad: list) -> None:  # type: ignore[type-arg]
    with pytest.raises((TypeError, OverflowError)):
        native.index_keys(bad)


@requires_native
def test_key_reader_matches_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    ids = (1, 2, 3, 1 << 63, (1 << 64) - 1)
    keys = sorted({kv.ID_KEY.pack(*(rng.choice(ids) for _ in range(3))) for _ in range(300)})
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
    a, b, c = (kv.ID_KEY.pack(1, 2, n) for n in (3, 4, 5))
    other = kv.ID_KEY.pack(2, 0, 0)
    stream = native.IdStream(iter([a, b, other, c]), a[:8])
    assert list(stream) == [(1, 2, 3), (1, 2, 4)] and list(stream) == []  # and stays ended
    with pytest.raises(ValueError, match="index key of 3 bytes"):
        list(native.IdStream([b"abc"], b""))
    with pytest.raises(TypeError):
        list(native.IdStream(["text"], b""))
