#!/usr/bin/env bash
# gofmt, go vet and staticcheck over the whole module; fails on any finding.
set -euo pipefail
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
"$(go env GOPATH)/bin/staticcheck" ./...
echo "lint: gofmt, go vet, staticcheck clean"
