"""Preparing many messages on every core.

Preparing (parse, validate, sign, encode, hash, and mapping the message to triples) needs
no store and is most of the work of a large publish, signing above all. The result is a
`Ready` record, all the store needs. Past the first SERIAL messages, forked workers (one
per core) prepare chunks of the input, a few chunks in flight at a time, and results come
back in input order: CIDs, errors and what is stored are exactly those of a serial run.

Workers never touch the store (an LMDB environment must not cross a fork), so a message
whose `$schema` they cannot look up fails there; every message that fails in a worker is
prepared again here, in order, with everything this process knows (schemas published
earlier in the same input included), and that result is the one reported.
"""

from __future__ import annotations

import itertools
import os
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mizu_core.errors import MizuError
from mizu_core.message.cid import CID
from mizu_core.message.triples import message_triples
from mizu_core.repo.ingest import Prepared

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult

SERIAL = 2_000  # an input this short is prepared here: forking costs more than it saves
CHUNK = 256  # messages per task sent to a worker
IN_FLIGHT = 3  # chunks queued per worker: keeps them busy, bounds memory


@dataclass(frozen=True, slots=True)
class Ready:
    """A prepared message as the store takes it."""

    cid: CID
    record: bytes  # pickled arguments of `Ingest.store_block`: (cid bytes, block, signers, triples)
    schema: dict[str, Any] | None  # the message, when it is a json-schema (others may name it)

    @classmethod
    def of(cls, prepared: Prepared) -> Ready:
        cid = prepared.cid
        triples = message_triples(cid, prepared.message)
        record = pickle.dumps((cid.raw, prepared.data, prepared.signers, triples), 5)
        schema = prepared.message if prepared.message.get("kind") == "json-schema" else None
        return cls(cid, record, schema)


Outcome = Ready | MizuError
_work: Callable[[Any], Prepared] | None = None  # what workers run (inherited by the fork)


def prepare_all(
    items: Iterable[Any], here: Callable[[Any], Prepared], anywhere: Callable[[Any], Prepared]
) -> Iterator[tuple[Any, Outcome]]:
    """(item, Ready or the error) for each item, in order. `here` may read the store;
    `anywhere` must not (it runs in forked workers)."""
    remaining = iter(items)
    for item in itertools.islice(remaining, SERIAL):
        yield item, _attempt(here, item)
    chunk = list(itertools.islice(remaining, CHUNK))
    if not chunk:
        return
    import multiprocessing  # only now: most publishes are short

    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        for item in itertools.chain(chunk, remaining):
            yield item, _attempt(here, item)
        return
    global _work
    _work = anywhere
    pool = multiprocessing.get_context("fork").Pool(workers, _start_worker, (os.getpid(),))
    try:
        pending: deque[tuple[list[Any], AsyncResult[list[_Wire | None]]]] = deque()
        while chunk:
            pending.append((chunk, pool.apply_async(_prepare_chunk, (chunk,))))
            if len(pending) >= IN_FLIGHT * workers:
                yield from _collect(*pending.popleft(), here)
            chunk = list(itertools.islice(remaining, CHUNK))
        while pending:
            yield from _collect(*pending.popleft(), here)
    finally:
        pool.terminate()
        _work = None


def _start_worker(parent: int) -> None:
    """Die with the parent: a `mizu put` killed mid-way must not leave workers waiting
    forever on a queue nobody writes to (Linux; elsewhere they stay until their input ends)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _attempt(prepare: Callable[[Any], Prepared], item: Any) -> Outcome:
    try:
        return Ready.of(prepare(item))
    except MizuError as e:
        return e


def _collect(
    chunk: list[Any], result: AsyncResult[list[_Wire | None]], here: Callable[[Any], Prepared]
) -> Iterator[tuple[Any, Outcome]]:
    for item, wire in zip(chunk, result.get(), strict=True):
        if wire is None:
            yield item, _attempt(here, item)
        else:
            raw, text, record, schema = wire
            yield item, Ready(CID(raw, text), record, schema)


# A Ready as it crosses from a worker: plain values pickle several times faster.
_Wire = tuple[bytes, str, bytes, dict[str, Any] | None]


def _prepare_chunk(chunk: list[Any]) -> list[_Wire | None]:
    """In a worker: each item ready, or None where it failed (redone in the parent)."""
    assert _work is not None
    out: list[_Wire | None] = []
    for item in chunk:
        try:
            ready = Ready.of(_work(item))
        except MizuError:
            out.append(None)
            continue
        out.append((ready.cid.raw, str(ready.cid), ready.record, ready.schema))
    return out
