#!/usr/bin/env bash
# make release-check ARCH=arm64: what can be checked of the aarch64 release on an amd64 machine.
# out/arm64/lmc is a static aarch64 executable without test hooks, runs --version and a short demo under
# qemu-user; the .deb is arm64 and lintian has nothing to say beyond packaging/lintian-overrides.
# Installing the .deb needs an arm64 system (the box, or a VM): not done here.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/arm64/env.sh
fail() { echo "release-check arm64: FAIL: $*" >&2; exit 1; }
bin=out/arm64/lmc
desc=$(file -b "$bin")
echo "$desc" | grep -q "ARM aarch64" || fail "$bin is not aarch64: $desc"
echo "$desc" | grep -q "statically linked" || fail "$bin is not statically linked: $desc"
readelf -lW "$bin" | grep -q "INTERP" && fail "$bin has a program interpreter (dynamic loader)"
echo "release-check arm64: $bin is static aarch64, $(stat -c %s "$bin") bytes, stripped: $(echo "$desc" | grep -q 'not stripped' && echo no || echo yes)"
qemu=$(qemu_aarch64)
version=$("$qemu" "$bin" --version) || fail "--version under qemu"
for hook in LMC_GPIO_SIMULATOR LMC_WALL_CLOCK_OFFSET_FILE lmc-sim stuck= LMC_RING_SYNC_DELAY_MS HTTPFaultPlan; do
  if strings "$bin" | grep -F -- "$hook" >/dev/null; then fail "$bin contains the test hook string $hook"; fi
done
repo=$PWD
t0=$(date +%s)
out=$(cd /tmp && LMC_HW_DIR="$repo/hw" timeout 600 "$qemu" "$repo/$bin" demo --seconds 4 --plain --plot /tmp/lmc-release-check-arm64.svg 2>&1) || fail "demo: $out"
echo "$out" | grep -q "summary of the day" || fail "demo printed no summary: $out"
echo "release-check arm64: lmc $version ran --version and its demo under $(basename "$qemu") ($(( $(date +%s) - t0 )) s)"
deb=out/lmc_${version}_arm64.deb
[ -f "$deb" ] || fail "$deb missing (make deb ARCH=arm64)"
[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || fail "$deb: Architecture $(dpkg-deb -f "$deb" Architecture)"
x=$(mktemp -d); trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"; cmp -s "$x/usr/bin/lmc" "$bin" || fail "$deb does not carry $bin"
command -v lintian >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lintian >/dev/null; }
tags=$(lintian --display-info --display-experimental --pedantic --tag-display-limit 0 "$deb" 2>&1 | grep -v '^running with root privileges is not recommended!$') || true
[ -z "$tags" ] || fail "lintian on $deb:
$tags"
echo "release-check arm64: $deb is arm64, carries $bin; lintian has nothing to say beyond $(grep -c '^lmc:' packaging/lintian-overrides) justified overrides"
echo "release-check arm64: not checked here: installing it (needs an arm64 system)"
