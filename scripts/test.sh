#!/usr/bin/env bash
# Run the whole test suite (core, CLI in process, end-to-end with the installed binary).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
