"""The key-value layer's prefix reader, on LMDB and on the memory twin: every edge of a scan."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    # Empty results, scans that run to the table's end (0xff prefixes), the empty prefix,
    # and prefixes whose matches number exactly the short limit or one more.
    prefixes = [b"", b"a", b"\xff", b"\xff\xff", b"\xff\xff\xff", b"a\xff", b"z", b"\x00"]
    prefixes += sorted({k[:2] for k in keys}) + keys[::7]
    with store.reader() as txn:
        for short in (1, 2, 3, 64):
            read = txn.key_reader("spo", bytes, short)
            for prefix in prefixes:
                found = read(prefix)
                want = [k for k in keys if k.startswith(prefix)]
                assert list(found) == want, (short, prefix)
                assert isinstance(found, list) == (len(want) < short), (short, prefix)
