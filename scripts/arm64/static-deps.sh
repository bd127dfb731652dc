#!/usr/bin/env bash
# The static C libraries of the aarch64 lmc, as scripts/build-static-deps.sh does for x86_64: libmodbus built
# from Debian's source package (bookworm's, the version the x86_64 release and Debian 12 carry; Debian ships
# no libmodbus.a), cross-compiled with the build root's clang, installed into the sysroot's /usr/local.
# libgpiod.a (bookworm, v1), libssl.a and libcrypto.a are the sysroot's own (make-roots.sh). Idempotent.
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$(dirname "$0")/make-roots.sh" >/dev/null
if [ ! -f "$sysroot/usr/local/lib/libmodbus.a" ]; then
  [ -x "$buildroot/usr/bin/dpkg-source" ] || in_root apt-get install -y -qq dpkg-dev >/dev/null
  in_root sh -c 'rm -rf /build/libmodbus && mkdir -p /build/libmodbus && cd /build/libmodbus && apt-get source -qq libmodbus/bookworm' >/dev/null 2>&1
  src=$(cd "$buildroot" && ls -d build/libmodbus/libmodbus-*/ | head -1)
  echo "static-deps: cross-building $(basename "$src") for aarch64 (static)"
  cc="/usr/libexec/swift/bin/clang --target=aarch64-linux-gnu --sysroot=$sysroot_in -fuse-ld=lld"
  in_root sh -c "cd /$src && { [ -x configure ] || autoreconf -fi; } >/dev/null 2>&1 && \
    ./configure -q --host=aarch64-linux-gnu CC='$cc' AR=/usr/libexec/swift/bin/llvm-ar RANLIB=/usr/libexec/swift/bin/llvm-ranlib \
      --enable-static --disable-shared --disable-tests --prefix=/usr/local >/dev/null && \
    make -s -j2 >/dev/null 2>&1 && make -s install DESTDIR=$sysroot_in >/dev/null 2>&1" \
    || { echo "static-deps: libmodbus failed to build: $buildroot/$src/config.log" >&2; exit 1; }
fi
for l in usr/local/lib/libmodbus.a usr/lib/aarch64-linux-gnu/libgpiod.a usr/lib/aarch64-linux-gnu/libssl.a usr/lib/aarch64-linux-gnu/libcrypto.a; do
  [ -f "$sysroot/$l" ] || { echo "static-deps: $sysroot/$l missing" >&2; exit 1; }
  echo "static-deps: $l: $(file -b "$sysroot/$l" | cut -c1-40), $(stat -c %s "$sysroot/$l") bytes"
done
