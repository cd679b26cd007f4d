"""The public Python API: docs/api.md's examples run as written, and `mizu_core` exports
exactly what it lists."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

import pytest

import mizu_core

API_DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_examples_in_docs_api_md_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testfile(
        str(API_DOCS), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert tried > 30 and failures == 0


def test_every_public_name_is_there_and_typed() -> None:
    for name in mizu_core.__all__:
        assert getattr(mizu_core, name) is not None
    assert sorted(dir(mizu_core)) == sorted(mizu_core.__all__)
    assert (Path(mizu_core.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError):
        _ = mizu_core.Ingest  # type: ignore[attr-defined]


def test_importing_one_module_does_not_load_the_store() -> None:
    import subprocess
    import sys

    code = "import sys, mizu_core.errors; print('mizu_core.repo.repository' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"
