"""A byte range of a stored file (what the gateway answers a `Range` request with): only
the parts that overlap it are read, and the bytes are exactly the file's."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from mizu_core import Repository
from mizu_core.errors import UsageError
from mizu_core.files.tree import file_size, read_file


@pytest.mark.parametrize("raw_leaves", [False, True])
def test_every_range_is_the_slice_of_the_file(tmp_path: Path, raw_leaves: bool) -> None:
    repo = Repository.memory()
    data = random.Random(7).randbytes(3 * 256 * 1024 + 12345)  # several leaves under one root
    (tmp_path / "f").write_bytes(data)
    cid = repo.add(tmp_path / "f", raw_leaves=raw_leaves)
    assert file_size(repo, cid) == len(data)
    edges = [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, len(data) - 1, len(data)]
    ranges = [(a, b) for a in edges for b in edges if a <= b]
    ranges += [tuple(sorted(random.Random(i).sample(range(len(data) + 1), 2))) for i in range(20)]
    for start, end in ranges:
        assert b"".join(read_file(repo, cid, start, end)) == data[start:end], (start, end)
    assert b"".join(read_file(repo, cid, 1000)) == data[1000:]


def test_a_range_reads_only_the_parts_it_overlaps(tmp_path: Path) -> None:
    repo = Repository.memory()
    (tmp_path / "f").write_bytes(bytes(4 * 256 * 1024))
    cid = repo.add(tmp_path / "f")
    read: list[object] = []
    block = repo.block
    repo.block = lambda c: (read.append(c), block(c))[1]  # type: ignore[method-assign]
    assert len(b"".join(read_file(repo, cid, 256 * 1024 + 10, 256 * 1024 + 20))) == 10
    assert len(read) == 2  # the root and the one leaf


def test_a_folder_has_no_size(tmp_path: Path) -> None:
    repo = Repository.memory()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("x")
    with pytest.raises(UsageError, match="is a folder"):
        file_size(repo, repo.add(tmp_path / "d"))
