"""Preparing many messages on every core.

Preparing (parse, validate, sign, encode, hash, and mapping the message to triples) needs
no store and is most of the work of a large publish, signing above all. What is done to
each message is a `Stage`: validating and all the rest (`validation.py`), or, for a
signed put, signing the spooled records of an input validated unsigned while the store
runs (`signing.py`). Its result is a `Chunk` per task: each message's CID (or error), and
its record in the `Spool`. Past the first SERIAL messages, forked workers (one per core,
`workers.py`) take tasks (a `Lines` block of NDJSON, which they split into messages, a
`Spooled` task of records, or CHUNK other items), a few in flight each, spool the
records themselves, and send back only the CIDs: results come in input order, and CIDs,
errors and what is stored are exactly those of a serial run. The work left to this
process, which stores afterwards, is small, so the workers have both cores.

A worker has no store, so a message whose `$schema` it cannot look up fails there;
every message that fails in a worker is prepared again in this process, in order, with
everything it knows (schemas published earlier in the same input included), and that
result is the one reported.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from mizu_core.errors import MizuError
from mizu_core.message.cid import CID
from mizu_core.publish import workers
from mizu_core.publish.inputs import Lines
from mizu_core.publish.records import Record, cid_range, record
from mizu_core.publish.spool import (
    Part,
    Spool,
    Spooled,
    SpoolFile,
    in_input_order,
    records_of,
    spool_failed,
)
from mizu_core.repo.ingest import Prepared

SERIAL = 2_000  # an input this short is prepared here: forking costs more than it saves
CHUNK = 256  # items other than `Lines` blocks per task sent to a worker
IN_FLIGHT = 3  # tasks queued per worker: keeps them busy, bounds memory

Schemas = dict[CID, dict[str, Any]]  # schema messages prepared so far, for `$schema` lookups


class Done(NamedTuple):
    """A message prepared in this process."""

    cid: CID
    record: Record


Outcome = Done | MizuError
Task = Lines | Spooled | list[Any]  # what a worker prepares at a time


class Stage:
    """What preparing does to each message, in this process (where it may read the store
    and the schema messages prepared so far) or in a forked worker (where it must not)."""

    def in_process(self, item: Any) -> Prepared:
        raise NotImplementedError

    def in_worker(self, item: Any) -> Prepared:
        return self.in_process(item)

    def record(self, prepared: Prepared) -> Record:
        """The record to spool."""
        return record(prepared)

    def named(self, prepared: Prepared) -> CID:
        """The CID later messages of the input name a schema message by."""
        return prepared.cid


def items(task: Task) -> list[Any]:
    """A task's messages, as a stage is given them."""
    if isinstance(task, Lines):
        return task.messages()
    if isinstance(task, Spooled):
        return list(in_input_order(task))
    return task


def _tasks(inputs: Iterable[Any]) -> Iterator[tuple[Task, int]]:
    """The input as tasks, each with about how many messages it holds."""
    group: list[Any] = []
    for item in inputs:
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


@dataclass(frozen=True, slots=True)
class Chunk:
    """A task's messages, prepared."""

    task: Task
    outcomes: list[CID | MizuError]  # per message
    spooled: Spooled  # the prepared messages' records
    valid: bool  # no message failed

    def items(self) -> list[Any]:
        """The messages, as the stage was given them (for error reports)."""
        return items(self.task)

    @classmethod
    def of(cls, task: Task, outcomes: list[Outcome], spool: Spool) -> Chunk:
        records = [o.record for o in outcomes if isinstance(o, Done)]
        cids = [o.cid if isinstance(o, Done) else o for o in outcomes]
        return cls(task, cids, spool.write(records), len(records) == len(outcomes))


def _schema(prepared: Prepared) -> dict[str, Any] | None:
    """The message, if it is a json-schema (later messages may name it)."""
    return prepared.message if prepared.message.get("kind") == "json-schema" else None


def _in_process(item: Any, stage: Stage, schemas: Schemas) -> Outcome:
    try:
        prepared = stage.in_process(item)
    except MizuError as e:
        return e
    if (schema := _schema(prepared)) is not None:
        schemas[stage.named(prepared)] = schema
    return Done(prepared.cid, stage.record(prepared))


def _prepared_in_process(task: Task, stage: Stage, schemas: Schemas, spool: Spool) -> Chunk:
    return Chunk.of(task, [_in_process(item, stage, schemas) for item in items(task)], spool)


class FromWorker(NamedTuple):
    """A task as a worker sends it back: each message's binary CID (None where it failed),
    the schema messages among them by index (with the CID they are named by), and where
    the worker spooled the records of those prepared."""

    cids: list[bytes | None]
    schemas: dict[int, tuple[bytes, dict[str, Any]]]
    parts: list[Part]


def prepared_in_worker(task: Task, stage: Stage, spool: SpoolFile) -> FromWorker | OSError:
    """In a worker: `task` prepared by `stage`, its records in the worker's spool file (or
    the error writing it, for this process to report: a full disk, say)."""
    cids: list[bytes | None] = []
    found: dict[int, tuple[bytes, dict[str, Any]]] = {}
    records: list[Record] = []
    for i, item in enumerate(items(task)):
        try:
            prepared = stage.in_worker(item)
            spooled = stage.record(prepared)
            if (schema := _schema(prepared)) is not None:
                found[i] = (stage.named(prepared).raw, schema)
        except Exception:  # redone in this process, which reports it (or a bug's traceback)
            cids.append(None)
            continue
        cid, _data, _signers, _terms = spooled
        cids.append(cid)
        records.append(spooled)
    try:
        return FromWorker(cids, found, spool.write(records))
    except OSError as e:
        return OSError(e.errno, e.strerror)  # what pickles whatever the subclass


def _collect(task: Task, result: FromWorker | OSError, stage: Stage, schemas: Schemas, spool: Spool) -> Chunk:
    if isinstance(result, OSError):
        raise spool_failed(result)
    if None not in result.cids:
        for named, schema in result.schemas.values():
            schemas[CID(named)] = schema
        raws: list[bytes] = result.cids  # type: ignore[assignment]
        return Chunk(task, [CID(raw) for raw in raws], Spooled(result.parts, bytes(map(cid_range, raws))), True)
    # Redo here, in order, what failed in the worker (a schema lookup, or a real error);
    # rare, so the worker's records are read back to put the redone ones in place.
    done: dict[bytes, Record] = {}
    for spooled in records_of(result.parts):
        cid, _data, _signers, _terms = spooled
        done[cid] = spooled
    outcomes: list[Outcome] = []
    for i, (item, raw) in enumerate(zip(items(task), result.cids, strict=True)):
        if raw is None:
            outcomes.append(_in_process(item, stage, schemas))
            continue
        if i in result.schemas:
            named, schema = result.schemas[i]
            schemas[CID(named)] = schema
        outcomes.append(Done(CID(raw), done[raw]))
    return Chunk.of(task, outcomes, spool)


def prepare_all(
    inputs: Iterable[Any], stage: Stage, schemas: Schemas, spool: Spool, *,
    ahead: int = IN_FLIGHT, nice: int = 0,
) -> Generator[Chunk, None, None]:
    """The inputs (`Lines` and `Spooled` among them, each a task of several messages)
    prepared by `stage`, task by task, in order, their records in `spool`; `schemas` is
    filled as it goes. Workers get `ahead` tasks queued each, and run at `nice` (a store
    running here meanwhile then keeps its core)."""
    tasks = _tasks(inputs)
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
    cores = workers.cores()
    if following is None or cores < 2 or not workers.can_fork():
        for task in itertools.chain(head, upcoming):
            yield _prepared_in_process(task, stage, schemas, spool)
        return

    def worker() -> workers.Work:  # here, before each fork: its spool file
        own = spool.file()
        return lambda task: prepared_in_worker(task, stage, own)

    pool = workers.Pool(cores, worker, nice)  # before the serial part, so the workers start at once
    try:
        pending: deque[Task] = deque()

        def submit_next() -> bool:
            task = next(upcoming, None)
            if task is not None:
                pool.submit(task)
                pending.append(task)
            return task is not None

        while len(pending) < ahead * cores and submit_next():
            pass
        for task in head:
            yield _prepared_in_process(task, stage, schemas, spool)
        while pending:
            yield _collect(pending.popleft(), pool.result(), stage, schemas, spool)
            submit_next()
    finally:
        pool.close()
