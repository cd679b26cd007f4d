"""End-to-end helpers: the installed `mizu` binary in real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

MIZU = str(Path(sys.executable).parent / "mizu")


def mizu(*args: str, cwd: Path, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run([MIZU, *args], cwd=cwd, input=input, capture_output=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"mizu {' '.join(args)} exited {result.returncode}: {result.stderr.decode()}")
    return result


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    mizu("init", cwd=tmp_path)
    return tmp_path


def ndjson(count: int, tag: str) -> bytes:
    return b"".join(
        b'{"batch": "%s", "n": %d, "tags": ["a", "b"], "meta": {"size": %d, "ok": true}}\n'
        % (tag.encode(), i, i * 7)
        for i in range(count)
    )
