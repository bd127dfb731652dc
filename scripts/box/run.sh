#!/usr/bin/env bash
# make box-test: the .deb on a booted Debian 12 under qemu (docs/release.md, "Box test").
#   ARCH=amd64 (default): builds out/lmc_*_amd64.deb (make deb) and tests it.
#   ARCH=arm64: qemu-system-aarch64 -M virt; the package from BOX_DEB, else make deb ARCH=arm64 (cross-built).
#   BOX_ONLY=upgrade: only check 6, the upgrade from the previous release (amd64), on its own fresh guest.
#   BOX_ONLY=footprint: boot, install and check 2's footprint reading (lmc's RSS, its largest mappings).
# The image is built once and cached (scripts/box/build-image.sh). Everything the test starts dies with it.
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${ARCH:-amd64}
LMC_BOX_DEPS=$arch scripts/ensure-deps.sh
if [ -n "${BOX_DEB:-}" ]; then
  deb=$BOX_DEB
elif [ "$arch" = "$(dpkg --print-architecture)" ]; then
  make --no-print-directory deb >&2
  deb=out/lmc_$(out/lmc --version)_$arch.deb
else
  make --no-print-directory deb ARCH="$arch" >&2
  deb=$(ls -t out/lmc_*_"$arch".deb 2>/dev/null | head -1 || true)
fi
[ -n "$deb" ] && [ -s "$deb" ] || { echo "box-test: no $arch package: give BOX_DEB=path/to/lmc_VERSION_$arch.deb" >&2; exit 1; }
[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || { echo "box-test: $deb is not an $arch package" >&2; exit 1; }
# Check 6 upgrades from the previous release's own package, built once from its commit and cached
# (scripts/box/old-release.sh; LMC_PREV_RELEASE, a commit, "none" for the relabelled package instead).
# That release had no aarch64 build: the arm64 run installs this package relabelled over itself.
prev=${LMC_PREV_RELEASE:-a110907f2c75b5c94de95bcdc13f6256e1dc1599}
old=()
if [ "$prev" != none ] && [ "$arch" = "$(dpkg --print-architecture)" ]; then
  t0=$(date +%s)
  old_deb=$(scripts/box/old-release.sh "$prev")
  echo "box-test: previous release $old_deb ($(( $(date +%s) - t0 )) s)"
  old=(--old-deb "$old_deb")
fi
t0=$(date +%s)
image=$(nice scripts/box/build-image.sh "$arch")
echo "box-test: image $image ($(( $(date +%s) - t0 )) s)"
# A chain of PR_SET_PDEATHSIG: timeout dies with make, the driver with timeout, and qemu, the peers and
# ssh with the driver. --foreground keeps timeout in make's process group, so Ctrl-C reaches it all.
# BOX_TIMEOUT (s) bounds the driver: the amd64 run with check 6 took 660 s here (3 boots of 57-188 s).
exec setpriv --pdeathsig KILL timeout --foreground --kill-after=10 ${BOX_TIMEOUT:-1800} \
  setpriv --pdeathsig KILL .venv/bin/python scripts/box/box_test.py --arch "$arch" --deb "$deb" --image "$image" "${old[@]}" ${BOX_ONLY:+--only "$BOX_ONLY"}
