"""How answers are shaped, for every route: the format a request's `Accept` asks for, and
JSON as `mizu view` prints it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mizu_core.query.formats import dumps


def first_accepted(request: Request, offered: Mapping[str, str]) -> str | None:
    """What `offered` maps the first type of `Accept` it holds to (parameters and q-values
    aside: the client's order decides); None when it holds none of them."""
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in offered:
            return offered[media]
    return None


def json_answer(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """JSON as `mizu view` prints it (indented, one trailing newline)."""
    return Response(dumps(value) + "\n", status_code=status, media_type="application/json", headers=headers)
