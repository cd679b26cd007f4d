#!/usr/bin/env bash
# Run the whole test suite (core, CLI in process, end-to-end with the installed binary),
# then the core tier again in pure Python (MIZU_PURE_PYTHON=1: the C speedups off, as on a
# machine without a C compiler). Both must pass. Arguments (a path, -k, -x, ...) go to the
# main run alone, and skip the second: they ask for particular tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/python -m pytest -q
echo "the core tier again, in pure Python (MIZU_PURE_PYTHON=1):" >&2
MIZU_PURE_PYTHON=1 exec .venv/bin/python -m pytest -q tests/core
