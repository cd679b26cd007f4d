"""Preparing many messages on every core.

Preparing (parse, validate, sign, encode, hash, and mapping the message to triples) needs
no store and is most of the work of a large publish, signing above all. Its result is a
`Chunk` per task: each message's CID (or error), and where the records the store takes
are, pickled as the store reads them, by CID range (`RANGES`), in a `Spool`. Past the
first SERIAL messages, forked workers (one per core) take tasks (a `Lines` block of
NDJSON, which they split into messages, or CHUNK other items), a few in flight each,
spool the records themselves, and send back only the CIDs: results come in input order,
and CIDs, errors and what is stored are exactly those of a serial run. The work left to
this process, which stores afterwards, is small, so the workers have both cores. What is
done to each message is a `Stage`: validating, signing, encoding and mapping to triples;
or, for a signed put (repository.py), validating the input unsigned, then signing its
spooled records (`Spooled` tasks) while the store runs.

Workers never touch the store (an LMDB environment must not cross a fork), so a message
whose `$schema` they cannot look up fails there; every message that fails in a worker is
prepared again here, in order, with everything this process knows (schemas published
earlier in the same input included), and that result is the one reported.

The workers are plain forks fed through pipes, not a `multiprocessing.Pool`: its handler
threads would take CPU from this process, which runs the store.
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
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from mizu_core.errors import MizuError, StoreError
from mizu_core.message.cid import CID
from mizu_core.message.triples import triple_terms
from mizu_core.repo.ingest import Prepared
from mizu_core.repo.inputs import Lines

SERIAL = 2_000  # an input this short is prepared here: forking costs more than it saves
CHUNK = 256  # items other than `Lines` blocks per task sent to a worker
IN_FLIGHT = 3  # tasks queued per worker: keeps them busy, bounds memory

Record = tuple[bytes, bytes, tuple[bytes, ...], list[bytes]]  # what `Ingest.store_many` takes
Schemas = dict[CID, dict[str, Any]]  # schema messages prepared so far, for `$schema` lookups
Outcome = tuple[CID, Record] | MizuError
Part = tuple[int, int, int, int]  # pickled records of one CID range: (range, fd, offset, size)


class Spooled(NamedTuple):
    """Records in spool files, and the CID range of each record in input order."""

    parts: list[Part]
    order: bytes


Task = Lines | Spooled | list[Any]  # what a worker prepares at a time


def _tasks(items: Iterable[Any]) -> Iterator[tuple[Task, int]]:
    """The input as tasks, each with about how many messages it holds."""
    group: list[Any] = []
    for item in items:
        if isinstance(item, Lines | Spooled):
            if group:
                yield group, len(group)
                group = []
            yield item, item.data.count(b"\n") + 1 if isinstance(item, Lines) else len(item.order)
            continue
        group.append(item)
        if len(group) == CHUNK:
            yield group, CHUNK
            group = []
    if group:
        yield group, len(group)


def _items(task: Task) -> list[Any]:
    if isinstance(task, Lines):
        return task.messages()
    if isinstance(task, Spooled):
        return list(in_input_order(task.parts, task.order))
    return task


RANGES = 16  # CID ranges a large input is stored by, one after another


def cid_range(raw: bytes) -> int:
    """Which of the RANGES a binary CID falls in: the top bits of its digest's first byte
    (after the 4-byte CIDv1 dag-cbor sha2-256 prefix that every message CID has)."""
    return raw[4] >> 4 if len(raw) > 4 else 0


def _write_parts(fd: int, end: int, records: list[Record]) -> tuple[list[Part], int]:
    """Append `records` to the spool file `fd` at `end`, pickled by CID range, each range's
    in input order (a store taking ranges one after another reads each with one
    `pickle.loads`; repository.py says why). Returns the parts and the file's new end."""
    ranges: dict[int, list[Record]] = {}
    for record in records:
        ranges.setdefault(cid_range(record[0]), []).append(record)
    parts: list[Part] = []
    for r, part in ranges.items():
        data = memoryview(pickle.dumps(part, 5))
        parts.append((r, fd, end, len(data)))
        while data:
            written = os.pwrite(fd, data, end)
            data, end = data[written:], end + written
    return parts, end


def _read(part: Part) -> list[Record]:
    """A part's records (in any process that has the spool files open: workers too)."""
    _, fd, offset, size = part
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise StoreError("a spool file of prepared messages was cut short")
    records: list[Record] = pickle.loads(data)
    return records


def records_of(parts: Iterable[Part]) -> Iterator[Record]:
    """The records of `parts`, one part after another."""
    for part in parts:
        yield from _read(part)


def in_input_order(parts: list[Part], order: bytes) -> Iterator[Record]:
    """A task's records as its input had them (`Spooled.order`)."""
    ranges = {part[0]: iter(_read(part)) for part in parts}
    for r in order:
        yield next(ranges[r])


class Spool:
    """Temporary files holding prepared records until they are stored: one this process
    writes, and one each worker writes, so records never cross a pipe."""

    def __init__(self) -> None:
        self._files: list[IO[bytes]] = []
        self._fd, self._end = self.file(), 0

    def file(self) -> int:
        """A new spool file's descriptor (for a worker: open it before forking)."""
        import tempfile  # here, with the rest of the write path: reads never need it

        try:
            self._files.append(tempfile.TemporaryFile())  # noqa: SIM115 (closed by __exit__)
        except OSError as e:
            raise spool_failed(e) from None
        return self._files[-1].fileno()

    def write(self, records: list[Record]) -> Spooled:
        """Records, in input order, into this process's spool file."""
        try:
            parts, self._end = _write_parts(self._fd, self._end, records)
        except OSError as e:
            raise spool_failed(e) from None
        return Spooled(parts, bytes(cid_range(r[0]) for r in records))

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files:
            f.close()


def spool_failed(error: OSError) -> StoreError:
    """A spool file could not be written (here or in a worker): a full disk says where."""
    import tempfile

    from mizu_core.repo.kv import full_disk

    full = full_disk(error, tempfile.gettempdir())
    if full is not None:
        full.hint = "put keeps prepared messages there until they are stored; set TMPDIR to a folder with room"
        return full
    return StoreError(f"cannot write a spool file of prepared messages in {tempfile.gettempdir()}: {error.strerror}")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A task's messages, prepared."""

    task: Task
    outcomes: list[CID | MizuError]  # per message
    spooled: Spooled  # the prepared messages' records
    valid: bool  # no message failed

    def items(self) -> list[Any]:
        """The messages, as given to `here` and `anywhere` (for error reports)."""
        return _items(self.task)

    @classmethod
    def of(cls, task: Task, outcomes: list[Outcome], spool: Spool) -> Chunk:
        records = [o[1] for o in outcomes if not isinstance(o, MizuError)]
        cids = [o if isinstance(o, MizuError) else o[0] for o in outcomes]
        return cls(task, cids, spool.write(records), len(records) == len(outcomes))


def _record(prepared: Prepared) -> Record:
    """What the store takes of a prepared message."""
    cid = prepared.cid
    return cid.raw, prepared.data, prepared.signers, triple_terms(cid, prepared.message)


def _own_cid(prepared: Prepared) -> CID:
    return prepared.cid


@dataclass(frozen=True)
class Stage:
    """What preparing does to each message: `here` (which may read the store and the
    schema messages prepared so far) or `anywhere` (in a forked worker: must not) prepare
    it; `record` makes the record to spool, whose first field, a binary CID, orders it;
    `named` is the CID later messages of the input name a schema message by."""

    here: Callable[[Any], Prepared]
    anywhere: Callable[[Any], Prepared]
    record: Callable[[Prepared], Record] = _record
    named: Callable[[Prepared], CID] = _own_cid


def _schema(prepared: Prepared) -> dict[str, Any] | None:
    """The message, if it is a json-schema (later messages may name it)."""
    return prepared.message if prepared.message.get("kind") == "json-schema" else None


def _here(item: Any, stage: Stage, schemas: Schemas) -> Outcome:
    try:
        prepared = stage.here(item)
    except MizuError as e:
        return e
    if (schema := _schema(prepared)) is not None:
        schemas[stage.named(prepared)] = schema
    return prepared.cid, stage.record(prepared)


def _prepared_here(task: Task, stage: Stage, schemas: Schemas, spool: Spool) -> Chunk:
    return Chunk.of(task, [_here(item, stage, schemas) for item in _items(task)], spool)


_stage: Stage | None = None  # what workers run (inherited by the fork)


def prepare_all(
    items: Iterable[Any], stage: Stage, schemas: Schemas, spool: Spool, *,
    ahead: int = IN_FLIGHT, nice: int = 0,
) -> Generator[Chunk, None, None]:
    """The items (`Lines` and `Spooled` among them, each a task of several messages)
    prepared by `stage`, task by task, in order, their records in `spool`; `schemas` is
    filled as it goes. Workers get `ahead` tasks queued each, and run at `nice` (a store
    running here meanwhile then keeps its core)."""
    tasks = _tasks(items)
    head: list[Task] = []
    size = 0
    for task, n in tasks:
        head.append(task)
        size += n
        if size >= SERIAL:
            break
    upcoming: Iterator[Task] = (task for task, _ in tasks)
    following = next(upcoming, None)
    if following is not None:
        upcoming = itertools.chain([following], upcoming)
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if following is None or workers < 2 or not hasattr(os, "fork"):
        for task in itertools.chain(head, upcoming):
            yield _prepared_here(task, stage, schemas, spool)
        return
    global _stage
    _stage = stage
    pool = _Pool(workers, spool, nice)  # before the serial part, so the workers start at once
    try:
        pending: deque[Task] = deque()

        def submit_next() -> bool:
            task = next(upcoming, None)
            if task is not None:
                pool.submit(task)
                pending.append(task)
            return task is not None

        while len(pending) < ahead * workers and submit_next():
            pass
        for task in head:
            yield _prepared_here(task, stage, schemas, spool)
        while pending:
            yield _collect(pending.popleft(), pool.result(), stage, schemas, spool)
            submit_next()
    finally:
        pool.close()
        _stage = None


# A task as it comes back from a worker: each message's binary CID (None where it failed),
# the schema messages among them by index (with the CID they are named by), and the
# records of those prepared.
_Schemas = dict[int, tuple[bytes, dict[str, Any]]]
_Result = tuple[list[bytes | None], _Schemas, list[Record]]


def _prepare_chunk(task: Task) -> _Result:
    """In a worker: what `_collect` takes (the records once the worker has spooled them)."""
    assert _stage is not None
    raws: list[bytes | None] = []
    found: _Schemas = {}
    records: list[Record] = []
    for i, item in enumerate(_items(task)):
        try:
            prepared = _stage.anywhere(item)
            record = _stage.record(prepared)
            if (schema := _schema(prepared)) is not None:
                found[i] = (_stage.named(prepared).raw, schema)
        except Exception:  # redone in the parent, which reports it (or a bug's traceback)
            raws.append(None)
            continue
        raws.append(record[0])
        records.append(record)
    return raws, found, records


_Spooled = tuple[list[bytes | None], _Schemas, list[Part]]  # a result, its records spooled


def _collect(task: Task, result: _Spooled, stage: Stage, schemas: Schemas, spool: Spool) -> Chunk:
    raws, found, parts = result
    if None not in raws:
        for named, schema in found.values():
            schemas[CID(named)] = schema
        cids = [CID(raw) for raw in raws]  # type: ignore[arg-type]
        return Chunk(task, cids, Spooled(parts, bytes(map(cid_range, raws))), True)  # type: ignore[arg-type]
    # Redo here, in order, what failed in the worker (a schema lookup, or a real error);
    # rare, so the worker's records are read back to put the redone ones in place.
    done = {r[0]: r for r in records_of(parts)}
    outcomes: list[Outcome] = []
    for i, (item, raw) in enumerate(zip(_items(task), raws, strict=True)):
        if raw is None:
            outcomes.append(_here(item, stage, schemas))
            continue
        if i in found:
            schemas[CID(found[i][0])] = found[i][1]
        outcomes.append((CID(raw), done[raw]))
    return Chunk.of(task, outcomes, spool)


_FRAME = struct.Struct("<Q")  # a pickle's length, before it on a pipe
_PIPE_SIZE = 1 << 20  # Linux's default limit for unprivileged processes


class _Pool:
    """Forked workers, fed chunks in turn through pipes; results come back in order.

    This process never blocks on a pipe: it writes what fits and reads whatever arrives
    while it waits for a result, so neither side can wait on the other forever."""

    def __init__(self, size: int, spool: Spool, nice: int) -> None:
        self._workers: list[_Worker] = []
        self._submitted = self._collected = 0
        try:
            for _ in range(size):
                self._workers.append(_Worker.fork(self._workers, spool.file(), nice))
        except BaseException:
            self.close()
            raise

    def submit(self, task: Task) -> None:
        worker = self._workers[self._submitted % len(self._workers)]
        self._submitted += 1
        data = pickle.dumps(task, 5)
        worker.outgoing += _FRAME.pack(len(data))
        worker.outgoing += data
        worker.send()

    def result(self) -> _Spooled:
        worker = self._workers[self._collected % len(self._workers)]
        self._collected += 1
        while not worker.results:
            self._wait()
        result: _Spooled | OSError = pickle.loads(worker.results.popleft())
        if isinstance(result, OSError):  # the worker could not spool (a full disk, say)
            raise spool_failed(result)
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
    """One forked worker: tasks go in on one pipe, results come back on another, and the
    records it prepares go to a spool file of its own."""

    def __init__(self, pid: int, tasks_fd: int, results_fd: int) -> None:
        self.pid, self.tasks_fd, self.results_fd = pid, tasks_fd, results_fd
        self.outgoing = bytearray()
        self.incoming = bytearray()
        self.results: deque[bytes] = deque()

    @classmethod
    def fork(cls, siblings: list[_Worker], spool: int, nice: int) -> _Worker:
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
                if nice:
                    os.nice(nice)
                _serve(parent, tasks_r, results_w, spool)
                status = 0
            finally:
                os._exit(status)
        os.close(tasks_r)
        os.close(results_w)
        for fd in (tasks_w, results_r):
            os.set_blocking(fd, False)
            with contextlib.suppress(OSError, AttributeError):
                # Room for a few tasks, so a worker rarely waits for this process to read.
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


def _serve(parent: int, tasks: int, results: int, spool: int) -> None:
    """A worker's life: prepare each task that comes in until the pipe closes."""
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
    end = 0  # of the spool file
    with os.fdopen(tasks, "rb") as incoming:
        while head := incoming.read(_FRAME.size):
            (size,) = _FRAME.unpack(head)
            raws, found, records = _prepare_chunk(pickle.loads(incoming.read(size)))
            try:
                parts, end = _write_parts(spool, end, records)
                data = pickle.dumps((raws, found, parts), 5)
            except OSError as e:  # for the parent to report (a full disk, say)
                data = pickle.dumps(OSError(e.errno, e.strerror), 5)
            _write_all(results, _FRAME.pack(len(data)) + data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
