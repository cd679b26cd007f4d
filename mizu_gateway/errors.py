"""Errors as HTTP answers, in one place: `{"error": "…"}` with the status that fits, one
line, never a traceback."""

from __future__ import annotations

import json

from starlette.responses import Response

from mizu_core.errors import (
    InvalidMessage,
    MizuError,
    NotFound,
    PeerError,
    QueryError,
    QueryTimeout,
    StoreError,
    UsageError,
    shorten,
)

MAX_ERROR = 500  # characters of an error's text


class HTTPError(Exception):
    """A refusal the gateway makes itself (wrong Host, no token, a body too large)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def status_of(error: Exception) -> int:
    if isinstance(error, HTTPError):
        return error.status
    if isinstance(error, QueryTimeout):
        return 503  # the query's time is up: the node is fine, try a narrower one
    for kind, status in ((NotFound, 404), (UsageError, 400), (QueryError, 400), (InvalidMessage, 400),
                         (PeerError, 502), (StoreError, 500)):
        if isinstance(error, kind):
            return status
    return 400 if isinstance(error, MizuError) else 500


def error_body(message: str) -> bytes:
    """`{"error": "…"}` and a newline: every refusal's body, whoever makes it."""
    text = shorten(" ".join(message.split()), MAX_ERROR)
    return (json.dumps({"error": text}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def error_response(error: Exception) -> Response:
    text = str(error) if isinstance(error, MizuError | HTTPError) else "internal error"
    headers = error.headers if isinstance(error, HTTPError) else {}
    return Response(error_body(text), status_code=status_of(error), headers=headers, media_type="application/json")
