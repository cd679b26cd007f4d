"""House style is checked like behaviour: ruff on everything, mypy --strict on the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "mizu_core", "mizu_cli", "tests", "bench"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_mypy_strict_on_the_core() -> None:
    result = subprocess.run([str(BIN / "mypy")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_core_never_imports_the_cli() -> None:
    offenders = [str(p) for p in (ROOT / "mizu_core").rglob("*.py")
                 if "mizu_cli" in p.read_text("utf-8") or "import typer" in p.read_text("utf-8")]
    assert offenders == []
