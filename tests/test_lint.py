"""House style is checked like behaviour: ruff on everything, mypy --strict on the core and
the two skins (the CLI, the gateway), and the C speedups' type stub against the built module."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "mizu_core", "mizu_cli", "mizu_gateway", "tests", "bench"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_mypy_strict_on_the_core_and_the_skins() -> None:
    # pyproject.toml's [tool.mypy]: strict, files mizu_core, mizu_cli and mizu_gateway
    result = subprocess.run([str(BIN / "mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(importlib.util.find_spec("mizu_core._speedups") is None,
                    reason="the C speedups are not built")
def test_the_c_stub_matches_the_c_module() -> None:
    # stubtest compares _speedups.pyi with the module: names, classes that cannot be
    # subclassed, and the arguments of each function and constructor (names, by position
    # only or not, defaults), which it reads from the docstrings' "name(args)\n--" lines.
    # Without that line a function's arguments go unchecked, so each must have one.
    from mizu_core import _speedups

    unsigned = []
    for name, value in vars(_speedups).items():
        if callable(value):
            try:
                inspect.signature(value)
            except ValueError:
                unsigned.append(name)
    assert unsigned == [], f"give {unsigned} a text signature in mizu_core/_native/ (as the others have)"
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", "pyproject.toml",
                             "mizu_core._speedups"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_point_down_the_layers() -> None:
    # pyproject.toml's [tool.importlinter]: the CLI; the gateway; the public API and sync;
    # feeds; query and files; publish; repo; message. No exceptions are listed.
    result = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The contract is not vacuous: in a copy of the packages where the store imports the
    query engine, lint-imports fails and names the import."""
    import os
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.so")
    for package in ("mizu_core", "mizu_cli"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    kv = tmp_path / "mizu_core" / "repo" / "kv.py"
    kv.write_text(kv.read_text() + "\nfrom mizu_core.query import engine  # noqa\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "mizu_core.repo.kv -> mizu_core.query.engine" in result.stdout


def test_core_never_imports_the_cli() -> None:
    offenders = [str(p) for p in (ROOT / "mizu_core").rglob("*.py")
                 if "mizu_cli" in p.read_text("utf-8") or "import typer" in p.read_text("utf-8")]
    assert offenders == []
