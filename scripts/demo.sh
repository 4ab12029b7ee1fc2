#!/usr/bin/env bash
# The main job: an x0xd bootstrap node and agents on loopback (127.0.0.1 only).
# Starts x0xd with a throw-away data directory, waits for it to be ready,
# runs the demo agents against it, then stops the daemon with SIGTERM and
# checks it shut down cleanly. Exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build
work=$(mktemp -d /tmp/x0x-demo.XXXXXX)
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/x0xd" -data-dir "$work/x0xd" -listen 127.0.0.1:0 -http 127.0.0.1:0 >"$work/x0xd.out" 2>"$work/x0xd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
  grep -q '^x0xd ready' "$work/x0xd.out" 2>/dev/null && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/x0xd.log"; echo "x0xd exited early"; exit 1; }
  sleep 0.1
done
ready=$(grep '^x0xd ready' "$work/x0xd.out") || { cat "$work/x0xd.log"; echo "x0xd not ready"; exit 1; }
machine=$(sed -E 's/.* machine=([0-9a-f]+).*/\1/' <<<"$ready")
udp=$(sed -E 's/.* udp=([^ ]+).*/\1/' <<<"$ready")
http=$(sed -E 's/.* http=([^ ]+).*/\1/' <<<"$ready")
echo "[x0xd]  bootstrap node ${machine:0:8} on udp $udp, http $http"

"$bin/x0x-demo" -bootstrap "$machine@$udp" -health "http://$http"

kill -TERM "$daemon_pid"
if ! wait "$daemon_pid"; then cat "$work/x0xd.log"; echo "x0xd did not shut down cleanly"; exit 1; fi
daemon_pid=
echo "[x0xd]  stopped cleanly on SIGTERM"
