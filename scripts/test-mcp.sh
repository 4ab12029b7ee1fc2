#!/usr/bin/env bash
# Tests x0x's MCP server (`x0x mcp`, issue 12) with a real MCP client, the
# Python `mcp` package's stdio client:
#   1. builds build/x0xd and build/x0x;
#   2. creates a virtual environment in build/mcp-venv (reused on later
#      runs) with mcp==$MCP_VERSION;
#   3. starts two x0xd daemons on 127.0.0.1 in a temporary directory, reads
#      their HTTP addresses from their "x0xd ready" lines and connects the
#      first to the second (x0x connect with the second's dial address);
#   4. runs tests/mcp/test_mcp.py, which spawns `x0x mcp` for each daemon
#      and asserts on the tool results (see that file).
# The daemons are stopped and the directory removed on exit. Only
# 127.0.0.1 is used (and PyPI, for the venv). About 15 s after the build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
MCP_VERSION=2.3.0

if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "missing: python3-venv (install it, or run as root on Debian)" >&2
    exit 1
  fi
fi

echo "== go build x0xd x0x"
go build -o build/ ./cmd/x0xd ./cmd/x0x

venv=build/mcp-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(0)' 2>/dev/null; then
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_VERSION')" 2>/dev/null; then
  echo "== pip install mcp==$MCP_VERSION"
  "$venv/bin/python" -m pip install -q "mcp==$MCP_VERSION"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/x0x-mcp.XXXXXX")
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_daemon N: starts x0xd with data directory $tmp/dN.
start_daemon() {
  mkdir -p "$tmp/d$1"
  build/x0xd -listen 127.0.0.1:0 -http 127.0.0.1:0 -data-dir "$tmp/d$1" >"$tmp/d$1.out" 2>"$tmp/d$1.log" &
  pids+=($!)
}

# http_addr N PID: prints daemon N's HTTP address once its ready line is
# out (30 s at most).
http_addr() {
  local n=$1 pid=$2 line="" _
  for _ in $(seq 300); do
    line=$(grep -m1 '^x0xd ready' "$tmp/d$n.out" || true)
    [ -n "$line" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "x0xd $n exited:" >&2
      cat "$tmp/d$n.log" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "x0xd $n: no ready line within 30 s" >&2
    cat "$tmp/d$n.log" >&2
    return 1
  fi
  sed -E 's/.* http=([^ ]+).*/\1/' <<<"$line"
}

echo "== two daemons"
start_daemon 1
start_daemon 2
http1=$(http_addr 1 "${pids[0]}")
http2=$(http_addr 2 "${pids[1]}")
echo "daemon 1: http=$http1; daemon 2: http=$http2"
x0x1=(build/x0x --api "$http1" --data-dir "$tmp/d1")
x0x2=(build/x0x --api "$http2" --data-dir "$tmp/d2")
dial2=$("${x0x2[@]}" --json id | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["dial_addr"])')
"${x0x1[@]}" connect "$dial2"

echo "== tests/mcp/test_mcp.py (mcp $MCP_VERSION)"
timeout 150 "$venv/bin/python" tests/mcp/test_mcp.py --x0x build/x0x \
  --node "$http1" "$tmp/d1" --node "$http2" "$tmp/d2"
