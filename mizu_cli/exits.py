"""How a failed command ends (SPEC §7): one line on stderr, a hint where one helps, and the
error's exit code. Shared by `main` and the fast paths of `entry`, which run without click."""

from __future__ import annotations

import errno
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
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        # Not a bug: said as the store says it (mizu_core/repo/kv.py `no_space`), wherever
        # a write the core does not wrap ran out of room.
        name = error.filename
        where = f" holding {os.path.dirname(os.path.abspath(name))}" if isinstance(name, str) else ""
        quota = " (disk quota exceeded)" if error.errno == errno.EDQUOT else ""
        print(f"error: no space left on the device{where}{quota}", file=sys.stderr)
        return 1
    print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    print("hint: run again with --verbose for the traceback", file=sys.stderr)
    return 1
