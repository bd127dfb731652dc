#!/usr/bin/env bash
# A Swift SDK bundle (artifactbundle: swift-sdk.json + toolset.json) that points SwiftPM in the build root at
# the aarch64 sysroot: its Swift runtime (swiftlang:arm64), glibc, and lld from the build root's toolchain.
# Lives in the build root at /opt/swift-sdks/lmc-debian-aarch64.artifactbundle. Cheap; rewritten every time.
set -euo pipefail
. "$(dirname "$0")/env.sh"
"$(dirname "$0")/make-roots.sh" >/dev/null
swiftlib=$sysroot_in/usr/libexec/swift/lib
# Debian's swiftlang:arm64 has swiftrt.o under swift/linux/aarch64 only; -static-stdlib and
# -static-executable look for it under swift_static/linux/aarch64.
[ -f "$buildroot$swiftlib/swift_static/linux/aarch64/swiftrt.o" ] \
  || cp "$buildroot$swiftlib/swift/linux/aarch64/swiftrt.o" "$buildroot$swiftlib/swift_static/linux/aarch64/swiftrt.o"
# The driver links with <sysroot>/usr/lib/swift_static/linux/aarch64/swiftrt.o; Debian links only
# /usr/lib/swift to its libexec tree.
[ -e "$sysroot/usr/lib/swift_static" ] || ln -s ../libexec/swift/lib/swift_static "$sysroot/usr/lib/swift_static"
b=$buildroot/opt/swift-sdks/lmc-debian-aarch64.artifactbundle
mkdir -p "$b/sdk"
cat > "$b/info.json" <<J
{ "schemaVersion": "1.0",
  "artifacts": { "lmc-debian-aarch64": { "type": "swiftSDK", "version": "1",
                                          "variants": [ { "path": "sdk" } ] } } }
J
cat > "$b/sdk/swift-sdk.json" <<J
{ "schemaVersion": "4.0",
  "targetTriples": { "aarch64-unknown-linux-gnu": {
      "sdkRootPath": "$sysroot_in",
      "swiftResourcesPath": "$swiftlib/swift",
      "swiftStaticResourcesPath": "$swiftlib/swift_static",
      "toolsetPaths": [ "toolset.json" ] } } }
J
# The linker path must be absolute (a relative one is taken relative to the bundle).
cat > "$b/sdk/toolset.json" <<J
{ "schemaVersion": "1.0",
  "swiftCompiler": { "extraCLIOptions": [ "-use-ld=lld" ] },
  "linker": { "path": "/usr/libexec/swift/bin/ld.lld" } }
J
echo "make-sdk: $b (swift-sdk lmc-debian-aarch64, triple aarch64-unknown-linux-gnu)"
