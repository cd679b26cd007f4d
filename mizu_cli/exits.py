"""How a failed command ends (SPEC §7): one line on stderr, a hint where one helps, and the
error's exit code. Shared by `main` and the fast paths of `entry`, which run without click."""

from __future__ import annotations

import os
import sys
import traceback

from mizu_core.errors import MizuError


def report(error: Exception, verbose: bool = False) -> int:
    """Print `error` as the one line (and hint) a user reads; return the exit code."""
    if isinstance(error, MizuError):
        if verbose:
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        return error.exit_code
    if isinstance(error, OSError):
        # A full disk is not a bug: said as the store says it, wherever a write the core
        # does not wrap ran out of room.
        from mizu_core.repo.disk import full_disk

        name = error.filename
        full = full_disk(error, os.path.dirname(os.path.abspath(name)) if isinstance(name, str) else None)
        if full is not None:
            return report(full)
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    print("hint: run again with --verbose for the traceback", file=sys.stderr)
    return 1
