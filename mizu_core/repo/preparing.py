"""Preparing many messages on every core.

Preparing (parse, validate, sign, encode, hash, and mapping the message to triples) needs
no store and is most of the work of a large publish, signing above all. Its result is a
`Chunk`: each message's CID (or error) and the records the store takes, already pickled
as the store reads them, by CID range (`RANGES`). Past the first SERIAL messages, forked
workers (one per core) prepare CHUNK messages at a time, a few chunks in flight each,
and chunks come back in input order: CIDs, errors and what is stored are exactly those
of a serial run.

Workers never touch the store (an LMDB environment must not cross a fork), so a message
whose `$schema` they cannot look up fails there; every message that fails in a worker is
prepared again here, in order, with everything this process knows (schemas published
earlier in the same input included), and that result is the one reported.

The workers are plain forks fed through pipes, not a `multiprocessing.Pool`: its three
handler threads cost this process a second of CPU per 100,000 messages, all of it taken
from the store, which runs here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import select
import signal
import struct
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from mizu_core.errors import MizuError, StoreError
from mizu_core.message.cid import CID
from mizu_core.message.triples import triple_terms
from mizu_core.repo.ingest import Prepared

SERIAL = 2_000  # an input this short is prepared here: forking costs more than it saves
CHUNK = 256  # messages per task sent to a worker
IN_FLIGHT = 3  # chunks queued per worker: keeps them busy, bounds memory

Record = tuple[bytes, bytes, tuple[bytes, ...], list[bytes]]  # what `Ingest.store_many` takes
Schemas = dict[CID, dict[str, Any]]  # schema messages prepared so far, for `$schema` lookups
Outcome = tuple[CID, Record] | MizuError


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive items of the input, prepared."""

    items: list[Any]
    outcomes: list[CID | MizuError]  # per item
    parts: list[tuple[int, bytes]]  # the prepared items' records by CID range (`pickled`)
    valid: bool  # no item failed

    @classmethod
    def of(cls, items: list[Any], outcomes: list[Outcome]) -> Chunk:
        records = [o[1] for o in outcomes if not isinstance(o, MizuError)]
        cids = [o if isinstance(o, MizuError) else o[0] for o in outcomes]
        return cls(items, cids, pickled(records), len(records) == len(items))


RANGES = 16  # CID ranges a large input is stored by, one after another


def cid_range(raw: bytes) -> int:
    """Which of the RANGES a binary CID falls in: the top bits of its digest's first byte
    (after the 4-byte CIDv1 dag-cbor sha2-256 prefix that every message CID has)."""
    return raw[4] >> 4 if len(raw) > 4 else 0


def pickled(records: list[Record]) -> list[tuple[int, bytes]]:
    """(range, pickled list of its records) for each CID range the records fall in, each
    in input order. A store taking ranges one after another (repository.py says why) reads
    each part with one `pickle.loads`."""
    ranges: dict[int, list[Record]] = {}
    for record in records:
        ranges.setdefault(cid_range(record[0]), []).append(record)
    return [(r, pickle.dumps(part, 5)) for r, part in ranges.items()]


def _ready(prepared: Prepared) -> tuple[CID, Record]:
    cid = prepared.cid
    return cid, (cid.raw, prepared.data, prepared.signers, triple_terms(cid, prepared.message))


def _schema(prepared: Prepared) -> dict[str, Any] | None:
    """The message, if it is a json-schema (later messages may name it)."""
    return prepared.message if prepared.message.get("kind") == "json-schema" else None


def _here(item: Any, prepare: Callable[[Any], Prepared], schemas: Schemas) -> Outcome:
    try:
        prepared = prepare(item)
    except MizuError as e:
        return e
    if (schema := _schema(prepared)) is not None:
        schemas[prepared.cid] = schema
    return _ready(prepared)


_work: Callable[[Any], Prepared] | None = None  # what workers run (inherited by the fork)


def prepare_all(
    items: Iterable[Any], here: Callable[[Any], Prepared], anywhere: Callable[[Any], Prepared],
    schemas: Schemas,
) -> Generator[Chunk, None, None]:
    """The items prepared, chunk by chunk, in order. `here` may read the store and
    `schemas`, which this fills as it goes; `anywhere` must not (it runs in forked workers)."""
    remaining = iter(items)
    head = list(itertools.islice(remaining, SERIAL))
    chunk = list(itertools.islice(remaining, CHUNK))
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not chunk or workers < 2 or not hasattr(os, "fork"):
        rest = itertools.chain(head, chunk, remaining)
        while part := list(itertools.islice(rest, CHUNK)):
            yield Chunk.of(part, [_here(item, here, schemas) for item in part])
        return
    global _work
    _work = anywhere
    pool = _Pool(workers)  # before the serial part, so the workers start on the rest at once
    try:
        pending: deque[list[Any]] = deque()
        while chunk and len(pending) < IN_FLIGHT * workers:
            pool.submit(chunk)
            pending.append(chunk)
            chunk = list(itertools.islice(remaining, CHUNK))
        for start in range(0, len(head), CHUNK):
            part = head[start : start + CHUNK]
            yield Chunk.of(part, [_here(item, here, schemas) for item in part])
        while pending:
            yield _collect(pending.popleft(), pool.result(), here, schemas)
            if chunk:
                pool.submit(chunk)
                pending.append(chunk)
                chunk = list(itertools.islice(remaining, CHUNK))
    finally:
        pool.close()
        _work = None


# A chunk as it comes back from a worker: each item's binary CID (None where it failed),
# the schema messages among them by index, and the records of those prepared (`pickled`).
_Result = tuple[list[bytes | None], dict[int, dict[str, Any]], list[tuple[int, bytes]]]


def _prepare_chunk(chunk: list[Any]) -> _Result:
    """In a worker: what `_collect` takes."""
    assert _work is not None
    raws: list[bytes | None] = []
    found: dict[int, dict[str, Any]] = {}
    records: list[Record] = []
    for i, item in enumerate(chunk):
        try:
            prepared = _work(item)
            cid, record = _ready(prepared)
        except Exception:  # redone in the parent, which reports it (or a bug's traceback)
            raws.append(None)
            continue
        raws.append(cid.raw)
        records.append(record)
        if (schema := _schema(prepared)) is not None:
            found[i] = schema
    return raws, found, pickled(records)


def _collect(chunk: list[Any], result: _Result, here: Callable[[Any], Prepared], schemas: Schemas) -> Chunk:
    raws, found, parts = result
    if None not in raws:
        cids = [CID(raw) for raw in raws]  # type: ignore[arg-type]
        for i, schema in found.items():
            schemas[cids[i]] = schema
        return Chunk(chunk, cids, parts, True)  # type: ignore[arg-type]
    # Redo here, in order, what failed in the worker (a schema lookup, or a real error);
    # rare, so the records are unpickled to put the redone ones in place.
    done = {r[0]: r for _, data in parts for r in pickle.loads(data)}
    outcomes: list[Outcome] = []
    for i, (item, raw) in enumerate(zip(chunk, raws, strict=True)):
        if raw is None:
            outcomes.append(_here(item, here, schemas))
            continue
        cid = CID(raw)
        if i in found:
            schemas[cid] = found[i]
        outcomes.append((cid, done[raw]))
    return Chunk.of(chunk, outcomes)


_FRAME = struct.Struct("<Q")  # a pickle's length, before it on a pipe
_PIPE_SIZE = 1 << 20  # Linux's default limit for unprivileged processes


class _Pool:
    """Forked workers, fed chunks in turn through pipes; results come back in order.

    This process never blocks on a pipe: it writes what fits and reads whatever arrives
    while it waits for a result, so neither side can wait on the other forever."""

    def __init__(self, size: int) -> None:
        self._workers: list[_Worker] = []
        self._submitted = self._collected = 0
        try:
            for _ in range(size):
                self._workers.append(_Worker.fork(self._workers))
        except BaseException:
            self.close()
            raise

    def submit(self, chunk: list[Any]) -> None:
        worker = self._workers[self._submitted % len(self._workers)]
        self._submitted += 1
        data = pickle.dumps(chunk, 5)
        worker.outgoing += _FRAME.pack(len(data))
        worker.outgoing += data
        worker.send()

    def result(self) -> _Result:
        worker = self._workers[self._collected % len(self._workers)]
        self._collected += 1
        while not worker.results:
            self._wait()
        result: _Result = pickle.loads(worker.results.popleft())
        return result

    def _wait(self) -> None:
        poll = select.poll()
        by_fd = {}
        for w in self._workers:
            poll.register(w.results_fd, select.POLLIN)
            by_fd[w.results_fd] = w
            if w.outgoing:
                poll.register(w.tasks_fd, select.POLLOUT)
                by_fd[w.tasks_fd] = w
        for fd, _ in poll.poll():
            worker = by_fd[fd]
            if fd == worker.tasks_fd:
                worker.send()
            else:
                worker.receive()

    def close(self) -> None:
        for w in self._workers:
            w.stop()
        self._workers = []


class _Worker:
    """One forked worker: chunks go in on one pipe, results come back on another."""

    def __init__(self, pid: int, tasks_fd: int, results_fd: int) -> None:
        self.pid, self.tasks_fd, self.results_fd = pid, tasks_fd, results_fd
        self.outgoing = bytearray()
        self.incoming = bytearray()
        self.results: deque[bytes] = deque()

    @classmethod
    def fork(cls, siblings: list[_Worker]) -> _Worker:
        tasks_r, tasks_w = os.pipe()
        results_r, results_w = os.pipe()
        parent = os.getpid()
        import fcntl

        pid = os.fork()
        if pid == 0:  # the worker: it must never return into the caller's code
            status = 1
            try:
                # Only its own pipe ends stay open, so each side sees the other end.
                for fd in (tasks_w, results_r, *(f for s in siblings for f in (s.tasks_fd, s.results_fd))):
                    os.close(fd)
                _serve(parent, tasks_r, results_w)
                status = 0
            finally:
                os._exit(status)
        os.close(tasks_r)
        os.close(results_w)
        for fd in (tasks_w, results_r):
            os.set_blocking(fd, False)
            with contextlib.suppress(OSError, AttributeError):
                # Room for a few chunks, so a worker rarely waits for this process to read.
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        return cls(pid, tasks_w, results_r)

    def send(self) -> None:
        try:
            sent = os.write(self.tasks_fd, self.outgoing)
        except BlockingIOError:
            return
        except BrokenPipeError:
            raise _died() from None
        del self.outgoing[:sent]

    def receive(self) -> None:
        try:
            data = os.read(self.results_fd, 1 << 20)
        except BlockingIOError:
            return
        if not data:
            raise _died()
        self.incoming += data
        while len(self.incoming) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self.incoming)
            end = _FRAME.size + size
            if len(self.incoming) < end:
                break
            self.results.append(bytes(self.incoming[_FRAME.size : end]))
            del self.incoming[:end]

    def stop(self) -> None:
        for fd in (self.tasks_fd, self.results_fd):
            os.close(fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def _died() -> StoreError:
    return StoreError("a worker preparing messages died")


def _serve(parent: int, tasks: int, results: int) -> None:
    """A worker's life: prepare each chunk that comes in until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        import ctypes

        # Die with the parent: a `mizu put` killed mid-way must not leave workers behind
        # (Linux; elsewhere they end when their pipe closes).
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    with os.fdopen(tasks, "rb") as incoming:
        while head := incoming.read(_FRAME.size):
            (size,) = _FRAME.unpack(head)
            data = pickle.dumps(_prepare_chunk(pickle.loads(incoming.read(size))), 5)
            _write_all(results, _FRAME.pack(len(data)) + data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
