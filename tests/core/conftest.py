"""Core tests run against both stores: the in-memory twin and real LMDB files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mizu_core import Repository


@pytest.fixture(params=["memory", "lmdb"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    r = Repository.memory() if request.param == "memory" else Repository.init(tmp_path)
    yield r
    r.close()
