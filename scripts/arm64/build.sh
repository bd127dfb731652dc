#!/usr/bin/env bash
# make release ARCH=arm64: a fully static, stripped aarch64 lmc in out/arm64/lmc, cross-compiled on an
# amd64 machine by Debian sid's Swift in the cached build root (make-roots.sh, static-deps.sh, make-sdk.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
cd "$here/../.."
"$here/make-roots.sh"
"$here/static-deps.sh"
"$here/make-sdk.sh"
jobs=${JOBS:-2}
fresh_if_sysroot_changed
rm -f .build-arm64/aarch64-unknown-linux-gnu/release/lmc
# SwiftPM ignores PKG_CONFIG_LIBDIR: PKG_CONFIG_PATH names the sysroot's .pc files, PKG_CONFIG_SYSROOT_DIR
# prefixes their -I/-L. libmodbus comes from /usr/local (static-deps.sh), so the link takes our libmodbus.a.
pc=$sysroot_in/usr/local/lib/pkgconfig:$sysroot_in/usr/lib/aarch64-linux-gnu/pkgconfig:$sysroot_in/usr/share/pkgconfig
in_root env PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$sysroot_in" sh -c "cd /src && \
  nice swift build -c release -j $jobs --product lmc --scratch-path .build-arm64 \
    --swift-sdks-path /opt/swift-sdks --swift-sdk lmc-debian-aarch64 \
    --static-swift-stdlib -Xswiftc -static-executable 2>&1" | grep -v "statically linked applications requires at runtime" || true
bin=.build-arm64/aarch64-unknown-linux-gnu/release/lmc
[ -x "$bin" ] || bin=$(ls .build-arm64/*/release/lmc 2>/dev/null | head -1)
[ -n "$bin" ] && [ -x "$bin" ] || { echo "make release ARCH=arm64: the static link failed" >&2; exit 1; }
mkdir -p out/arm64
in_root /usr/libexec/swift/bin/llvm-objcopy --strip-all --remove-section=.comment "/src/$bin" /src/out/arm64/lmc
echo "out/arm64/lmc: $(stat -c %s out/arm64/lmc) bytes, $(file -b out/arm64/lmc | cut -d, -f1-2,5)"
