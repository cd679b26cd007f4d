"""The key-value layer's prefix reader, on LMDB and on the memory twin: every edge of a scan."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from mizu_core.errors import StoreError
from mizu_core.repo.kv import LmdbStore, MemoryStore, Store


@pytest.fixture(params=["memory", "lmdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = MemoryStore() if request.param == "memory" else LmdbStore(str(tmp_path), create=True)
    yield opened
    opened.close()


def test_key_reader_reads_every_prefix_exactly(store: Store) -> None:
    rng = random.Random(1)
    keys = sorted({bytes((rng.choice(b"ab\xff"), rng.choice(b"abc\xff"), rng.randrange(256)))
                   for _ in range(600)})
    with store.writer() as txn:
        txn.put_many("spo", [(k, b"") for k in keys])
    # Empty results, scans that run to the table's end (0xff prefixes), the empty prefix.
    prefixes = [b"", b"a", b"\xff", b"\xff\xff", b"\xff\xff\xff", b"a\xff", b"z", b"\x00"]
    prefixes += sorted({k[:2] for k in keys}) + keys[::7]
    wanted = {prefix: [k for k in keys if k.startswith(prefix)] for prefix in prefixes}
    # Scan limits at which some prefix matches exactly that many keys, or one more: where
    # a read turns from a list into a stream.
    counts = {len(want) for want in wanted.values() if want}
    shorts = sorted(counts | {c - 1 for c in counts if c > 1} | {64})
    with store.reader() as txn:
        for short in shorts:
            read = txn.key_reader("spo", bytes, short)
            for prefix, want in wanted.items():
                found = read(prefix)
                assert list(found) == want, (short, prefix)
                assert isinstance(found, list) == (len(want) < short), (short, prefix)


def test_put_many_keeps_existing_values_and_appends_only_in_order(store: Store) -> None:
    with store.writer() as txn:
        assert txn.put_many("terms", [(b"b", b"1"), (b"d", b"1")]) == 2
        # put-if-absent: b keeps its value; the count is of what was written
        assert txn.put_many("terms", [(b"a", b"2"), (b"b", b"2"), (b"c", b"2")], overwrite=False) == 2
        assert txn.get("terms", b"b") == b"1" and txn.get("terms", b"a") == b"2"
        # an append writes only keys past the table's last (d): c is skipped, as LMDB does
        assert txn.put_many("terms", [(b"c", b"3"), (b"e", b"3"), (b"f", b"3")], append=True) == 2
        assert txn.get("terms", b"c") == b"2" and txn.get("terms", b"f") == b"3"
        # a and f are there already: only aa is written, and counted
        assert txn.put_many("terms", [(b"a", b"4"), (b"aa", b"4"), (b"f", b"4")], overwrite=False) == 1
        assert txn.get("terms", b"aa") == b"4" and txn.get("terms", b"a") == b"2"
    with store.reader() as txn:
        assert [k for k, _ in txn.scan("terms")] == [b"a", b"aa", b"b", b"c", b"d", b"e", b"f"]


def test_get_many_gives_the_keys_present_in_the_order_asked(store: Store) -> None:
    with store.writer() as txn:
        txn.put_many("terms", [(b"a", b"1"), (b"c", b"3"), (b"e", b"5")])
        assert txn.get_many("terms", [b"a", b"b", b"c", b"e", b"f"]) == [
            (b"a", b"1"), (b"c", b"3"), (b"e", b"5")]
        assert txn.get_many("terms", [b"e", b"a"]) == [(b"e", b"5"), (b"a", b"1")]
    with store.reader() as txn:
        assert txn.get_many("terms", []) == [] and txn.get_many("terms", [b"c"]) == [(b"c", b"3")]


def test_full_disks_and_maps_are_said_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lmdb

    from mizu_core.repo import kv

    store = LmdbStore(str(tmp_path / ".mizu" / "store"), create=True)
    full = f"no space left on the device holding {tmp_path / '.mizu'}"
    assert str(store.failed("commit failed", lmdb.DiskError("mdb_txn_commit: No space left on device"))) == full
    quota = lmdb.Error(f"mdb_txn_commit: {os.strerror(errno.EDQUOT)}")
    assert str(store.failed("commit failed", quota)) == full + " (disk quota exceeded)"
    mapped = store.failed("x", lmdb.MapFullError("mdb_put: MDB_MAP_FULL"))
    assert str(mapped).startswith("the store is full") and mapped.hint and "store.map-size" in mapped.hint
    # A short write (how LMDB ends a commit on a full disk) is EIO: full only if the device is.
    eio = lmdb.Error("mdb_txn_commit: Input/output error")
    monkeypatch.setattr(kv, "room", lambda path: 4096)
    assert str(store.failed("commit failed", eio)) == full
    monkeypatch.setattr(kv, "room", lambda path: 1 << 40)
    assert str(store.failed("commit failed", eio)) == "commit failed: mdb_txn_commit: Input/output error"
    store.close()


def test_a_map_too_large_for_the_address_space_says_what_to_lower(tmp_path: Path) -> None:
    LmdbStore(str(tmp_path), create=True).close()
    with pytest.raises(StoreError) as caught:
        LmdbStore(str(tmp_path), map_size=1 << 62)
    assert "store.map-size = 4611686018427387904" in str(caught.value)
    assert caught.value.hint == "lower it: mizu config set store.map-size BYTES"
