#!/usr/bin/env bash
# Installs the tools `make test` needs that are not part of the Go toolchain.
# Pinned versions; idempotent; safe to run as root on a fresh machine.
set -euo pipefail
STATICCHECK_VERSION=v0.8.2
# actionlint checks .github/workflows/ (scripts/lint.sh).
ACTIONLINT_VERSION=v1.7.12
bin="$(go env GOPATH)/bin"
if ! "$bin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  GOFLAGS= go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"
fi
actionlint_version=$("$bin/actionlint" -version 2>/dev/null || true)
if ! grep -qxF "$ACTIONLINT_VERSION" <<<"$actionlint_version"; then
  GOFLAGS= go install "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
fi
