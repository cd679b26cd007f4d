"""Query rows as an HTTP answer, streamed: the query runs in a worker thread a batch of
text at a time, so the event loop (and libp2p beside it) never waits on it. Its first
batch is computed before the status is sent, so a bad query is a 4xx, not a 200 cut short;
an error later cuts the answer (the client sees it incomplete). At most
`gateway.max-queries` run at once; one more is told so at once (503)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from mizu_core.query.formats import FORMATS, MEDIA_TYPES, chunks
from mizu_gateway.answers import first_accepted
from mizu_gateway.errors import HTTPError

BATCH = 64 << 10  # characters of text computed per trip to a worker thread
ACCEPT = {"application/json": "json", "application/sparql-results+json": "json",
          "application/x-ndjson": "ndjson", "application/ndjson": "ndjson", "text/csv": "csv",
          "text/tab-separated-values": "tsv", "application/n-quads": "nquads"}


class Slots:
    """Queries running now, at most `total`; one more waits up to QUEUE seconds for a slot
    (a short burst is served, not refused), then is told the node is busy (503)."""

    QUEUE = 1.0

    def __init__(self, total: int) -> None:
        self.total = total
        self.limiter = anyio.CapacityLimiter(total)

    async def take(self) -> object:
        """A slot, held by the token returned until `give`."""
        token = object()
        with anyio.move_on_after(self.QUEUE):
            await self.limiter.acquire_on_behalf_of(token)
            return token
        raise HTTPError(503, f"busy answering {self.total} queries; ask again", {"Retry-After": "1"})

    def give(self, token: object) -> None:
        self.limiter.release_on_behalf_of(token)


def requested_format(request: Request) -> str:
    """`format=` if given, else the first type of `Accept` the gateway writes, else JSON."""
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in FORMATS:
            raise HTTPError(400, f"unknown format {fmt[:40]!r} ({', '.join(FORMATS)})")
        return fmt
    return first_accepted(request, ACCEPT) or "json"


def _take(texts: Generator[str, None, None]) -> tuple[str, bool]:
    """Up to about BATCH characters of `texts`, and whether they are the last."""
    parts: list[str] = []
    size = 0
    for text in texts:
        parts.append(text)
        size += len(text)
        if size >= BATCH:
            return "".join(parts), False
    return "".join(parts), True


async def rows_response(rows: Iterator[Any], fmt: str, slots: Slots) -> StreamingResponse:
    """`rows` (a core query's, not started yet) as an answer in `fmt`."""
    return await text_response(chunks(rows, fmt), MEDIA_TYPES[fmt], slots)


async def text_response(texts: Generator[str, None, None], media_type: str, slots: Slots) -> StreamingResponse:
    """`texts` (a core query's rows written out, not started yet) as an answer."""
    token = await slots.take()
    try:
        first, done = await anyio.to_thread.run_sync(_take, texts)
    except BaseException:
        texts.close()
        slots.give(token)
        raise

    async def body() -> Any:
        yield first
        finished = done
        while not finished:
            text, finished = await anyio.to_thread.run_sync(_take, texts)
            yield text

    return _Rows(body(), texts, lambda: slots.give(token), media_type=media_type)


class _Rows(StreamingResponse):
    """A streamed answer that gives its query slot back and ends its snapshot however
    the response ends (sent, failed, or the client gone before it started)."""

    def __init__(self, content: Any, texts: Generator[str, None, None], give: Callable[[], None],
                 media_type: str) -> None:
        super().__init__(content, media_type=media_type)
        self.texts = texts
        self.give = give

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.texts.close()  # the query's generator: its snapshot ends
            self.give()
