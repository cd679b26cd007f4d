"""The gateway as one ASGI application: the routes, the guard in front, errors mapped."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mizu_core.api import Repository
from mizu_core.errors import MizuError
from mizu_gateway.errors import HTTPError, error_response
from mizu_gateway.guard import Guard
from mizu_gateway.ipfs import Ipfs
from mizu_gateway.live import Arrivals, Watchers
from mizu_gateway.routes import Api
from mizu_gateway.settings import Settings


def make_app(repo: Repository, settings: Settings) -> Any:
    arrivals = Arrivals(repo)
    api = Api(repo, settings, Watchers(arrivals, settings.max_watchers))
    ipfs = Ipfs(repo)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(arrivals.run)  # for the live answers
            yield
            tasks.cancel_scope.cancel()

    routes = [
        Route("/v0/view-raw/{target:path}", api.view_raw, methods=["GET", "HEAD"]),
        Route("/v0/update/{target:path}", api.update, methods=["GET", "HEAD"]),
        Route("/v0/query/{target:path}", api.stored_query, methods=["GET", "HEAD"]),
        Route("/v0/query", api.adhoc_query, methods=["POST"]),
        Route("/v0/publish", api.publish, methods=["POST"]),
        Route("/v0/sparql", api.sparql, methods=["GET", "HEAD", "POST"]),
        Route("/ipfs/{target:path}", ipfs.answer, methods=["GET", "HEAD"]),
    ]
    # MizuError and HTTPError are answers; any other exception is a bug: a 500 saying
    # "internal error", its traceback in the node's log only.
    handlers = {MizuError: _error, HTTPError: _error, HTTPException: _starlette_error, Exception: _error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    return Guard(app, settings)


async def _error(request: Request, error: Exception) -> Response:
    return error_response(error)


async def _starlette_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (no such route, a method not allowed) as JSON too."""
    assert isinstance(error, HTTPException)
    text = {404: "no such endpoint", 405: "method not allowed"}.get(error.status_code, str(error.detail))
    return error_response(HTTPError(error.status_code, text, dict(error.headers or {})))
