"""What every request passes first, as plain ASGI (Starlette's BaseHTTPMiddleware races):
the Host must be one the gateway serves (DNS rebinding gets 403), the path must be plain
(no `..`, no control characters, no over-long segment), and every answer carries the
headers that keep a browser from reading it as something else. Reads are open to any
origin (CORS `*`); writes are not."""

from __future__ import annotations

import json
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mizu_gateway.errors import error_body
from mizu_gateway.settings import Settings

MAX_PATH = 8192  # bytes of a request's path
MAX_SEGMENT = 1024  # bytes of one segment of it
WRITES = ("/v0/publish",)  # paths no foreign origin may use (no CORS)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET, HEAD, POST, OPTIONS"),
    (b"access-control-allow-headers", b"Accept, Content-Type, Range, If-None-Match"),
    (b"access-control-expose-headers", b"Content-Length, Content-Range, Etag"),
]


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        read = not scope["path"].startswith(WRITES)
        extra = SECURITY_HEADERS + (CORS_HEADERS if read else [])
        if refusal is not None:
            await _send_error(send, *refusal, extra)
            return
        if scope["method"] == "OPTIONS":  # a CORS preflight: reads only
            await _send_error(send, 204 if read else 403, "" if read else "no cross-origin writes", extra)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if host is None:
            return 400, "no Host header"
        if not self._serves(host):
            return 403, f"this gateway does not serve Host {json.dumps(host[:100])}"
        raw = scope.get("raw_path") or scope["path"].encode()
        if len(raw) > MAX_PATH:
            return 414, f"a path over {MAX_PATH} bytes"
        for segment in raw.split(b"/")[1:]:
            text = unquote(segment.decode("latin-1"))
            if len(segment) > MAX_SEGMENT:
                return 414, f"a path segment over {MAX_SEGMENT} bytes"
            if text in (".", "..") or "/" in text or "\\" in text or not text.isprintable():
                return 400, "a path with '.', '..', an encoded slash or a control character"
        return None

    def _serves(self, host: str) -> bool:
        name = host.lower()
        if name.startswith("["):
            name = name[: name.find("]") + 1]
        elif ":" in name:
            name = name.rsplit(":", 1)[0]
        return name in self.settings.hosts or name.endswith(".localhost")


async def _send_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = error_body(message) if message else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
