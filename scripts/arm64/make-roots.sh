#!/usr/bin/env bash
# The cached roots for the aarch64 build (idempotent: each is built once, then reused):
#   1. $cache/sid-amd64: Debian sid, amd64, minbase + swiftlang (sid's Swift 6.2.x; trixie's 6.0 is too old
#      for swift-tools-version 6.1) and the tools to build libmodbus.
#   2. $cache/sid-amd64/opt/sysroot-arm64: the arm64 packages the static link needs, unpacked (dpkg -x):
#      libc6-dev, libstdc++/libgcc dev from sid; libgpiod-dev 1.6.3 from bookworm (lmc uses the libgpiod v1
#      API, sid has only v2); libssl-dev from bookworm (the x86_64 release's OpenSSL 3.0, with Debian 12's
#      security updates; sid's libcrypto.a would also embed zlib and zstd); swiftlang:arm64 for Swift's aarch64 modules and static libraries,
#      libswiftlang:arm64 for its shared ones (only the debug test build, scripts/arm64/test.sh, uses those).
# Only Debian's archive is used. Nothing here runs aarch64 code (no qemu, no binfmt).
set -euo pipefail
. "$(dirname "$0")/env.sh"
export DEBIAN_FRONTEND=noninteractive
need_root
command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq debootstrap >/dev/null; }

if [ ! -f "$buildroot/.lmc-root-ready" ]; then
  echo "make-roots: debootstrap sid amd64 into $buildroot"
  rm -rf "$buildroot"; mkdir -p "$cache"
  debootstrap --variant=minbase --arch=amd64 sid "$buildroot" "$mirror" > "$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log"; exit 1; }
  # sid's Release can be past its Valid-Until on a mirror snapshot; arm64 is a foreign architecture here
  # (for apt-get download only: nothing arm64 is installed in this root).
  echo 'Acquire::Check-Valid-Until "false";' > "$buildroot/etc/apt/apt.conf.d/99lmc-no-valid-until"
  echo 'APT::Install-Recommends "false";' > "$buildroot/etc/apt/apt.conf.d/99lmc-no-recommends"
  cp /etc/gitconfig "$buildroot/etc/gitconfig" 2>/dev/null || true
  echo "deb [arch=amd64] $mirror sid main" > "$buildroot/etc/apt/sources.list"
  in_root dpkg --add-architecture arm64
  in_root apt-get update -qq
  in_root apt-get install -y -qq swiftlang git ca-certificates pkg-config make autoconf automake libtool file binutils > "$cache/apt-amd64.log" 2>&1 \
    || { tail -20 "$cache/apt-amd64.log"; exit 1; }
  touch "$buildroot/.lmc-root-ready"
fi
echo "make-roots: build root $buildroot: $(in_root swift --version 2>&1 | head -1)"
# arm64 from sid, and bookworm's (with its security updates) for what must match Debian 12.
sources="deb [arch=amd64,arm64] $mirror sid main
deb [arch=arm64] $mirror bookworm main
deb [arch=arm64] ${mirror%/debian}/debian-security bookworm-security main
deb-src $mirror bookworm main"
[ "$(cat "$buildroot/etc/apt/sources.list")" = "$sources" ] || echo "$sources" > "$buildroot/etc/apt/sources.list"

# The C side of the static link, whose arm64 closure goes into the sysroot; OpenSSL comes from bookworm
# below. The sysroot is rebuilt when this list changes.
want="libc6-dev libstdc++-GCC-dev libgcc-GCC-dev zlib1g-dev +libswiftlang +openssl-from-bookworm-security"
if [ ! -f "$sysroot/.lmc-sysroot-ready" ] || [ "$(cat "$sysroot/.lmc-sysroot-ready")" != "$want" ]; then
  echo "make-roots: the arm64 sysroot $sysroot"
  rm -rf "$sysroot" "$buildroot/tmp/arm64-debs"; mkdir -p "$sysroot" "$buildroot/tmp/arm64-debs"
  in_root apt-get update -qq
  # apt-cache names foreign-architecture packages :arm64.
  gccver=$(in_root apt-cache depends gcc:arm64 | sed -n 's/^ *Depends: gcc-\([0-9][0-9]*\):arm64$/\1/p' | head -1)
  [ -n "$gccver" ] || { echo "make-roots: cannot tell sid's default gcc version for arm64" >&2; exit 1; }
  roots=$(for p in $want; do case $p in +*) ;; *) echo "${p//GCC/$gccver}:arm64";; esac; done)
  pkgs=$(in_root apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances $roots \
         | grep -E '^[a-z0-9][^ ]*:arm64$' | sort -u)
  ssl=bookworm; case "$(in_root apt-cache madison libssl-dev:arm64)" in *bookworm-security*) ssl=bookworm-security;; esac
  echo "make-roots: $(echo $pkgs | wc -w) arm64 packages from sid (gcc $gccver), swiftlang:arm64, libgpiod 1.6.3 from bookworm, OpenSSL from $ssl"
  in_root sh -c "cd /tmp/arm64-debs && apt-get download -qq $(echo $pkgs) swiftlang:arm64 libswiftlang:arm64 libgpiod-dev:arm64/bookworm libgpiod2:arm64/bookworm libssl-dev:arm64/$ssl libssl3:arm64/$ssl" \
    > "$cache/apt-arm64.log" 2>&1 || { tail -20 "$cache/apt-arm64.log"; exit 1; }
  for d in "$buildroot"/tmp/arm64-debs/*.deb; do dpkg -x "$d" "$sysroot"; done
  # Merged /usr, as a sid root has it (libc.so names /lib/ld-linux-aarch64.so.1).
  for d in lib bin sbin; do [ -e "$sysroot/$d" ] || ln -s "usr/$d" "$sysroot/$d"; done
  ls "$buildroot"/tmp/arm64-debs/ > "$sysroot/.lmc-packages"
  rm -rf "$buildroot/tmp/arm64-debs"
  echo "$want" > "$sysroot/.lmc-sysroot-ready"
fi
echo "make-roots: arm64 sysroot $sysroot ($(wc -l < "$sysroot/.lmc-packages") packages)"
