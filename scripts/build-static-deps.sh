#!/usr/bin/env bash
# Static libraries for the fully static lmc (make release): libmodbus built from Debian's own source
# package (Debian ships no libmodbus.a), libgpiod.a, libssl.a and libcrypto.a from the -dev packages.
# Output: .build-static/lib (and the libmodbus source, for the LGPL relinking note, in .build-static/src).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/.build-static
mkdir -p "$out/lib" "$out/src"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

need=()
command -v dpkg-source >/dev/null 2>&1 || need+=(dpkg-dev)
command -v make >/dev/null 2>&1 || need+=(make)
command -v autoreconf >/dev/null 2>&1 || need+=(autoconf)
command -v automake >/dev/null 2>&1 || need+=(automake)
command -v libtoolize >/dev/null 2>&1 || need+=(libtool)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
dpkg -s libgpiod-dev >/dev/null 2>&1 || need+=(libgpiod-dev)
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then $SUDO apt-get update -qq; $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; fi

if [ ! -f "$out/lib/libmodbus.a" ]; then
  # deb-src for the archive the machine already uses.
  if ! grep -rqs "deb-src" /etc/apt/sources.list /etc/apt/sources.list.d/ ; then
    echo "build-static-deps: enabling deb-src to fetch Debian's libmodbus source"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee /etc/apt/sources.list.d/lmc-deb-src.sources >/dev/null
    else
      grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' | $SUDO tee /etc/apt/sources.list.d/lmc-deb-src.list >/dev/null
    fi
    $SUDO apt-get update -qq
  fi
  (cd "$out/src" && rm -rf libmodbus-* && apt-get source -qq libmodbus >/dev/null 2>&1)
  src=$(ls -d "$out"/src/libmodbus-*/ | head -1)
  echo "build-static-deps: building $(basename "$src") as a static library"
  (cd "$src" && { [ -x configure ] || autoreconf -fi >/dev/null 2>&1; } && ./configure -q --enable-static --disable-shared --disable-tests --prefix="$out/prefix" >/dev/null && make -s -j2 >/dev/null && make -s install >/dev/null)
  cp "$out/prefix/lib/libmodbus.a" "$out/lib/"
fi
multiarch=$(gcc -print-multiarch)
# An engineer's own build of a library (LGPL relinking, packaging/copyright) is kept when present.
for l in libgpiod.a libssl.a libcrypto.a; do [ -f "$out/lib/$l" ] || cp "/usr/lib/$multiarch/$l" "$out/lib/"; done
ls -la "$out/lib"
