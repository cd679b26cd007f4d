"""Temporary files holding prepared records until they are stored.

Records are pickled by CID range (`records.cid_range`), each range's in input order, so
that a store taking the ranges one after another reads each part with one `pickle.loads`
(`batches.py` says why it takes them so). This process writes one file, and each worker
one of its own, opened here before it forks: records never cross a pipe, only where they
are (`Part`s) does.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Iterator
from typing import IO, NamedTuple

from mizu_core.errors import StoreError
from mizu_core.publish.records import Record, cid_range


class Part(NamedTuple):
    """Pickled records of one CID range, in a spool file."""

    cid_range: int
    fd: int
    offset: int
    size: int


class Spooled(NamedTuple):
    """Records in spool files, and the CID range of each record in input order."""

    parts: list[Part]
    order: bytes


class SpoolFile:
    """One spool file, written by one process only (this one, or a worker), read by any."""

    def __init__(self, fd: int) -> None:
        self.fd, self.end = fd, 0

    def write(self, records: list[Record]) -> list[Part]:
        """Append `records` pickled by CID range; raises OSError (a full disk, say)."""
        ranges: dict[int, list[Record]] = {}
        for record in records:
            cid, _data, _signers, _terms = record
            ranges.setdefault(cid_range(cid), []).append(record)
        parts: list[Part] = []
        for r, part in ranges.items():
            data = memoryview(pickle.dumps(part, 5))
            parts.append(Part(r, self.fd, self.end, len(data)))
            while data:
                written = os.pwrite(self.fd, data, self.end)
                data, self.end = data[written:], self.end + written
        return parts


def read_part(part: Part) -> list[Record]:
    """A part's records (in any process that has the spool files open: workers too)."""
    data = os.pread(part.fd, part.size, part.offset)
    if len(data) != part.size:
        raise StoreError("a spool file of prepared messages was cut short")
    records: list[Record] = pickle.loads(data)
    return records


def records_of(parts: Iterable[Part]) -> Iterator[Record]:
    """The records of `parts`, one part after another."""
    for part in parts:
        yield from read_part(part)


def in_input_order(spooled: Spooled) -> Iterator[Record]:
    """Spooled records as their input had them (`Spooled.order`)."""
    ranges = {part.cid_range: iter(read_part(part)) for part in spooled.parts}
    for r in spooled.order:
        yield next(ranges[r])


class Spool:
    """The spool files of one publish: this process's, and one for each worker."""

    def __init__(self) -> None:
        self._files: list[IO[bytes]] = []
        self._own = self.file()

    def file(self) -> SpoolFile:
        """A new spool file (for a worker: open it before forking)."""
        import tempfile  # here, with the rest of the write path: reads never need it

        try:
            self._files.append(tempfile.TemporaryFile())  # noqa: SIM115 (closed by __exit__)
        except OSError as e:
            raise spool_failed(e) from None
        return SpoolFile(self._files[-1].fileno())

    def write(self, records: list[Record]) -> Spooled:
        """Records, in input order, into this process's spool file."""
        try:
            parts = self._own.write(records)
        except OSError as e:
            raise spool_failed(e) from None
        return Spooled(parts, bytes(cid_range(cid) for cid, _data, _signers, _terms in records))

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files:
            f.close()


def spool_failed(error: OSError) -> StoreError:
    """A spool file could not be written (here or in a worker): a full disk says where."""
    import tempfile

    from mizu_core.repo.disk import full_disk

    full = full_disk(error, tempfile.gettempdir())
    if full is not None:
        full.hint = "put keeps prepared messages there until they are stored; set TMPDIR to a folder with room"
        return full
    return StoreError(f"cannot write a spool file of prepared messages in {tempfile.gettempdir()}: {error.strerror}")
