"""Ordered key-value tables with transactions: LMDB on disk, and an in-memory twin.

Everything above this module (blocks, triple index, log, pins) is written against `Txn`,
so the memory twin runs the same code as the real store in fast core tests. LMDB gives
one writer at a time across processes and readers that never wait (MVCC).
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from mizu_core.errors import StoreError
from mizu_core.repo.disk import FULL_DISK, NEARLY_FULL, no_space, room
from mizu_core.repo.process_memory import mapped_ranges, release_ranges
from mizu_core.repo.tables import TABLES, unpack_ids
from mizu_core.speedups import native

if TYPE_CHECKING:
    from sortedcontainers import SortedDict


class Txn(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def scan(
        self, table: str, start: bytes = b"", stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]: ...

    def key_reader(
        self, table: str, transform: Callable[[bytes], Any], short: int
    ) -> Callable[[bytes], Iterable[Any]]:
        """read(prefix): the keys that start with `prefix`, in order, each passed through
        `transform` (a key unpacker, say) as it is read. A list when there are fewer than
        `short` of them (most scans of a query); else they stream (an iterator)."""
        ...

    def getter(self, table: str) -> Callable[[bytes], bytes | None]:
        """`get` on one table, bound once (for lookups in hot loops)."""
        ...

    def get_many(self, table: str, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        """The (key, value) of each of `keys` that the table has, in the order given (faster
        for sorted keys)."""
        ...

    def scan_keys(self, table: str, start: bytes, stop: bytes | None) -> Iterator[bytes]:
        """Keys from `start` (inclusive) to `stop` (exclusive): `scan` without the values."""
        ...

    def count(self, table: str) -> int: ...

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        """Store `value`; with overwrite=False keep an existing value and return False."""
        ...

    def put_many(
        self, table: str, items: Iterable[tuple[bytes, bytes]], overwrite: bool = True,
        append: bool = False,
    ) -> int:
        """Store many items (faster sorted); with overwrite=False keep existing values. With
        `append` the keys must be sorted and greater than any in the table. Returns how
        many were stored."""
        ...

    def delete(self, table: str, key: bytes) -> bool: ...


class Store(Protocol):
    def reader(self) -> Any: ...  # context manager yielding a Txn

    def writer(self) -> Any: ...

    def release_pages(self) -> None: ...

    def close(self) -> None: ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


class LmdbTxn:
    __slots__ = ("_dbs", "_txn")

    def __init__(self, txn: Any, dbs: dict[str, Any]) -> None:
        self._txn = txn
        self._dbs = dbs

    def get(self, table: str, key: bytes) -> bytes | None:
        value: bytes | None = self._txn.get(key, db=self._dbs[table])
        return value

    def scan(
        self, table: str, start: bytes = b"", stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        cursor = self._txn.cursor(db=self._dbs[table])
        if not reverse:
            if not cursor.set_range(start):
                return
            for key, value in cursor:
                if stop is not None and key >= stop:
                    return
                yield key, value
            return
        positioned = cursor.set_range(stop) if stop is not None else cursor.last()
        if stop is not None:
            positioned = cursor.prev() if positioned else cursor.last()
        while positioned:
            key = cursor.key()
            if key < start:
                return
            yield key, cursor.value()
            positioned = cursor.prev()

    def key_reader(
        self, table: str, transform: Callable[[bytes], Any], short: int
    ) -> Callable[[bytes], Iterable[Any]]:
        # The query engine's many short scans share one cursor per table: setting one up
        # costs more than the scan. Safe because nothing runs between positioning and reading.
        cursor = self._txn.cursor(db=self._dbs[table])
        set_range, key_at, step, scan_keys = cursor.set_range, cursor.key, cursor.next, self.scan_keys

        def more(found: list[Any], key: bytes, prefix: bytes) -> Iterable[Any]:
            """A long scan: `found` so far, then the rest streamed."""
            rest = scan_keys(table, key + b"\0", prefix_end(prefix))
            return itertools.chain(found, map(transform, rest))

        if native is not None and transform is unpack_ids:
            return native.KeyReader(cursor, self._native_more(table), short)  # type: ignore[no-any-return]

        def read(prefix: bytes) -> Iterable[Any]:
            # key()/next() rather than an iterator: most scans find one or two keys, and
            # setting up an iterator costs more than they do (measured).
            found: list[Any] = []
            if set_range(prefix):
                key = key_at()
                while key.startswith(prefix):
                    found.append(transform(key))
                    if len(found) == short:
                        return more(found, key, prefix)
                    if not step():
                        break
                    key = key_at()
            return found

        return read

    def _native_more(self, table: str) -> Callable[[list[Any], bytes, bytes], Iterable[Any]]:
        """The C reader's long scans: what it found, then the rest from a cursor of their own."""
        assert native is not None

        def more(found: list[Any], key: bytes, prefix: bytes) -> Iterable[Any]:
            cursor = self._txn.cursor(db=self._dbs[table])
            keys = cursor.iternext(values=False) if cursor.set_range(key + b"\0") else iter(())
            return itertools.chain(found, native.IdStream(keys, prefix))

        return more

    def getter(self, table: str) -> Callable[[bytes], bytes | None]:
        return functools.partial(self._txn.get, db=self._dbs[table])

    def scan_keys(self, table: str, start: bytes, stop: bytes | None) -> Iterator[bytes]:
        cursor = self._txn.cursor(db=self._dbs[table])
        if not cursor.set_range(start):
            return
        if stop is None:
            yield from cursor.iternext(values=False)
            return
        for key in cursor.iternext(values=False):
            if key >= stop:
                return
            yield key

    def count(self, table: str) -> int:
        entries: int = self._txn.stat(self._dbs[table])["entries"]
        return entries

    def get_many(self, table: str, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = self._txn.cursor(db=self._dbs[table]).getmulti(keys)
        return found

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        stored: bool = self._txn.put(key, value, overwrite=overwrite, db=self._dbs[table])
        return stored

    def put_many(
        self, table: str, items: Iterable[tuple[bytes, bytes]], overwrite: bool = True,
        append: bool = False,
    ) -> int:
        cursor = self._txn.cursor(db=self._dbs[table])
        added: int = cursor.putmulti(items, overwrite=overwrite, append=append)[1]
        return added

    def delete(self, table: str, key: bytes) -> bool:
        deleted: bool = self._txn.delete(key, db=self._dbs[table])
        return deleted


class LmdbStore:
    """The LMDB environment under `.mizu/store/`.

    It opens read-only and reopens writable at the first write: py-lmdb can only open
    named tables of a writable environment inside a write transaction, which would make
    every reader wait for a running writer.
    """

    def __init__(self, path: str, map_size: int = 1 << 36, create: bool = False) -> None:
        import lmdb

        self._lmdb = lmdb
        self.path = path
        self.map_size = map_size
        if create:
            os.makedirs(path, exist_ok=True)
        self._open(readonly=not create)

    def _open(self, readonly: bool) -> None:
        lmdb = self._lmdb
        self._mapped: list[tuple[int, int]] | None = None
        try:
            self.env = lmdb.open(
                self.path, map_size=self.map_size, max_dbs=len(TABLES) + 2, subdir=True,
                readonly=readonly, lock=True, max_readers=512, create=not readonly,
            )
            self.readonly = readonly
            self.env.reader_check()  # free the slots of readers that were killed
            self.dbs = {name: self.env.open_db(name.encode(), create=not readonly) for name in TABLES}
        except lmdb.NotFoundError:
            if not readonly:
                raise
            self.env.close()
            self._open(readonly=False)  # a store made by an older mizu: add the new tables
        except lmdb.Error as e:
            if isinstance(e, lmdb.MemoryError):  # no room in the address space for the map
                raise StoreError(
                    f"cannot open store at {self.path}: {e} (store.map-size = {self.map_size} bytes)",
                    hint="lower it: mizu config set store.map-size BYTES",
                ) from None
            raise self.failed(f"cannot open store at {self.path}", e) from None

    @contextmanager
    def reader(self) -> Iterator[LmdbTxn]:
        with self.env.begin(write=False, buffers=False) as txn:
            yield LmdbTxn(txn, self.dbs)

    @contextmanager
    def writer(self) -> Iterator[LmdbTxn]:
        if self.readonly:
            self.env.close()
            self._open(readonly=False)
        try:
            txn = self.env.begin(write=True)
        except self._lmdb.Error as e:
            raise self.failed("cannot write to the store", e) from None
        try:
            yield LmdbTxn(txn, self.dbs)
        except (self._lmdb.MapFullError, self._lmdb.DiskError) as e:
            txn.abort()
            raise self.failed("cannot write to the store", e) from None
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except self._lmdb.Error as e:
            raise self.failed("commit failed", e) from None

    def failed(self, doing: str, error: Exception) -> StoreError:
        """The StoreError for an LMDB error while `doing`: a full map or a full disk said
        as such (the one place that says it: `no_space` words the disk)."""
        if isinstance(error, self._lmdb.MapFullError):
            return StoreError(
                f"the store is full (store.map-size = {self.map_size} bytes)",
                hint="raise it: mizu config set store.map-size BYTES",
            )
        text = str(error)
        full = isinstance(error, self._lmdb.DiskError) or text.endswith(FULL_DISK)
        # LMDB reports a short write, which is how a full disk ends a commit, as EIO: a
        # device left with (next to) no room says which it was.
        if full or (text.endswith(os.strerror(errno.EIO)) and room(self.path) < NEARLY_FULL):
            return no_space(os.path.dirname(self.path), quota=text.endswith(os.strerror(errno.EDQUOT)))
        return StoreError(f"{doing}: {error}")

    def release_pages(self) -> None:
        """Drop this process's mapping of the store's pages (they stay in the page cache).

        Reading a large file maps every page it touches, and Linux maps up to 16 cached
        neighbours of each (fault-around); without this they count in the process's
        resident memory until it ends. Safe because values are copied out of the map
        (buffers=False) and writes never go through it (no MDB_WRITEMAP). Cheap enough
        (tens of microseconds) to call every few dozen writes.
        """
        if self._mapped is None:  # the map stays where it is until the store is reopened
            self._mapped = mapped_ranges(os.path.join(self.path, "data.mdb"))
        release_ranges(self._mapped)

    def close(self) -> None:
        self.env.close()


class MemoryTxn:
    """A transaction over MemoryStore tables; writes are undone from a journal on abort."""

    def __init__(self, tables: dict[str, SortedDict], writable: bool) -> None:
        self._tables = tables
        self._journal: list[tuple[str, bytes, bytes | None]] | None = [] if writable else None

    def get(self, table: str, key: bytes) -> bytes | None:
        value: bytes | None = self._tables[table].get(key)
        return value

    def get_many(self, table: str, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        data = self._tables[table]
        return [(key, data[key]) for key in keys if key in data]

    def scan(
        self, table: str, start: bytes = b"", stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        data = self._tables[table]
        keys = list(data.irange(start, stop, inclusive=(True, False), reverse=reverse))
        for key in keys:
            if key in data:
                yield key, data[key]

    def key_reader(
        self, table: str, transform: Callable[[bytes], Any], short: int
    ) -> Callable[[bytes], Iterable[Any]]:
        data = self._tables[table]

        def read(prefix: bytes) -> Iterable[Any]:
            keys = data.irange(prefix, prefix_end(prefix), inclusive=(True, False))
            found = [transform(k) for k in itertools.islice(keys, short)]
            return found if len(found) < short else itertools.chain(found, map(transform, keys))

        return read

    def getter(self, table: str) -> Callable[[bytes], bytes | None]:
        return self._tables[table].get  # type: ignore[no-any-return]

    def scan_keys(self, table: str, start: bytes, stop: bytes | None) -> Iterator[bytes]:
        return (key for key, _ in self.scan(table, start, stop))

    def count(self, table: str) -> int:
        return len(self._tables[table])

    def put(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        assert self._journal is not None, "write in a read transaction"
        data = self._tables[table]
        old = data.get(key)
        if old is not None and not overwrite:
            return False
        self._journal.append((table, key, old))
        data[key] = bytes(value)
        return True

    def put_many(
        self, table: str, items: Iterable[tuple[bytes, bytes]], overwrite: bool = True,
        append: bool = False,
    ) -> int:
        data, added = self._tables[table], 0
        for key, value in items:
            if append and data and key <= data.peekitem(-1)[0]:
                continue  # as LMDB: an append out of order is not written
            added += self.put(table, key, value, overwrite)
        return added

    def delete(self, table: str, key: bytes) -> bool:
        assert self._journal is not None, "write in a read transaction"
        data = self._tables[table]
        if key not in data:
            return False
        self._journal.append((table, key, data.pop(key)))
        return True

    def rollback(self) -> None:
        assert self._journal is not None
        for table, key, old in reversed(self._journal):
            if old is None:
                self._tables[table].pop(key, None)
            else:
                self._tables[table][key] = old


class MemoryStore:
    """In-memory twin of LmdbStore, for tests and throwaway repositories."""

    def __init__(self) -> None:
        from sortedcontainers import SortedDict  # here: repositories on disk never need it

        self._tables = {name: SortedDict() for name in TABLES}

    @contextmanager
    def reader(self) -> Iterator[MemoryTxn]:
        yield MemoryTxn(self._tables, writable=False)

    @contextmanager
    def writer(self) -> Iterator[MemoryTxn]:
        txn = MemoryTxn(self._tables, writable=True)
        try:
            yield txn
        except BaseException:
            txn.rollback()
            raise

    def release_pages(self) -> None:
        pass  # nothing is mapped

    def close(self) -> None:
        pass
