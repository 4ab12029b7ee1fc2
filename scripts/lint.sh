#!/usr/bin/env bash
# gofmt, go vet and staticcheck over the whole module, and actionlint over
# .github/workflows/; fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
"$(go env GOPATH)/bin/staticcheck" ./...
# actionlint also runs shellcheck on every `run:` script when shellcheck is
# installed (it is on GitHub's Ubuntu runners); the workflows pass both.
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
[ ${#workflows[@]} -gt 0 ] || { echo "lint: no workflows in .github/workflows/"; exit 1; }
"$(go env GOPATH)/bin/actionlint" "${workflows[@]}"
with=$(command -v shellcheck >/dev/null && echo "with shellcheck" || echo "without shellcheck: not installed")
echo "lint: gofmt, go vet, staticcheck, actionlint ($with) clean"
