"""`/ipfs/<cid>[/path]`: the IPFS path gateway (specs.ipfs.tech/http-gateways), for IPFS
clients and browsers.

Trustless answers (`?format=raw|car` or `Accept: application/vnd.ipld.raw|car`) send
blocks as stored, which the client verifies itself; deserialized answers send a file's
bytes (with its media type, and `Range`), a folder's `index.html` or a listing, a
message as JSON. Everything under /ipfs is immutable: an Etag, a year of caching and
304 for `If-None-Match`. Data never runs as script here: deserialized answers carry a
sandboxing Content-Security-Policy. A private record is 404, and never in a CAR.
"""

from __future__ import annotations

import html
import mimetypes
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from mizu_core.api import Repository
from mizu_core.errors import NotFound
from mizu_core.feeds import filters
from mizu_core.files import tree
from mizu_core.message import codec
from mizu_core.message.cid import CID, DAG_CBOR, DAG_PB, RAW, parse_cid, varint
from mizu_core.message.dagpb import DIRECTORY
from mizu_core.message.links import block_references
from mizu_gateway.answers import first_accepted, json_answer
from mizu_gateway.errors import HTTPError

IMMUTABLE = "public, max-age=29030400, immutable"
RAW_TYPE = "application/vnd.ipld.raw"
CAR_TYPE = "application/vnd.ipld.car"
CBOR_TYPE = "application/vnd.ipld.dag-cbor"
# No script, no plugin, an opaque origin: a page from data renders, it never runs.
SANDBOX = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self'"
SCOPES = ("all", "entity", "block")
STREAM_BATCH = 1 << 20  # bytes read per trip to a worker thread


class Ipfs:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    async def answer(self, request: Request) -> Response:
        cid_text, _, path = request.path_params["target"].partition("/")
        root = parse_cid(cid_text)
        fmt = _format(request)
        walked, block = await anyio.to_thread.run_sync(self._walk, root, path, fmt == "raw")
        target = walked.cids[-1].to_v1()  # a folder's links name CIDv0s
        etag = f'"{target}.{fmt}"' if fmt in ("raw", "car") else f'"{target}"'
        headers = {"Etag": etag, "Cache-Control": IMMUTABLE, "X-Ipfs-Path": "/ipfs/" + quote(request.path_params["target"])}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        if fmt == "raw":
            if walked.rest:
                raise HTTPError(400, "format=raw names a block: the path ends inside a message")
            return Response(block, media_type=RAW_TYPE, headers=headers)
        if fmt == "car":
            scope = request.query_params.get("dag-scope", "all")
            if scope not in SCOPES:
                raise HTTPError(400, f"dag-scope is one of {', '.join(SCOPES)}")
            blocks = self._car(walked.cids, scope)
            headers["Content-Disposition"] = f'attachment; filename="{target}.car"'
            return _stream(blocks, f"{CAR_TYPE}; version=1; order=dfs; dups=n", headers)
        headers["Content-Security-Policy"] = SANDBOX
        return await self._deserialized(request, walked, headers)

    def _walk(self, root: CID, path: str, read: bool) -> tuple[tree.Walked, bytes | None]:
        """Where the path leads, and (`read`) the block it ends at: one trip to a worker
        thread, which costs more than reading a block."""
        walked = tree.walk(self.repo, root, path)
        private = filters.private_messages(self.repo)
        if any(c.to_v1() in private for c in walked.cids):
            raise NotFound(f"{root} is not in the repository")
        return walked, self.repo.block(walked.cids[-1]) if read else None

    async def _deserialized(self, request: Request, walked: tree.Walked, headers: dict[str, str]) -> Response:
        target = walked.cids[-1]
        if target.codec == DAG_CBOR:
            if CBOR_TYPE in request.headers.get("accept", "") and not walked.rest:
                return Response(await anyio.to_thread.run_sync(self.repo.block, target), media_type=CBOR_TYPE,
                                headers=headers)
            value = await anyio.to_thread.run_sync(self.repo.resolve, target, "/".join(walked.rest))
            return json_answer(codec.to_json(value), headers=headers)
        if target.codec not in (DAG_PB, RAW):
            raise HTTPError(406, f"{target} (codec 0x{target.codec:x}) has no deserialized form: ask for format=raw")
        folder = await anyio.to_thread.run_sync(tree.node, self.repo, target)
        if folder.kind == DIRECTORY:
            return await self._folder(request, target, folder, headers)
        name = request.url.path.rsplit("/", 1)[-1]
        return await self._file(request, target, name, headers)

    async def _folder(self, request: Request, cid: CID, folder: Any, headers: dict[str, str]) -> Response:
        if not request.url.path.endswith("/"):  # so the page's relative links resolve inside it
            return RedirectResponse(request.url.path + "/" + (f"?{request.url.query}" if request.url.query else ""),
                                    status_code=301, headers=headers)
        index = next((link for link in folder.links if link.name == "index.html"), None)
        if index is not None:
            return await self._file(request, index.cid, "index.html", headers)
        rows = "".join(f'<li><a href="{html.escape(quote(link.name))}">{html.escape(link.name)}</a> '
                       f"<small>{link.tsize} B</small></li>\n" for link in folder.links)
        page = (f"<!doctype html>\n<meta charset=\"utf-8\">\n<title>{html.escape(request.url.path)}</title>\n"
                f"<h1>Index of {html.escape(request.url.path)}</h1>\n<ul>\n{rows}</ul>\n")
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    async def _file(self, request: Request, cid: CID, name: str, headers: dict[str, str]) -> Response:
        size = await anyio.to_thread.run_sync(tree.file_size, self.repo, cid)
        media = mimetypes.guess_type(name)[0] or await anyio.to_thread.run_sync(self._sniff, cid)
        headers = {**headers, "Accept-Ranges": "bytes"}
        start, end, status = 0, size, 200
        wanted = request.headers.get("range")
        if wanted is not None:
            span = _range(wanted, size)
            if span is None:
                return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, media_type=media, headers=headers)
        return _stream(tree.read_file(self.repo, cid, start, end), media, headers, status)

    def _sniff(self, cid: CID) -> str:
        head = b"".join(tree.read_file(self.repo, cid, 0, 16))
        for magic, media in ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
                             (b"%PDF", "application/pdf"), (b"RIFF", "application/octet-stream")):
            if head.startswith(magic):
                return media
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
        return "text/plain; charset=utf-8"

    def _car(self, path: tuple[CID, ...], scope: str) -> Iterator[bytes]:
        """A CAR v1 of the blocks the path passes through, then the DAG under its end as
        `scope` says (`all`: everything it links; `entity`: a whole file, a folder's own
        node, a message; `block`: that block), depth first, each block once."""
        header = codec.encode({"roots": [path[0]], "version": 1})
        yield varint(len(header)) + header
        private = filters.private_messages(self.repo)
        seen: set[bytes] = set()
        stack = [path[-1]]
        for cid in path[:-1]:
            seen.add(cid.to_v1().raw)
            yield _section(cid, self.repo.block(cid))
        while stack:
            cid = stack.pop()
            if cid.to_v1().raw in seen or cid.to_v1() in private:
                continue
            seen.add(cid.to_v1().raw)
            data = self.repo.block(cid)
            yield _section(cid, data)
            if scope == "all" or (scope == "entity" and cid.codec == DAG_PB and _is_file(data)):
                stack.extend(reversed(block_references(cid, data)))


def _is_file(data: bytes) -> bool:
    from mizu_core.message.dagpb import decode_node

    return decode_node(data).kind != DIRECTORY


def _section(cid: CID, data: bytes) -> bytes:
    return varint(len(cid.raw) + len(data)) + cid.raw + data


def _format(request: Request) -> str:
    """raw, car or "" (deserialized), from `format=` or `Accept`."""
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt not in ("raw", "car"):
            raise HTTPError(400, f"format is raw or car, not {fmt[:20]!r}")
        return fmt
    return first_accepted(request, {RAW_TYPE: "raw", CAR_TYPE: "car"}) or ""


def _range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=` range as [start, end), or None when it cannot be satisfied. Several
    ranges are answered as the first (a multipart answer is not written)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    first, _, last = spec.split(",")[0].strip().partition("-")
    try:
        if not first:  # the last N bytes
            n = int(last)
            return (max(size - n, 0), size) if n > 0 and size > 0 else None
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    except ValueError:
        return None
    return (start, end) if 0 <= start < end else None


def _stream(chunks: Iterator[bytes], media_type: str | None, headers: dict[str, str], status: int = 200) -> StreamingResponse:
    """Bytes read a batch at a time in a worker thread (the store is synchronous)."""
    def take() -> bytes:
        parts, size = [], 0
        for part in chunks:
            parts.append(part)
            size += len(part)
            if size >= STREAM_BATCH:
                break
        return b"".join(parts)

    async def body() -> AsyncIterator[bytes]:
        while True:
            data = await anyio.to_thread.run_sync(take)
            if not data:
                return
            yield data

    return StreamingResponse(body(), status_code=status, media_type=media_type, headers=headers)
