"""The optional C speedups (`_native/`, built as `_speedups`), or None where they are not built.

pip builds them when it finds a C compiler; without one Mizu installs and runs the same,
in pure Python, only slower. MIZU_PURE_PYTHON=1 turns them off, so the tests can check
that both paths give the same results.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["disabled", "native"]

disabled = bool(os.environ.get("MIZU_PURE_PYTHON"))
native: ModuleType | None = None
if not disabled:
    try:
        from mizu_core import _speedups as native
    except ImportError:
        pass
