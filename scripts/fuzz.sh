#!/usr/bin/env bash
# Runs every fuzz target for a while (default 20s each) and keeps what the
# fuzzer found interesting in the package's testdata/fuzz, so `go test`
# replays it forever after. Usage: scripts/fuzz.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-20s}
cache=$(go env GOCACHE)/fuzz
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "== $pkg $target ($dur)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$dur" "$pkg"
    # Keep up to 200 of the generated inputs beside the seed corpus.
    src="$cache/$pkg/$target"
    if [ -d "$src" ]; then
      mkdir -p "$dir/testdata/fuzz/$target"
      ls "$src" | head -200 | while read -r f; do cp -n "$src/$f" "$dir/testdata/fuzz/$target/" 2>/dev/null || true; done
    fi
  done
done
