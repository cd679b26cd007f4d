"""NDJSON read in blocks (publish/inputs.py) gives the messages a line-by-line read gives."""

from __future__ import annotations

import io
import random

import pytest

from mizu_core.errors import InvalidMessage
from mizu_core.message.codec import MAX_MESSAGE_SIZE
from mizu_core.publish.inputs import MAX_TEXT, MessageText, read_lines, read_text


def line_by_line(data: bytes) -> list[MessageText]:
    """What reading the lines one at a time gives: each line not blank, numbered from 1."""
    return [
        MessageText(line.rstrip(b"\r\n"), f"line {n}", n)
        for n, line in enumerate(io.BytesIO(data), 1)
        if line.strip()
    ]


def test_an_example_input() -> None:
    data = b'{"a": 1}\r\n\n  \n{"b": 2}\n{"c": 3}'  # blank lines, \r\n, no last newline
    blocks = list(read_lines(io.BytesIO(data), size=4))
    assert [m for b in blocks for m in b.messages()] == [
        MessageText(b'{"a": 1}', "line 1", 1),
        MessageText(b'{"b": 2}', "line 4", 4),
        MessageText(b'{"c": 3}', "line 5", 5),
    ]
    assert all(b.data.endswith(b"\n") for b in blocks[:-1])  # cut after a newline only


@pytest.mark.parametrize("seed", range(30))
def test_blocks_of_any_size_give_every_line_once_with_its_number(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [b"x" * rng.randrange(0, 40), b"\n", b"\r\n", b" ", b"\t", b"{}", b"\r"]
    data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 60)))
    size = rng.randrange(1, 50)
    got = [m for block in read_lines(io.BytesIO(data), size) for m in block.messages()]
    assert got == line_by_line(data)


def test_empty_input_gives_no_block() -> None:
    assert list(read_lines(io.BytesIO(b""))) == []


@pytest.mark.parametrize("size", [1, 3, 7, 20])  # blocks no longer than the limit
def test_a_line_past_the_limit_is_refused_naming_it(size: int) -> None:
    ok = b"a" * 20
    for line, n in ((b"b" * 21, 3), (b"b" * 21 + b"\r", 3)):
        data = ok + b"\n\n" + line + b"\n" + ok + b"\n"
        with pytest.raises(InvalidMessage, match=f"^line {n}: longer than 20 bytes of JSON"):
            list(read_lines(io.BytesIO(data), size, limit=20))
    # Exactly the limit, with or without a last newline: read.
    for data in (ok + b"\n" + ok, ok + b"\n" + ok + b"\n", ok):
        got = [m for block in read_lines(io.BytesIO(data), size, limit=20) for m in block.messages()]
        assert got == line_by_line(data)


def test_a_line_without_end_is_not_read_past_the_limit() -> None:
    class Endless(io.RawIOBase):
        read_so_far = 0

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            buffer[:] = b"\0" * len(buffer)
            self.read_so_far += len(buffer)
            return len(buffer)

    endless = Endless()
    with pytest.raises(InvalidMessage, match=r"^line 1: longer than"):
        list(read_lines(endless, 1 << 12, limit=1 << 16))  # type: ignore[arg-type]
    assert endless.read_so_far <= (1 << 16) + (1 << 12)
    with pytest.raises(InvalidMessage, match=r"^stdin: longer than 100 bytes"):
        read_text(Endless(), "stdin", limit=100)  # type: ignore[arg-type]
    assert read_text(io.BytesIO(b"x" * 100), "f", limit=100) == MessageText(b"x" * 100, "f")


def test_the_bound_leaves_room_for_any_message() -> None:
    # base64 bytes take 4/3, CIDs as text about 2, \u escapes of non-ASCII text up to 3
    # times their encoded size (6 bytes for 2, 12 for a 4-byte character).
    assert MAX_TEXT >= 3 * MAX_MESSAGE_SIZE
