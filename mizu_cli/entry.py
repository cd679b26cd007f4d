"""The `mizu` script: the top-level help printed without loading typer and click, which
take most of a bare `mizu --help` (git prints its overview the same way: start-up matters
to shell users); every other command line goes to `mizu_cli.main`."""

from __future__ import annotations

import os
import signal
import sys

HELP = ([], ["--help"], ["-h"])
WIDTH = 80  # click's help is 78 columns from a terminal this wide up, so the text is fixed


def _columns() -> int:
    """The terminal's width, found as click finds it (shutil.get_terminal_size)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
        if columns > 0:
            return columns
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or WIDTH
    except (AttributeError, ValueError, OSError):
        return WIDTH


def main() -> None:
    if sys.argv[1:] in HELP and _columns() >= WIDTH:
        from mizu_cli.overview import OVERVIEW

        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mizu --help | head`
        sys.stdout.write(OVERVIEW)
        sys.exit(0)
    from mizu_cli.main import main as run

    run()
