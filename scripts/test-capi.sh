#!/usr/bin/env bash
# Builds the C ABI (scripts/build-capi.sh) and checks it:
#   1. the shared library exports exactly the functions declared in
#      include/x0x.h (nothing but x0x_*), carries soname libx0x.so.0, and
#      build/x0x.pc works with pkg-config: a program built with nothing but
#      `cc prog.c $(pkg-config --cflags --libs x0x)` runs without
#      LD_LIBRARY_PATH (the .pc file carries the rpath of build/lib);
#   2. the header compiles as strict C99 and as C++;
#   3. tests/c/test_x0x.c, built with AddressSanitizer + UBSan (leak checking
#      on) against libx0x.so.0 through pkg-config, passes;
#   4. tests/c/asan_probe.c proves the sanitizer sees library-owned memory
#      (a leak, a double x0x_free and a use after x0x_events_release must all
#      be reported; a clean run must not be);
#   5. test_x0x linked statically against libx0x.a passes too.
# Only 127.0.0.1 is used. Needs gcc (with libasan), g++, binutils and
# pkg-config; as root on Debian/Ubuntu, missing ones are installed with apt-get.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v nm >/dev/null && command -v readelf >/dev/null || need+=(binutils)
command -v pkg-config >/dev/null || need+=(pkg-config)
if command -v gcc >/dev/null && ! echo 'int main(void){return 0;}' | gcc -fsanitize=address -x c - -o /dev/null 2>/dev/null; then
  need+=(gcc) # libasan comes with Debian's gcc package
fi
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

./scripts/build-capi.sh
lib=build/lib
work=$(mktemp -d /tmp/x0x-capi-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== exported symbols"
nm -D --defined-only "$lib/libx0x.so.0" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$work/exported"
grep -E '^(int|void|uint32_t|const char \*)' include/x0x.h | grep -oE 'x0x_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$work/declared"
if grep -v '^x0x_' "$work/exported"; then
  echo "FAIL: libx0x.so.0 exports symbols other than x0x_* (above)"; exit 1
fi
if ! diff -u "$work/declared" "$work/exported"; then
  echo "FAIL: exported functions differ from include/x0x.h (- declared only, + exported only)"; exit 1
fi
echo "ok: $(wc -l <"$work/exported") symbols, all x0x_* and all declared in include/x0x.h"
soname=$(readelf -d "$lib/libx0x.so.0" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = libx0x.so.0 ] || { echo "FAIL: soname is '$soname', want libx0x.so.0"; exit 1; }
[ "$(readlink "$lib/libx0x.so")" = libx0x.so.0 ] || { echo "FAIL: libx0x.so is not a symlink to libx0x.so.0"; exit 1; }
echo "ok: soname libx0x.so.0, libx0x.so -> libx0x.so.0"

export PKG_CONFIG_PATH="$root/build${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$(pkg-config --cflags x0x)
libs=$(pkg-config --libs x0x)
static_libs=$(pkg-config --static --libs x0x)
echo "ok: pkg-config x0x $(pkg-config --modversion x0x): $cflags $libs"
cat >"$work/pc_prog.c" <<'EOF'
#include <stdio.h>
#include <x0x.h>
int main(void) {
    uint32_t v = x0x_abi_version();
    x0x_config cfg;
    if (v >> 16 != X0X_ABI_VERSION_MAJOR || (v & 0xffff) < X0X_ABI_VERSION_MINOR) return 2;
    if (x0x_config_new(&cfg) != X0X_OK || x0x_config_destroy(cfg) != X0X_OK) return 3;
    printf("libx0x ABI %u.%u\n", (unsigned)(v >> 16), (unsigned)(v & 0xffff));
    return 0;
}
EOF
# Built exactly as the documentation says (word splitting intended), then
# run with no LD_LIBRARY_PATH: the rpath in x0x.pc must be enough.
# shellcheck disable=SC2046
gcc -std=c11 -Wall -Wextra -Werror "$work/pc_prog.c" $(pkg-config --cflags --libs x0x) -o "$work/pc_prog"
if ! out=$(env -u LD_LIBRARY_PATH "$work/pc_prog" 2>&1); then
  echo "$out"
  echo "FAIL: a program built with \$(pkg-config --cflags --libs x0x) does not run without LD_LIBRARY_PATH"
  exit 1
fi
echo "ok: a program built with \$(pkg-config --cflags --libs x0x) runs without LD_LIBRARY_PATH ($out)"

echo "== header"
echo '#include "x0x.h"' | gcc -std=c99 -Wall -Wextra -pedantic -Werror $cflags -x c -fsyntax-only -
echo '#include "x0x.h"' | g++ -std=c++11 -Wall -Wextra -pedantic -Werror $cflags -x c++ -fsyntax-only -
echo "ok: compiles as C99 and C++11"

san=(-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
# detect_leaks: LeakSanitizer runs at exit. The Go runtime's own memory is
# not malloc'd, so it is not reported; every malloc'd block the library hands
# out (strings, ID arrays, bundles, event fields) is.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1

echo "== test_x0x (shared library, ASan + UBSan)"
gcc -std=c11 -Wall -Wextra -Werror "${san[@]}" $cflags tests/c/test_x0x.c $libs \
  -Wl,-rpath,"$root/$lib" -lpthread -o "$work/test_x0x"
"$work/test_x0x" | tee "$work/test.out"
tail -n1 "$work/test.out" | grep -Eq '^[0-9]+ passed, 0 failed$' || { echo "FAIL: test_x0x"; exit 1; }

echo "== sanitizer self-check"
gcc -std=c11 -Wall -Wextra -Werror "${san[@]}" $cflags tests/c/asan_probe.c $libs \
  -Wl,-rpath,"$root/$lib" -o "$work/asan_probe"
"$work/asan_probe" clean "$work/probe-clean" >"$work/probe.log" 2>&1 || { cat "$work/probe.log"; echo "FAIL: clean probe reported errors"; exit 1; }
for mode in leak double-free use-after-release; do
  if "$work/asan_probe" "$mode" "$work/probe-$mode" >"$work/probe.log" 2>&1; then
    cat "$work/probe.log"; echo "FAIL: ASan did not report the $mode probe"; exit 1
  fi
  grep -Eq 'ERROR: (LeakSanitizer|AddressSanitizer)' "$work/probe.log" || {
    cat "$work/probe.log"; echo "FAIL: $mode probe failed without a sanitizer report"; exit 1; }
  echo "ok: ASan reports $mode of library-owned memory"
done

echo "== test_x0x (static archive)"
gcc -std=c11 -Wall -Wextra -Werror -g -O1 $cflags tests/c/test_x0x.c "$lib/libx0x.a" \
  $(sed 's/-lx0x//; s/-L[^ ]*//' <<<"$static_libs") -lpthread -o "$work/test_x0x_static"
"$work/test_x0x_static" >"$work/static.out"
tail -n1 "$work/static.out"
tail -n1 "$work/static.out" | grep -Eq '^[0-9]+ passed, 0 failed$' || { cat "$work/static.out"; echo "FAIL: static test_x0x"; exit 1; }
echo "capi: all checks passed"
