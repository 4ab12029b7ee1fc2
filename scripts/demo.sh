#!/usr/bin/env bash
# The main job: a local network on loopback (127.0.0.1 only).
#
# 1. Starts x0xd (the bootstrap node) with a throw-away data directory.
# 2. The team: three agents, one in Go (build/x0x-demo -team), one in Node
#    (bindings/node/examples/team-agent.js) and one in Python
#    (bindings/python/examples/team_agent.py), join through x0xd, say hello
#    to each other on a topic, and work one task list together (add, claim,
#    complete, with a concurrent claim); then, phase 2, Go creates a private
#    MLS group (post-quantum suite), invites Node and Python (key packages
#    fetched and Welcomes sent over direct connections), and the three share
#    a task list sealed with the group's keys and talk inside the group.
#    The protocol is in cmd/x0x-demo/team.go. Their transcripts interleave
#    below.
# 3. alice and bob (Go) exchange direct messages, bob restarts and alice
#    reconnects by herself; x0xd's /health and /metrics are checked.
# 4. x0xd is stopped with SIGTERM and must shut down cleanly.
# Exits non-zero if any step fails. Expects `make build`, the C library and
# the Node addon to be built (the Makefile's demo target does that).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=build
work=$(mktemp -d /tmp/x0x-demo.XXXXXX)
daemon_pid=
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
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
# The local API's bearer token (every route but /health needs it): the
# ready line names its file in x0xd's data directory (the rest of the line).
token_file=$(sed -E 's/.* token_file=//' <<<"$ready")
[ -s "$token_file" ] || { echo "x0xd's token file $token_file is missing"; exit 1; }
echo "[x0xd]    bootstrap node ${machine:0:8} on udp $udp, http $http"

echo "== the team: Go, Node and Python agents on one topic and one task list"
team="$work/team"
mkdir -p "$team"
"$bin/x0x-demo" -team "$team" -bootstrap "$machine@$udp" -timeout 180s &
pids+=($!)
node bindings/node/examples/team-agent.js "$team" "$machine@$udp" &
pids+=($!)
PYTHONPATH="$root/bindings/python/src" X0X_LIB="$root/build/lib/libx0x.so.0" \
  python3 bindings/python/examples/team_agent.py "$team" "$machine@$udp" &
pids+=($!)
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "team agent $((i + 1)) of 3 failed"; failed=1; }
done
pids=()
[ "$failed" = 0 ] || exit 1
echo "== the team finished: every agent saw the same final list"

echo "== alice and bob: direct messages, a restart, the daemon's health"
"$bin/x0x-demo" -bootstrap "$machine@$udp" -health "http://$http" -token-file "$token_file"

kill -TERM "$daemon_pid"
if ! wait "$daemon_pid"; then cat "$work/x0xd.log"; echo "x0xd did not shut down cleanly"; exit 1; fi
daemon_pid=
echo "[x0xd]    stopped cleanly on SIGTERM"
