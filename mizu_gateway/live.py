"""Live answers: a stored query asked for with `Accept: text/event-stream` answers with its
rows now, then again whenever they change (a put, a pull, a push, an announcement that
brought records), as server-sent events, with a heartbeat while nothing does. One task
polls the store's arrival number for every watcher (`Arrivals`); each watcher runs its
query again when it moves and sends the rows only if they differ from what it sent last
(it keeps their digest, not the rows). Watchers are bounded (`gateway.max-watchers`),
and so is each answer (MAX_EVENT bytes)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from starlette.responses import StreamingResponse

from mizu_core.api import Repository
from mizu_core.errors import MizuError, QueryError
from mizu_gateway.errors import HTTPError, status_of

POLL = 0.25  # seconds between looks at the arrival number
HEARTBEAT = 15.0  # seconds of quiet before a comment line keeps the connection open
MAX_EVENT = 1 << 20  # bytes of one answer sent as an event
RERUNS = 2  # watchers' queries run again at once (the others wait their turn)


class Arrivals:
    """The store's arrival number, polled once for every watcher."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.seq = repo.next_arrival()
        self._moved = anyio.Event()

    async def run(self) -> None:
        while True:
            await anyio.sleep(POLL)
            seq = await anyio.to_thread.run_sync(self.repo.next_arrival)
            if seq != self.seq:
                self.seq = seq
                self._moved.set()
                self._moved = anyio.Event()

    async def after(self, seen: int, timeout: float) -> int:
        """The arrival number once it has moved past `seen`; `seen` after `timeout` s."""
        with anyio.move_on_after(timeout):
            while self.seq == seen:
                await self._moved.wait()
        return self.seq


class Watchers:
    def __init__(self, arrivals: Arrivals, total: int) -> None:
        self.arrivals = arrivals
        self.total = total
        self.count = 0
        self.reruns = anyio.CapacityLimiter(RERUNS)

    async def answer(self, rows: Callable[[], Iterator[Any]]) -> StreamingResponse:
        """The live answer of the query `rows()` runs (a new run each time)."""
        if self.count >= self.total:
            raise HTTPError(503, f"{self.total} live answers are open already (gateway.max-watchers)",
                            {"Retry-After": "5"})
        self.count += 1
        try:
            seq = self.arrivals.seq
            text = await anyio.to_thread.run_sync(_answer, rows)  # a bad query fails here: a 4xx
        except BaseException:
            self.count -= 1
            raise
        return _Live(self._events(rows, seq, text), self)

    async def _events(self, rows: Callable[[], Iterator[Any]], seq: int, text: str) -> AsyncIterator[str]:
        yield _event("rows", text, seq)
        sent = hashlib.sha256(text.encode()).digest()
        while True:
            moved = await self.arrivals.after(seq, HEARTBEAT)
            if moved == seq:
                yield ": heartbeat\n\n"
                continue
            seq = moved
            try:
                text = await anyio.to_thread.run_sync(_answer, rows, limiter=self.reruns)
            except MizuError as e:  # its time ran out, say: the watcher hears why, and stays
                yield _event("error", json.dumps({"error": str(e), "status": status_of(e)}), seq)
                continue
            digest = hashlib.sha256(text.encode()).digest()
            if digest != sent:
                sent = digest
                yield _event("rows", text, seq)


def _answer(rows: Callable[[], Iterator[Any]]) -> str:
    """The rows as one line of JSON, at most MAX_EVENT bytes."""
    parts, size = [], 2
    for row in rows():
        part = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        size += len(part) + 1
        if size > MAX_EVENT:
            raise QueryError(f"the answer is over {MAX_EVENT} bytes, too long to follow live: ask without text/event-stream")
        parts.append(part)
    return "[" + ",".join(parts) + "]"


def _event(kind: str, data: str, seq: int) -> str:
    return f"id: {seq}\nevent: {kind}\ndata: {data}\n\n"


class _Live(StreamingResponse):
    """An event stream that gives its watcher slot back however it ends."""

    def __init__(self, events: AsyncIterator[str], watchers: Watchers) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.watchers = watchers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.watchers.count -= 1
