#!/usr/bin/env bash
# Builds the C ABI of x0x from capi/:
#   build/lib/libx0x.so.0   shared library (soname libx0x.so.0, exports only x0x_*)
#   build/lib/libx0x.so     symlink to it (for -lx0x)
#   build/lib/libx0x.a      static archive (c-archive, e.g. for the Node addon)
#   build/x0x.pc            pkg-config file
# The header is include/x0x.h (hand-written; the headers Go generates are
# removed so that nobody uses them by mistake).
# Environment: GO (default go); PREFIX: when set, x0x.pc describes an
# installed layout ($PREFIX/lib, $PREFIX/include) instead of this tree;
# RPATH: 1 puts -Wl,-rpath,${libdir} in x0x.pc's Libs, so that a program
# linked with `pkg-config --libs x0x` finds libx0x.so.0 when it runs without
# LD_LIBRARY_PATH; 0 leaves it out. The default is 1 for this tree (build/lib
# is on no loader path) and 0 with PREFIX (an installed library is found by
# the loader's own search, e.g. /usr/local/lib after ldconfig; distributions
# avoid rpaths; set RPATH=1 for a private prefix such as /opt/x0x).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
GO=${GO:-go}
lib=build/lib
mkdir -p "$lib"
export CGO_ENABLED=1

major=$(sed -n 's/^#define X0X_ABI_VERSION_MAJOR \([0-9]*\)$/\1/p' include/x0x.h)
minor=$(sed -n 's/^#define X0X_ABI_VERSION_MINOR \([0-9]*\)$/\1/p' include/x0x.h)
[ -n "$major" ] && [ -n "$minor" ] || { echo "cannot read the ABI version from include/x0x.h" >&2; exit 1; }
soname="libx0x.so.$major"

"$GO" build -buildmode=c-shared -trimpath \
  -ldflags "-extldflags '-Wl,-soname,$soname -Wl,--version-script=$root/capi/libx0x.map'" \
  -o "$lib/$soname" ./capi
rm -f "$lib/libx0x.so.h"
ln -sfn "$soname" "$lib/libx0x.so"

"$GO" build -buildmode=c-archive -trimpath -o "$lib/libx0x.a" ./capi
rm -f "$lib/libx0x.h"

if [ -n "${PREFIX:-}" ]; then
  prefix=$PREFIX libdir='${prefix}/lib' includedir='${prefix}/include' rpath=${RPATH:-0}
else
  prefix=$root libdir=$root/$lib includedir=$root/include rpath=${RPATH:-1}
fi
case $rpath in
  1) rpath_flag='-Wl,-rpath,${libdir} ' ;;
  0) rpath_flag= ;;
  *) echo "RPATH must be 0 or 1, got '$rpath'" >&2; exit 2 ;;
esac
sed -e "s|@PREFIX@|$prefix|" -e "s|@LIBDIR@|$libdir|" -e "s|@INCLUDEDIR@|$includedir|" \
  -e "s|@RPATH@|$rpath_flag|" -e "s|@VERSION@|$major.$minor.0|" capi/x0x.pc.in >build/x0x.pc
echo "built $lib/$soname $lib/libx0x.so $lib/libx0x.a build/x0x.pc"
