"""The `mizu` script. Two command lines that shell users run most are answered without
loading typer and click, which take most of their start-up (git's builtins skip its option
machinery the same way): the top-level help, and a plain `mizu view TARGET`. Everything
else, options included, goes to `mizu_cli.main`."""

from __future__ import annotations

import os
import signal
import sys

HELP: tuple[list[str], ...] = ([], ["--help"], ["-h"])
VIEW = ("view", "view-raw")
WIDTH = 80  # click's help is 78 columns from a terminal this wide up, so the text is fixed


def _columns() -> int:
    """The terminal's width, found as click finds it (shutil.get_terminal_size)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
        if columns > 0:
            return columns
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or WIDTH  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return WIDTH


def _view(target: str) -> int:
    """`mizu view TARGET` as the command runs it, and its exit code."""
    from mizu_cli.exits import report
    from mizu_cli.show import show
    from mizu_cli.state import State

    state = State()
    try:
        show(state.repository(), target)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        return report(e)
    finally:
        state.close()
    return 0


def main() -> None:
    args = sys.argv[1:]
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mizu --help | head` ends quietly, as in main
    if args in HELP and _columns() >= WIDTH:
        from mizu_cli.overview import OVERVIEW

        sys.stdout.write(OVERVIEW)
        sys.exit(0)
    if len(args) == 2 and args[0] in VIEW and not args[1].startswith("-"):
        sys.exit(_view(args[1]))
    from mizu_cli.main import main as run

    run()
