"""Every command has help text and a man page in git's shape (ARCHITECTURE: git habits)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mizu_cli.main import COMMANDS, rendered_overview
from mizu_cli.overview import OVERVIEW
from tests.cli.conftest import run_mizu

MAN = Path(__file__).resolve().parents[2] / "man"
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES")
ALL_NAMES = sorted({*COMMANDS, *(a for _, aliases, _ in COMMANDS.values() for a in aliases)})


@pytest.mark.parametrize("name", ALL_NAMES)
def test_command_has_help(name: str) -> None:
    result = run_mizu(name, "--help")
    assert result.code == 0
    description = result.stdout.split("\n\n")[1].strip()
    assert len(description) > 20, result.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_a_man_page_in_git_shape(name: str) -> None:
    page = MAN / f"mizu-{name}.1"
    assert page.is_file(), f"{page} is missing"
    text = page.read_text("utf-8")
    for section in SECTIONS:
        assert re.search(rf'^\.SH "?{section}"?\s*$', text, re.M), f"{page.name} lacks {section}"


@pytest.mark.parametrize("alias", sorted({a for _, aliases, _ in COMMANDS.values() for a in aliases}))
def test_alias_pages_point_at_their_command(alias: str) -> None:
    assert (MAN / f"mizu-{alias}.1").is_file()


def test_overview_and_layout_pages() -> None:
    assert (MAN / "mizu.1").is_file()
    layout = (MAN / "mizu-repository-layout.5").read_text("utf-8")
    for table in ("spo", "pos", "osp", "term_ids", "blocks", "message_blocks", "log", "pins"):
        assert table in layout


def test_top_level_help_lists_every_command() -> None:
    listing = run_mizu("--help").stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", listing, re.M), name


def test_the_overview_printed_without_click_is_what_click_prints() -> None:
    assert rendered_overview() == OVERVIEW, "run: .venv/bin/python scripts/overview.py"
    assert run_mizu("--help").stdout == OVERVIEW  # in process, through click


@pytest.mark.parametrize(("args", "columns", "fast"), [
    (["--help"], "120", True), (["-h"], "80", True), ([], "100", True),
    (["--help"], "60", False),  # click wraps to a narrower terminal itself
    (["--json", "--help"], "120", False),
])
def test_the_script_prints_the_overview_without_loading_click(
    args: list[str], columns: str, fast: bool
) -> None:
    probe = ("import sys\nfrom mizu_cli.entry import main\ntry:\n    main()\nexcept SystemExit as e:\n"
             "    print('EXIT', e.code, 'click' in sys.modules, file=sys.stderr)")
    env = {**os.environ, "COLUMNS": columns}
    result = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True,
                            text=True, check=True, timeout=60)
    assert result.stderr.splitlines()[-1] == f"EXIT 0 {not fast}"
    assert (result.stdout == OVERVIEW) == (columns != "60")
