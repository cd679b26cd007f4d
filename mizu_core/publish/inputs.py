"""What `publish` takes besides IPLD dicts: JSON text named for its errors, and
NDJSON read in blocks of whole lines (split into messages by the worker that prepares
them, so a large input costs the publishing process no object per line)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from mizu_core.errors import InvalidMessage
from mizu_core.message.codec import MAX_MESSAGE_SIZE

BLOCK = 1 << 17  # bytes of NDJSON a `Lines` block holds, about 300 typical messages
# The most JSON text one message is read as (a line, or a whole input): a message's JSON
# may be larger than its encoding (base64 bytes, CIDs as text and \u escapes take up to
# 2-3 times the bytes), but never needs more than this; reading stops here, so a line
# without end (`head -c 1G /dev/zero`) costs no more memory than this.
MAX_TEXT = 4 * MAX_MESSAGE_SIZE


class MessageText(NamedTuple):  # a tuple: it crosses to worker processes cheaply
    """JSON text to publish, named for error messages (`stdin`, `line 7`)."""

    text: bytes | str
    where: str
    line: int | None = None  # set for NDJSON lines: JSON errors then give only the column


class Lines(NamedTuple):
    """Whole lines of NDJSON, the first of them line `first` of the input. Each line that
    is not blank is a message; a line's `\\r\\n` ending is allowed."""

    data: bytes
    first: int

    def messages(self) -> list[MessageText]:
        return [
            MessageText(line.rstrip(b"\r"), f"line {n}", n)
            for n, line in enumerate(self.data.split(b"\n"), self.first)
            if line.strip()
        ]


def read_lines(stream: BinaryIO, size: int = BLOCK, limit: int = MAX_TEXT) -> Iterator[Lines]:
    """NDJSON from `stream` in blocks of about `size` bytes, each cut after a newline. A
    line longer than `limit` bytes (`size` is less) is an InvalidMessage naming it as soon
    as it passes the limit: it is never held whole."""
    first, pieces = 1, []  # pieces: the line under way, read in pieces when it is long
    pending = 0  # its bytes so far
    while block := stream.read(size):
        cut = block.rfind(b"\n") + 1
        if not cut:
            pieces.append(block)
            pending += len(block)
            if pending > limit:
                raise too_long(f"line {first}", limit)
            continue
        if pending and pending + block.find(b"\n") > limit:
            raise too_long(f"line {first}", limit)
        data = b"".join([*pieces, block[:cut]]) if pieces else block[:cut]
        yield Lines(data, first)
        first += data.count(b"\n")
        pieces = [block[cut:]] if cut < len(block) else []
        pending = len(block) - cut
    if pieces:
        yield Lines(b"".join(pieces), first)


def read_text(stream: BinaryIO, where: str, limit: int = MAX_TEXT) -> MessageText:
    """The whole of `stream` as one message's JSON text; past `limit` bytes, an
    InvalidMessage (read no further than that)."""
    text = stream.read(limit + 1)
    if len(text) > limit:
        raise too_long(where, limit)
    return MessageText(text, where)


def too_long(where: str, limit: int) -> InvalidMessage:
    return InvalidMessage(
        f"{where}: longer than {limit} bytes of JSON, more than any message needs"
        f" (a message may not exceed {MAX_MESSAGE_SIZE} bytes encoded)"
    )
