#!/usr/bin/env bash
# Runs every fuzz target in the product modules for FUZZTIME each (default 30s).
# Seeds live in each package's testdata/fuzz/<FuzzName>/ and are also replayed by
# plain `go test`, so the corpus keeps guarding against regressions.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime=${FUZZTIME:-30s}
for mod in controlplane dataplane nodeagent; do
  while IFS= read -r file; do
    dir=$(dirname "$file")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
      echo "== $mod/$dir $target ($fuzztime)"
      (cd "$mod" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./${dir#./}")
    done
  done < <(cd "$mod" && grep -rl --include='*_test.go' '^func Fuzz' . | sort)
done
