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
# systemd-analyze: cmd/x0xd's TestSystemdUnit runs `systemd-analyze verify`
# (and `security --offline`) on deploy/systemd/x0x-bootstrap.service; it
# needs no running systemd. Debian and Ubuntu, as root; elsewhere the test
# skips (on a Linux CI machine, where CI is set, it fails instead).
if [ "$(uname -s)" = Linux ] && ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
  else
    echo "install-tools: systemd-analyze is missing (Debian/Ubuntu package systemd; run this as root to install it)" >&2
  fi
fi
