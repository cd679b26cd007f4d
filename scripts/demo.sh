#!/usr/bin/env bash
# Mizu's main job on an embedded store, in a throwaway folder: create a repository,
# publish signed and unsigned messages, view them, query them, list them, check the store;
# then share a feed: a node serves it on 127.0.0.1 and a second repository pulls it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
mizu="$PWD/.venv/bin/mizu"
work=$(mktemp -d)
node=
trap '[ -n "$node" ] && kill "$node" 2>/dev/null; rm -rf "$work"' EXIT
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

feed='{"@select": "?content", "@where": {"author": "solipsis", "content": "?content"}}'
step "mizu subscribe '$feed'   # a feed is a query; its CID is the feed's address"
sub=$("$mizu" subscribe "$feed")
echo "$sub"
step "mizu serve --listen /ip4/127.0.0.1/tcp/0 --no-mdns &"
"$mizu" --quiet serve --listen /ip4/127.0.0.1/tcp/0 --no-mdns > serve.out &
node=$!
for _ in $(seq 100); do [ -s serve.out ] && break; sleep 0.1; done
address=$(head -n 1 serve.out)
echo "$address"
mkdir reader && cd reader
step "mizu init; mizu subscribe $sub; mizu remote add origin ADDRESS; mizu pull   # a second repository"
"$mizu" init >/dev/null
"$mizu" subscribe "$sub" 2>/dev/null
"$mizu" remote add origin "$address"
"$mizu" pull
step "mizu query --cid $sub   # the feed, answered locally"
"$mizu" query --cid "$sub"
