#!/usr/bin/env bash
# Builds and tests the Node binding (bindings/node, npm package `x0x`):
#   1. builds libx0x (scripts/build-capi.sh) when build/lib/libx0x.a is
#      missing or older than the Go sources or include/x0x.h;
#   2. installs the build/test tools (node-api-headers, typescript,
#      @types/node) into bindings/node/tools/node_modules with `npm ci` from
#      the committed package-lock.json, skipped when that lock is unchanged;
#   3. builds the addon (bindings/node/scripts/build.sh) into
#      bindings/node/npm/<platform>/x0x.node when it is stale;
#   4. type-checks index.d.ts with tsc and runs `node --test` (the tests
#      include npm pack of the x0x package (the top-level package.json) and
#      of the platform package + their offline install outside the
#      repository + an example + `npx x0x skill install`, and the skill
#      command's signature checks with a throwaway key).
# With --build-only it stops after step 3 (make demo uses that).
# With --bench it then runs bindings/node/bench/events.js (JSON lines).
# With --asan it also builds the addon with AddressSanitizer (build/node-asan)
# and runs the agent, bad-input and task-list tests against it (libasan
# preloaded into node; leak checking off: Node itself does not free at exit).
# Needs Go, gcc, gpg, Node >= 18.17 and npm; only 127.0.0.1 is used by the tests.
# Environment: X0X_NODE_TEST_FILTER (a --test-name-pattern).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
node_dir=bindings/node
bench=0
asan=0
build_only=0
for arg in "$@"; do
  case $arg in
    --bench) bench=1 ;;
    --asan) asan=1 ;;
    --build-only) build_only=1 ;;
    *) echo "usage: $0 [--bench] [--asan] [--build-only]" >&2; exit 2 ;;
  esac
done

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v nm >/dev/null || need+=(binutils)
command -v gpg >/dev/null || need+=(gnupg) # test/skill.test.js: x0x skill install verifies SKILL.md
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing tools: ${need[*]} (install them, or run as root on Debian)" >&2
    exit 1
  fi
fi
for tool in go node npm; do
  command -v "$tool" >/dev/null || { echo "test-node.sh: $tool is required" >&2; exit 1; }
done
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>18||(a===18&&b>=17)?0:1)' ||
  { echo "test-node.sh: Node >= 18.17 is required (have $(node --version))" >&2; exit 1; }

echo "== libx0x"
lib=build/lib/libx0x.a
if [ ! -f "$lib" ] || [ -n "$(find capi core include go.mod go.sum -newer "$lib" -type f 2>/dev/null | head -n1)" ]; then
  ./scripts/build-capi.sh
else
  echo "up to date: $lib"
fi

echo "== tools (npm ci in $node_dir/tools)"
stamp=$node_dir/tools/node_modules/.x0x-lock
if [ -f "$stamp" ] && cmp -s "$stamp" "$node_dir/tools/package-lock.json"; then
  echo "up to date: $node_dir/tools/node_modules"
else
  (cd "$node_dir/tools" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  cp "$node_dir/tools/package-lock.json" "$stamp"
fi

echo "== addon"
addon=$(ls "$node_dir"/npm/*/x0x.node 2>/dev/null | head -n1 || true)
if [ -z "$addon" ] || [ -n "$(find "$lib" "$node_dir/src" "$node_dir/scripts/build.sh" include/x0x.h -newer "$addon" -type f | head -n1)" ]; then
  "$node_dir/scripts/build.sh"
else
  echo "up to date: $addon"
fi
[ "$build_only" = 1 ] && exit 0

echo "== tsc"
(cd "$node_dir" && node tools/node_modules/typescript/bin/tsc -p test/types/tsconfig.json)
echo "ok: index.d.ts type-checks"

echo "== the event thread's wait on its own (scripts/matrix/wait_test.c, ASan + UBSan)"
mkdir -p "$root/build/node-wait"
gcc -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror \
  -I"$root/capi" -I"$root/include" -I"$node_dir/src" "$root/scripts/matrix/wait_test.c" "$node_dir/src/wait.c" \
  "$root/capi/helpers.c" -lpthread -o "$root/build/node-wait/wait_test"
"$root/build/node-wait/wait_test"

echo "== node --test"
cd "$node_dir"
args=(--test)
[ -n "${X0X_NODE_TEST_FILTER:-}" ] && args+=(--test-name-pattern="$X0X_NODE_TEST_FILTER")
X0X_REQUIRE_TOOLS=1 node "${args[@]}" test/*.test.js

if [ "$asan" = 1 ]; then
  echo "== node --test with an AddressSanitizer build of the addon"
  mkdir -p "$root/build/node-asan"
  gcc -std=c11 -D_GNU_SOURCE -O1 -g -fPIC -shared -fsanitize=address -fno-omit-frame-pointer \
    -Wall -Wextra -Werror -Wno-unused-parameter -Itools/node_modules/node-api-headers/include -I"$root/include" \
    src/*.c "$root/$lib" -lpthread -lresolv -o "$root/build/node-asan/x0x.node"
  ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
    X0X_NODE_ADDON="$root/build/node-asan/x0x.node" X0X_REQUIRE_TOOLS=1 \
    node --test test/agent.test.js test/badinput.test.js test/tasklist.test.js test/group.test.js
fi

if [ "$bench" = 1 ]; then
  echo "== bench"
  node bench/events.js
fi
