"""Write mizu_cli/overview.py: `mizu --help` as click renders it, which mizu_cli/entry.py
prints without loading click (tests/cli/test_help_and_manuals.py checks they agree).

Run after changing a command's summary or a global option:
    .venv/bin/python scripts/overview.py
"""

from __future__ import annotations

from pathlib import Path

from mizu_cli.main import rendered_overview

TARGET = Path(__file__).resolve().parent.parent / "mizu_cli" / "overview.py"

if __name__ == "__main__":
    TARGET.write_text(
        '"""`mizu --help`, as click renders it 78 columns wide: written by scripts/overview.py,\n'
        'printed by entry.py without loading click."""\n\n'
        'OVERVIEW = """\\\n' + rendered_overview().replace("\\", "\\\\") + '"""\n',
        encoding="utf-8",
    )
    print(f"wrote {TARGET}")
