#!/usr/bin/env bash
# Runs every Go fuzz target in the module briefly, so that CI exercises each
# decoder of network input with generated inputs. FUZZTIME is a go test
# -fuzztime value; the default is an execution count, not a duration,
# because a duration races Go's fuzzing coordinator at the deadline and
# fails spuriously with "context deadline exceeded" on a loaded machine
# (golang/go#75804); a count has no deadline to race.
set -euo pipefail
fuzztime=${FUZZTIME:-5000x}
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
