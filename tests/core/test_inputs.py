"""NDJSON read in blocks (repo/inputs.py) gives the messages a line-by-line read gives."""

from __future__ import annotations

import io
import random

import pytest

from mizu_core.repo.inputs import MessageText, read_lines


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
