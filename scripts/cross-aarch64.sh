#!/usr/bin/env bash
# Cross-build a fully static lmc for the ARM box (aarch64, musl) with Swift's static Linux SDK.
# NOT VERIFIED on the machines this project is built on: no aarch64 Swift SDK can be fetched there.
# See docs/release.md for what was and was not checked.
#
#   1. The SDK matching the toolchain (swift --version says 6.3.1):
#        swift sdk install https://download.swift.org/swift-6.3.1-release/static-sdk/swift-6.3.1-RELEASE/swift-6.3.1-RELEASE_static-linux-0.0.1.artifactbundle.tar.gz \
#          --checksum <the checksum published beside it on swift.org>
#   2. This script: builds libmodbus, libgpiod (v1, as Debian 12) and OpenSSL for aarch64-linux-musl with the
#      SDK's clang and sysroot, then lmc against them. Output: out/aarch64/lmc.
set -euo pipefail
cd "$(dirname "$0")/.."
sdk_id=${LMC_SWIFT_SDK:-aarch64-swift-linux-musl}
bundle=$(swift sdk list 2>/dev/null | grep -m1 static-linux || true)
[ -n "$bundle" ] || { echo "cross-aarch64: no static Linux SDK installed (swift sdk install …, see the header of this script)" >&2; exit 1; }
sdkroot=$(find "${HOME}/.swiftpm/swift-sdks" "${HOME}/.local/swiftpm/swift-sdks" -maxdepth 1 -name "*static-linux*" 2>/dev/null | head -1)
sysroot=$(find "$sdkroot" -type d -path "*musl*aarch64*" -name aarch64 2>/dev/null | head -1)
[ -d "$sysroot" ] || { echo "cross-aarch64: cannot find the aarch64 musl sysroot under $sdkroot" >&2; exit 1; }
out=$PWD/.build-static-aarch64
mkdir -p "$out/src" "$out/lib" "$out/include"
export CC="clang --target=aarch64-unknown-linux-musl --sysroot=$sysroot -fuse-ld=lld"
export AR=llvm-ar RANLIB=llvm-ranlib
# The system-library targets ask pkg-config: let it see only the aarch64 builds.
export PKG_CONFIG_LIBDIR="$out/lib/pkgconfig"
host=aarch64-linux-musl

fetch() { (cd "$out/src" && [ -d "$1"-* ] || apt-get source -qq "$1" >/dev/null 2>&1); ls -d "$out/src/$1"-*/ | head -1; }
build_autotools() {   # $1: Debian source package, rest: configure flags
  local src; src=$(fetch "$1"); shift
  (cd "$src" && { [ -x configure ] || autoreconf -fi; } && ./configure -q --host=$host --enable-static --disable-shared --prefix="$out" "$@" && make -s -j2 && make -s install)
}
[ -f "$out/lib/libmodbus.a" ] || build_autotools libmodbus --disable-tests
[ -f "$out/lib/libgpiod.a" ] || build_autotools libgpiod --disable-tools --disable-bindings-cxx
if [ ! -f "$out/lib/libssl.a" ]; then
  src=$(fetch openssl)
  (cd "$src" && ./Configure linux-aarch64 no-shared no-tests --prefix="$out" --libdir=lib && make -s -j2 build_libs && make -s install_dev)
fi

swift build -c release --product lmc --swift-sdk "$sdk_id" --scratch-path .build-aarch64 \
  -Xcc -I"$out/include" -Xlinker -L"$out/lib"
mkdir -p out/aarch64
llvm-strip -o out/aarch64/lmc .build-aarch64/$sdk_id/release/lmc 2>/dev/null || cp .build-aarch64/*/release/lmc out/aarch64/lmc
file out/aarch64/lmc
