#!/usr/bin/env bash
# Create .venv with mizu and its test dependencies (once: again only when pyproject.toml,
# setup.py, MANIFEST.in or the C speedups in mizu_core/_native/ change), and byte-compile
# mizu's own modules.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.mizu-stamp
# The C files' names count too: one added, removed or renamed changes the build.
want=$( (cat pyproject.toml setup.py MANIFEST.in mizu_core/_native/*; ls mizu_core/_native) \
  | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/mizu ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up .venv (one time)..." >&2
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip >&2
  .venv/bin/python -m pip install --quiet -e '.[test]' >&2
  echo "$want" > "$stamp"
fi
# pip compiles an installed package, not an editable one: its modules would be compiled at
# every start of `mizu` wherever PYTHONDONTWRITEBYTECODE is set (a third of a cold `mizu query`).
.venv/bin/python -m compileall -q mizu_core mizu_cli mizu_gateway >&2  # errors (a syntax error) on stderr
# IPFS clients written by others, for the gateway's end-to-end tests (tests/e2e/ipfs_clients):
# @helia/verified-fetch (it needs Node 22: the npm package `node` brings one) and ipfs-car.
clients=tests/e2e/ipfs_clients
lock=$(sha256sum < "$clients/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$clients/node_modules/.mizu-stamp" 2>/dev/null)" != "$lock" ]; then
  echo "installing the IPFS clients of the gateway tests (one time)..." >&2
  (cd "$clients" && npm ci --no-audit --no-fund --legacy-peer-deps --loglevel=error) >&2
  echo "$lock" > "$clients/node_modules/.mizu-stamp"
fi
