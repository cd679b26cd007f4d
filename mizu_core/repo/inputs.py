"""What `Repository.publish` takes besides IPLD dicts: JSON text named for its errors, and
NDJSON read in blocks of whole lines (split into messages by the worker that prepares
them, so a large input costs the publishing process no object per line)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

BLOCK = 1 << 17  # bytes of NDJSON a `Lines` block holds, about 300 typical messages


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


def read_lines(stream: BinaryIO, size: int = BLOCK) -> Iterator[Lines]:
    """NDJSON from `stream` in blocks of about `size` bytes, each cut after a newline."""
    first, pieces = 1, []  # pieces: the line under way, read in pieces when it is long
    while block := stream.read(size):
        cut = block.rfind(b"\n") + 1
        if not cut:
            pieces.append(block)
            continue
        data = b"".join([*pieces, block[:cut]]) if pieces else block[:cut]
        yield Lines(data, first)
        first += data.count(b"\n")
        pieces = [block[cut:]] if cut < len(block) else []
    if pieces:
        yield Lines(b"".join(pieces), first)
