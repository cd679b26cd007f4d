"""The routes of Mizu's API (`/v0/…`): each parses the request, calls what the matching
command calls (in a worker thread: the core is synchronous), and shapes the answer."""

from __future__ import annotations

import hmac
import io
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import Response

from mizu_core.api import Repository
from mizu_core.errors import NotFound, UsageError
from mizu_core.feeds import filters
from mizu_core.message import codec
from mizu_core.message.cid import CID, parse_cid
from mizu_core.message.templates import resolve_pointer
from mizu_gateway.answers import json_answer
from mizu_gateway.errors import HTTPError
from mizu_gateway.live import Watchers
from mizu_gateway.rows import Slots, requested_format, rows_response
from mizu_gateway.settings import Settings

T = TypeVar("T")
RESERVED_PARAMS = ("format",)  # query-string names that are not a query's $vars
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson")


class Api:
    def __init__(self, repo: Repository, settings: Settings, watchers: Watchers) -> None:
        self.repo = repo
        self.settings = settings
        self.slots = Slots(settings.max_queries)
        self.watchers = watchers

    async def view_raw(self, request: Request) -> Response:
        """GET /v0/view-raw/<cid>[/path]: what `mizu view` prints."""
        cid, path = _target(request)
        value = await _run(lambda: self.repo.resolve(cid, path, filters.private_messages(self.repo)))
        return json_answer(codec.to_json(value))

    async def update(self, request: Request) -> Response:
        """GET /v0/update/<cid>[/path]: the update view (SPEC §5), or a path inside it."""
        cid, path = _target(request)

        def merged() -> Any:
            private = filters.private_messages(self.repo)
            view = self.repo.update_view(cid) if cid.to_v1() not in private else None
            if view is None or any(c in private for c in view.chain):
                raise NotFound(f"message {cid} is not in the repository")
            try:
                return resolve_pointer(view.value, "#/" + path) if path else view.value
            except KeyError:
                raise NotFound(f"no '{path}' in the update view of {cid}") from None

        return json_answer(codec.to_json(await _run(merged)))

    async def stored_query(self, request: Request) -> Response:
        """GET /v0/query/<cid>[/path]?name=value…: a stored query's rows (with `Accept:
        text/event-stream`, now and whenever they change: live.py)."""
        cid, path = _target(request)
        if "text/event-stream" in request.headers.get("accept", ""):
            params = _params(request)
            return await self.watchers.answer(lambda: self.repo.query(
                params=params, cid=cid, path=path, timeout=self.settings.query_timeout, public=True))
        fmt = requested_format(request)
        rows = self.repo.query(params=_params(request), cid=cid, path=path, nquads=fmt == "nquads",
                               timeout=self.settings.query_timeout, public=True)
        return await rows_response(rows, fmt, self.slots)

    async def adhoc_query(self, request: Request) -> Response:
        """POST /v0/query: a json-rql query in the body; `$var`s from the query string."""
        fmt = requested_format(request)
        query = codec.parse_json(await self.body(request), links=True)
        rows = self.repo.query(query, _params(request), nquads=fmt == "nquads",
                               timeout=self.settings.query_timeout, public=True)
        return await rows_response(rows, fmt, self.slots)

    async def sparql(self, request: Request) -> Response:
        """GET or POST /v0/sparql: the SPARQL 1.1 Protocol (sparql.py)."""
        from mizu_gateway import sparql

        return await sparql.answer(self, request)

    async def publish(self, request: Request) -> Response:
        """POST /v0/publish: one JSON message, or NDJSON; signed unless `sign=false`."""
        from mizu_core.publish.inputs import read_lines, read_text

        self._authorize(request)
        sign = request.query_params.get("sign", "true")
        if sign not in ("true", "false"):
            raise HTTPError(400, "sign is true or false")
        media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if media not in ("application/json", *NDJSON_TYPES):
            raise HTTPError(415, f"a message is application/json, or {NDJSON_TYPES[0]} for several")
        body = await self.body(request)

        def store() -> Any:
            stream = io.BytesIO(body)
            items = read_lines(stream) if media in NDJSON_TYPES else iter([read_text(stream, "body")])
            return self.repo.publish(items, sign=sign == "true")

        result = await _run(store)
        return json_answer({"cids": [str(c) for c in result.cids], "added": result.added, "triples": result.triples},
                     status=201)

    def _authorize(self, request: Request) -> None:
        token = self.settings.token
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if token is None:
            raise HTTPError(403, "this gateway takes no writes (an in-memory repository)")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPError(401, "writes need Authorization: Bearer with the token in .mizu/gateway-token",
                            {"WWW-Authenticate": "Bearer"})

    async def body(self, request: Request) -> bytes:
        """The request body, refused (413) past gateway.max-body before it is all read."""
        limit = self.settings.max_body
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPError(413, f"a body over gateway.max-body ({limit} bytes)")
        parts, size = [], 0
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise HTTPError(413, f"a body over gateway.max-body ({limit} bytes)")
            parts.append(part)
        return b"".join(parts)


def _target(request: Request) -> tuple[CID, str]:
    cid_text, _, path = request.path_params["target"].partition("/")
    return parse_cid(cid_text), path.strip("/")


def _params(request: Request) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in RESERVED_PARAMS:
            continue
        if name in params:
            raise UsageError(f"parameter '{name[:40]}' given twice")
        params[name] = value
    return params


async def _run(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)
