#!/usr/bin/env bash
# scripts/arm64/test.sh SUITE...: the test product built for aarch64 (debug, .build-arm64) and the named
# swift-testing suites (--filter regexes) run under qemu-user in the build root (QEMU_LD_PREFIX: the
# sysroot's glibc and Swift runtime), e.g.  scripts/arm64/test.sh FailSafeTests HeadroomTests
# Not part of make test. Debian's toolchain lacks lib_Testing_Foundation (the Testing+Foundation
# cross-import overlay): cross-import overlays are turned off for this build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
cd "$here/../.."
[ $# -gt 0 ] || { echo "usage: scripts/arm64/test.sh SUITE..." >&2; exit 2; }
"$here/static-deps.sh" >/dev/null
"$here/make-sdk.sh" >/dev/null
fresh_if_sysroot_changed
install -m 0755 "$(qemu_aarch64)" "$buildroot/usr/local/bin/qemu-aarch64-static"
pc=$sysroot_in/usr/local/lib/pkgconfig:$sysroot_in/usr/lib/aarch64-linux-gnu/pkgconfig:$sysroot_in/usr/share/pkgconfig
in_root env PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$sysroot_in" sh -c "cd /src && \
  nice swift build -j ${JOBS:-2} --build-tests --scratch-path .build-arm64 \
    --swift-sdks-path /opt/swift-sdks --swift-sdk lmc-debian-aarch64 \
    -Xswiftc -Xfrontend -Xswiftc -disable-cross-import-overlays 2>&1" > .build-arm64/test-build.log \
  || { grep -A12 "error:" .build-arm64/test-build.log | head -60; echo "arm64 test: the build failed (.build-arm64/test-build.log)" >&2; exit 1; }
xctest=/src/.build-arm64/aarch64-unknown-linux-gnu/debug/lmcPackageTests.xctest
[ -x "$PWD${xctest#/src}" ] || { echo "arm64 test: $xctest was not built" >&2; exit 1; }
rc=0
for suite in "$@"; do
  echo "== $suite (aarch64, qemu-user)"
  in_root env QEMU_LD_PREFIX="$sysroot_in" QEMU_SET_ENV="LD_LIBRARY_PATH=/usr/libexec/swift/lib/swift/linux" \
    sh -c "cd /src && /usr/local/bin/qemu-aarch64-static $xctest --testing-library swift-testing --filter '$suite'" 2>&1 | tail -5 \
    || rc=1
done
exit $rc
