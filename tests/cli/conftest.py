"""Run `mizu` in process, with its real error mapping, and capture what it prints."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mizu_cli.main import main


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


Mizu = Callable[..., Result]


def run_mizu(*args: str, input: bytes | str = b"", cwd: Path | None = None) -> Result:
    data = input.encode("utf-8") if isinstance(input, str) else input
    saved = sys.stdin, sys.stdout, sys.stderr, os.getcwd()
    out, err = io.BytesIO(), io.BytesIO()
    # Keep the wrappers referenced: a collected TextIOWrapper closes its buffer.
    streams = (
        io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    )
    sys.stdin, sys.stdout, sys.stderr = streams
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        main(list(args))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdin, sys.stdout, sys.stderr, cwd_before = saved
        os.chdir(cwd_before)
    result = Result(code, out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8"))
    for stream in streams:
        if not stream.closed:
            stream.detach()
    return result


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    assert run_mizu("init", str(tmp_path)).code == 0
    return tmp_path


@pytest.fixture
def mizu(repo_dir: Path) -> Mizu:
    """`mizu` run inside a fresh repository."""

    def run(*args: str, input: bytes | str = b"") -> Result:
        return run_mizu(*args, input=input, cwd=repo_dir)

    return run
