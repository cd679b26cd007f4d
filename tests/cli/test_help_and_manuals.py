"""Every command has help text and a man page in git's shape (ARCHITECTURE: git habits)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mizu_cli.main import COMMANDS
from tests.cli.conftest import run_mizu

MAN = Path(__file__).resolve().parents[2] / "man"
SECTIONS = ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES")
ALL_NAMES = sorted({*COMMANDS, *(a for _, aliases in COMMANDS.values() for a in aliases)})


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


@pytest.mark.parametrize("alias", sorted({a for _, aliases in COMMANDS.values() for a in aliases}))
def test_alias_pages_point_at_their_command(alias: str) -> None:
    assert (MAN / f"mizu-{alias}.1").is_file()


def test_overview_and_layout_pages() -> None:
    assert (MAN / "mizu.1").is_file()
    layout = (MAN / "mizu-repository-layout.5").read_text("utf-8")
    for table in ("spo", "pos", "osp", "term_ids", "blocks", "log", "pins"):
        assert table in layout


def test_top_level_help_lists_every_command() -> None:
    listing = run_mizu("--help").stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", listing, re.M), name
