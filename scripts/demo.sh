#!/usr/bin/env bash
# Mizu's main job on an embedded store, in a throwaway folder: create a repository,
# publish signed and unsigned messages, view them, query them, list them, check the store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mizu="$PWD/.venv/bin/mizu"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
step() { printf '\n$ %s\n' "$*"; }

step mizu init
"$mizu" init
step "echo '{\"text\": \"Hello, world!\"}' | mizu put --no-sign"
hello=$(echo '{"text": "Hello, world!"}' | "$mizu" put --no-sign)
echo "$hello"
step "mizu put --lines   # three signed messages, one per line"
printf '%s\n' \
  '{"author": "solipsis", "content": "roses are red"}' \
  '{"author": "solipsis", "content": "violets are blue"}' \
  '{"author": "shakespeare", "content": "grass is green"}' | "$mizu" put --lines
step mizu view "$hello"
"$mizu" view "$hello"
first=$("$mizu" log --format ndjson | tail -n 2 | head -n 1 | sed 's/.*"cid":"\([^"]*\)".*/\1/')
step mizu view "$first/content"
"$mizu" view "$first/content"
step "mizu query '{\"@select\": \"?content\", \"@where\": {\"author\": \"solipsis\", \"content\": \"?content\"}}'"
"$mizu" query '{"@select": "?content", "@where": {"author": "solipsis", "content": "?content"}}'
step mizu log
"$mizu" log
step mizu id
"$mizu" id
step mizu fsck
"$mizu" fsck
