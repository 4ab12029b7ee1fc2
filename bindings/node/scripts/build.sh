#!/usr/bin/env bash
# Builds the x0x Node-API addon: bindings/node/npm/<platform>/x0x.node, with
# libx0x.a (build/lib, from scripts/build-capi.sh) linked in statically.
# Headers come from the node-api-headers npm package in
# bindings/node/tools/node_modules (installed by scripts/test-node.sh); no
# node-gyp and no header download.
#
# Checks after linking: the .node exports only the Node-API entry points,
# and every x0x_* function libx0x.a defines is linked in (the addon
# declares the ABI 0.2 functions weak so that it can be built against an
# older archive; a weak reference must never stay unresolved when the
# archive has the function).
#
# Environment: CC (default gcc), X0X_LIB (default <repo>/build/lib/libx0x.a),
# NODE_API_HEADERS (default tools/node_modules/node-api-headers/include).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
CC=${CC:-gcc}
lib=${X0X_LIB:-$root/build/lib/libx0x.a}
hdr=${NODE_API_HEADERS:-$here/tools/node_modules/node-api-headers/include}
[ -f "$lib" ] || { echo "build.sh: $lib missing: run scripts/build-capi.sh first" >&2; exit 1; }
[ -f "$hdr/node_api.h" ] || { echo "build.sh: $hdr/node_api.h missing: run npm ci in bindings/node/tools" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) plat=linux-x64 ;;
  Linux-aarch64) plat=linux-arm64 ;;
  *) echo "build.sh: unsupported build platform $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
if ldd --version 2>&1 | grep -qi musl; then plat=$plat-musl; else plat=$plat-gnu; fi
out=$here/npm/$plat
mkdir -p "$out"
work=$(mktemp -d /tmp/x0x-node-build.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat >"$work/exports.map" <<'MAP'
{
  global:
    napi_register_module_v1;
    node_api_module_get_api_version_v1;
  local:
    *;
};
MAP

# -Wl,-Bsymbolic: the addon's own (and Go's) symbols bind inside the .node.
"$CC" -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -shared -fvisibility=hidden \
  -Wall -Wextra -Werror -Wno-unused-parameter \
  -I"$hdr" -I"$root/include" \
  "$here"/src/*.c "$lib" -lpthread -lresolv \
  -Wl,--version-script="$work/exports.map" -Wl,-Bsymbolic -Wl,--no-undefined-version \
  -o "$work/x0x.node"

# Exported (dynamic, defined) symbols: only the Node-API entry points.
nm -D --defined-only "$work/x0x.node" | awk '{print $NF}' | sort -u >"$work/exported"
printf '%s\n' napi_register_module_v1 node_api_module_get_api_version_v1 | sort >"$work/want"
if ! diff -u "$work/want" "$work/exported"; then
  echo "build.sh: x0x.node exports other symbols than the Node-API entry points (diff above)" >&2; exit 1
fi
# Undefined dynamic symbols must come from libc/libpthread/libresolv or Node.
nm -D --undefined-only "$work/x0x.node" | awk '{print $NF}' | sed 's/@.*//' | grep -v -E '^(napi_|node_api_)' >"$work/undef" || true
# Every x0x_* function the archive defines must be defined in the addon.
nm "$lib" 2>/dev/null | awk '$2=="T" && $3 ~ /^x0x_/ {print $3}' | sort -u >"$work/archive"
nm "$work/x0x.node" | awk '($2=="t"||$2=="T") && $3 ~ /^x0x_/ {print $3}' | sort -u >"$work/linked"
missing=$(comm -23 "$work/archive" "$work/linked")
[ -z "$missing" ] || { echo "build.sh: functions in libx0x.a not linked into x0x.node: $missing" >&2; exit 1; }
weak=$(nm "$work/x0x.node" | awk '$2=="w" && $3 ~ /^x0x_/ {print $3}' | tr '\n' ' ')
mv "$work/x0x.node" "$out/x0x.node"
echo "built $out/x0x.node ($(du -h "$out/x0x.node" | cut -f1))${weak:+; not in libx0x.a yet (X0X_ERR_UNSUPPORTED at run time): $weak}"
