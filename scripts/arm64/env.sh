# Shared by scripts/arm64/*.sh (sourced): where the cached roots live and how to enter the build root.
# LMC_ARM64_CACHE moves the cache (default /var/cache/lmc-arm64, outside the repo; a few GB).
cache=${LMC_ARM64_CACHE:-/var/cache/lmc-arm64}
# An amd64 Debian sid root: sid's swiftlang (6.2.x) runs there and cross-compiles for aarch64.
buildroot=$cache/sid-amd64
# The aarch64 sysroot (arm64 libc, libstdc++, OpenSSL, libgpiod v1 from bookworm, Swift's aarch64 runtime and
# our static libmodbus), inside the build root so the chroot sees it at /opt/sysroot-arm64.
sysroot_in=/opt/sysroot-arm64
sysroot=$buildroot$sysroot_in
mirror=${LMC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
need_root() { [ "$(id -u)" -eq 0 ] || { echo "scripts/arm64: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }; }

# Bind what a chroot command needs for the time of one call, then unmount again. One call at a time
# (a lock in the cache): two would stack their mounts and fail to unmount each other's.
in_root() {   # in_root CMD...  (runs in $buildroot, with the repo at /src)
  need_root
  mkdir -p "$cache"
  ( flock 9; in_root_unlocked "$@" ) 9>"$cache/.in-root.lock"
}
in_root_unlocked() {
  local repo; repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  mkdir -p "$buildroot/proc" "$buildroot/dev" "$buildroot/src" "$buildroot/opt/swift-packages"
  mount -t proc proc "$buildroot/proc"
  mount --bind /dev "$buildroot/dev"
  mount --bind "$repo" "$buildroot/src"
  # The package dependencies come from this machine's git mirror (/etc/gitconfig: insteadOf), as for x86_64.
  [ -d /opt/swift-packages ] && mount --bind /opt/swift-packages "$buildroot/opt/swift-packages"
  local rc=0
  chroot "$buildroot" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@" || rc=$?
  mountpoint -q "$buildroot/opt/swift-packages" && umount "$buildroot/opt/swift-packages"
  umount "$buildroot/src" "$buildroot/dev" "$buildroot/proc"
  return $rc
}

# The qemu user-mode emulator that runs the aarch64 binary here (qemu-user-static).
qemu_aarch64() {
  command -v qemu-aarch64-static >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null; }
  command -v qemu-aarch64-static
}

# SwiftPM does not notice a changed sysroot (other headers, other .a): build afresh when it was rebuilt.
fresh_if_sysroot_changed() {   # run from the repo
  local stamp=.build-arm64/sysroot-packages
  if ! cmp -s "$sysroot/.lmc-packages" "$stamp"; then
    rm -rf .build-arm64/aarch64-unknown-linux-gnu; mkdir -p .build-arm64; cp "$sysroot/.lmc-packages" "$stamp"
  fi
}
