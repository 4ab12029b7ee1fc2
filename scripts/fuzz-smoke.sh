#!/usr/bin/env bash
# Runs every Go fuzz target in the module briefly (FUZZTIME each, default 3s),
# so that CI exercises each decoder of network input with generated inputs.
set -euo pipefail
fuzztime=${FUZZTIME:-3s}
pkgs=$(go list ./...)
count=0
for pkg in $pkgs; do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for target in $targets; do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -parallel=2 "$pkg" >/tmp/x0x-fuzz.log 2>&1 || {
      cat /tmp/x0x-fuzz.log; echo "fuzz target $target in $pkg failed"; exit 1; }
    count=$((count + 1))
  done
done
echo "fuzz smoke: $count targets ran"
