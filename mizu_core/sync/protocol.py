"""The wire format of `/mizu/sync/1.0.0`: length-prefixed DAG-CBOR frames, one request
then one response, many per stream. Pure: no sockets, so it is tested on plain bytes.
Every limit a hostile peer could push against is here (man/mizu-protocol.5 lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mizu_core.errors import MizuError, PeerError
from mizu_core.message import codec
from mizu_core.message.cid import CID, read_varint, varint

PROTOCOL_ID = "/mizu/sync/1.0.0"
MAX_FRAME = 4 << 20  # bytes in one frame, after its length prefix
MAX_BATCH = 512  # CIDs asked for in one request, blocks in one put or response
MAX_RESPONSE_BYTES = 2 << 20  # block bytes a server puts in one response
MAX_QUERY_RECORDS = 100_000
MAX_QUERY_BYTES = 64 << 10  # a peer's ad-hoc query, as DAG-CBOR: parsing it stays cheap
# A feed's query sent with `roots`: its query message (at most MAX_QUERY_BYTES), and for a
# query inside a message (`CID/path`) the message it points into (any message's size).
MAX_QUERY_BLOCKS = 2
QUERY_BUDGET = 5.0  # seconds a server spends matching a peer's ad-hoc query
SERVER_WORKERS = 4  # requests a server answers at once, each in a worker thread
# Feeds a server does not follow, built when a peer asks for them with their query
# (`roots` with `queries`) and kept fresh: man/mizu-serve.1 and mizu-protocol.5 give why.
# How many are kept is serve.asked-feeds-max (repo/config.py); the least recently asked go first.
ASKED_FEED_RECORDS = 200_000  # records of one such feed; a larger one is refused
ASKED_RECORDS = 1_000_000  # records of all of them together
FEED_BUILD_BUDGET = 3.0  # seconds of matching for a first build: under a client's 5 s wait
FEED_BUILDS = 2  # first builds at once; a request for another is told the server is busy
PEER_WORKERS = 1  # of which from one peer (all its streams together)
# What one peer may hold on a server (man/mizu-protocol.5, "Slow and stalled peers").
# libp2p bounds none of it per peer: its only stream limit is 10,000 over all peers, and
# its Yamux buffers what a peer sends past the receive window (it only logs it).
PEER_STREAMS = 8  # sync streams open at once; a stream past them is reset on arrival
# Responses computed or being written at once (all its streams together): the bytes a
# server keeps for a peer that does not read are at most PEER_RESPONSES * MAX_FRAME.
PEER_RESPONSES = 2
# Seconds a peer has to take the whole of one response; past it the stream is dropped.
# The longest a Mizu client waits for a response is REQUEST_TIMEOUT (30 s, session.py).
WRITE_DEADLINE = 30.0
IDLE_TIMEOUT = 300.0  # seconds a server waits for the next request on a stream
OPS = ("roots", "nodes", "blocks", "have", "put", "query")


class ByteStream(Protocol):
    async def read(self, n: int) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


def encode_frame(message: dict[str, Any]) -> bytes:
    body = codec.encode(message)
    if len(body) > MAX_FRAME:
        raise PeerError(f"frame of {len(body)} bytes is over the {MAX_FRAME}-byte limit")
    return varint(len(body)) + body


class FrameReader:
    """Reads whole frames from a stream whose `read(n)` may return fewer than n bytes."""

    def __init__(self, stream: ByteStream, peer: str = "peer") -> None:
        self.stream = stream
        self.peer = peer
        self.buffer = bytearray()
        self.received = 0  # bytes read from the wire, for transfer reports

    async def _fill(self, n: int) -> bool:
        while len(self.buffer) < n:
            chunk = await self.stream.read(max(n - len(self.buffer), 65536))
            if not chunk:
                return False
            self.received += len(chunk)
            self.buffer += chunk
        return True

    async def read_frame(self) -> dict[str, Any] | None:
        """The next frame's map; None at a clean end of stream between frames."""
        body = await self.read_body()
        return None if body is None else decode_frame(body, self.peer)

    async def read_body(self) -> bytes | None:
        """The next frame's body, not decoded (a server decodes it in a worker thread);
        None at a clean end of stream between frames."""
        header = 0
        while True:
            if not await self._fill(header + 1):
                if not self.buffer:
                    return None
                raise PeerError(f"{self.peer} closed the stream inside a frame")
            if self.buffer[header] < 0x80:
                break
            header += 1
            if header > 4:
                raise PeerError(f"{self.peer} sent a bad frame length")
        length, start = read_varint(bytes(self.buffer[: header + 1]), 0)
        if length > MAX_FRAME:
            raise PeerError(f"{self.peer} sent a {length}-byte frame, over the {MAX_FRAME}-byte limit")
        if not await self._fill(start + length):
            raise PeerError(f"{self.peer} closed the stream inside a frame")
        body = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        return body


def decode_frame(body: bytes, peer: str = "peer") -> dict[str, Any]:
    """A frame body's map; PeerError if it is not canonical DAG-CBOR (CIDs over the
    length limits of cid.py included) or not a map."""
    try:
        value = codec.decode(body)
    except MizuError as e:
        raise PeerError(f"{peer} sent a frame that is not DAG-CBOR: {e}") from None
    except Exception as e:  # the codec's own fuzzer hunts these; a peer only gets refused
        raise PeerError(f"{peer} sent a frame that is not DAG-CBOR ({type(e).__name__})") from None
    if type(value) is not dict:
        raise PeerError(f"{peer} sent a frame that is not a map")
    return value


@dataclass(frozen=True)
class Blocks:
    """Blocks in a frame, as parallel lists of CIDs and bytes."""

    pairs: tuple[tuple[CID, bytes], ...]

    def fields(self) -> dict[str, Any]:
        return {"cids": [c for c, _ in self.pairs], "blocks": [b for _, b in self.pairs]}

    @classmethod
    def parse(cls, frame: dict[str, Any], peer: str) -> Blocks:
        cids, blocks = frame.get("cids"), frame.get("blocks")
        if (
            type(cids) is not list or type(blocks) is not list or len(cids) != len(blocks)
            or len(cids) > MAX_BATCH or any(type(c) is not CID for c in cids) or any(type(b) is not bytes for b in blocks)
        ):
            raise PeerError(f"{peer} sent a malformed block list")
        return cls(tuple((c.to_v1(), b) for c, b in zip(cids, blocks, strict=True)))


def cid_list(frame: dict[str, Any], key: str, peer: str, limit: int = MAX_BATCH) -> list[CID]:
    value = frame.get(key)
    if type(value) is not list or len(value) > limit or any(type(c) is not CID for c in value):
        raise PeerError(f"{peer} sent a malformed '{key}' list")
    return [c.to_v1() for c in value]


def optional_query_blocks(frame: dict[str, Any], key: str, peer: str, length: int) -> list[list[bytes] | None] | None:
    """The optional `queries` of a `roots` request: `length` entries, each null, a byte
    string (a feed's query message) or a list of 1 to MAX_QUERY_BLOCKS byte strings (the
    query message first, then the message it points into: a query inside a message).
    Each entry comes back as a list; None when the field is absent."""
    value = frame.get(key)
    if value is None:
        return None
    if type(value) is not list or len(value) != length:
        raise PeerError(f"{peer} sent a malformed '{key}' list")
    out: list[list[bytes] | None] = []
    for entry in value:
        if entry is None or type(entry) is bytes:
            out.append(None if entry is None else [entry])
        elif (type(entry) is list and 1 <= len(entry) <= MAX_QUERY_BLOCKS
              and all(type(b) is bytes for b in entry)):
            out.append(entry)
        else:
            raise PeerError(f"{peer} sent a malformed '{key}' list")
    return out


def optional_cid_list(frame: dict[str, Any], key: str, peer: str) -> list[CID | None]:
    value = frame.get(key)
    if type(value) is not list or len(value) > MAX_BATCH or any(
        c is not None and type(c) is not CID for c in value
    ):
        raise PeerError(f"{peer} sent a malformed '{key}' list")
    return [c.to_v1() if c is not None else None for c in value]
