#!/usr/bin/env bash
# make box-test's guest: a stock Debian 12 (bookworm) with systemd, sshd, a serial console and a kernel,
# as an ext4 image built without a loop mount (debootstrap, then mkfs.ext4 -d). Nothing of lmc is in it.
#
#   scripts/box/build-image.sh amd64|arm64    → prints the image directory
#
# The image is cached in $LMC_BOX_CACHE (default /var/cache/lmc-box) under a key made of this script's
# hash and the architecture: a changed recipe builds a new image; an unchanged one is reused.
# The directory holds rootfs.ext4, vmlinuz, initrd.img and id_ed25519 (root's key, for scp/ssh).
set -euo pipefail
arch=${1:-amd64}
case "$arch" in
  amd64) kernel=linux-image-amd64 ;;
  arm64) kernel=linux-image-arm64 ;;
  *) echo "build-image: ARCH must be amd64 or arm64, not '$arch'" >&2; exit 2 ;;
esac
mirror=${LMC_BOX_MIRROR:-http://deb.debian.org/debian}
cache=${LMC_BOX_CACHE:-/var/cache/lmc-box}
key=$(sha256sum "$0" | cut -c1-12)
dir="$cache/debian12-$arch-$key"
if [ -s "$dir/rootfs.ext4" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then echo "$dir"; exit 0; fi

[ "$(id -u)" -eq 0 ] || { echo "build-image: debootstrap needs root" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/build-$arch.XXXXXX")
root="$work/root"
# Nothing of the host may be mounted inside when the tree is removed.
cleanup() {
  for m in $(awk -v r="$root" '$2 ~ "^"r {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
t0=$(date +%s)
log() { echo "build-image [$arch, $(( $(date +%s) - t0 )) s]: $*" >&2; }

if [ "$arch" != "$(dpkg --print-architecture)" ]; then
  # Another architecture's maintainer scripts run under qemu-user (binfmt_misc, F flag: works in a chroot).
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "build-image: binfmt_misc has no qemu-aarch64 (apt install qemu-user-static binfmt-support)" >&2; exit 1; }
fi

# A stock system: what Debian's standard install of a headless box has that lmc's package relies on
# (systemd, udev, sshd, tzdata), a DHCP client (systemd-networkd) and nothing lmc-specific. No kernel yet:
# its initramfs is made once, after the module list below is in place.
log "debootstrap bookworm"
nice debootstrap --arch="$arch" --variant=minbase \
  --include=systemd,systemd-sysv,udev,dbus,openssh-server,iproute2,procps,kmod,initramfs-tools,less,ncurses-term \
  bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# initramfs with only the modules a virtio guest needs to mount its root: mkinitramfs under qemu-user
# (arm64) takes most of the build otherwise.
cat > "$root/etc/initramfs-tools/conf.d/box" <<'EOT'
MODULES=list
COMPRESS=gzip
EOT
printf '%s\n' virtio_pci virtio_mmio virtio_blk virtio_net ext4 > "$root/etc/initramfs-tools/modules"
log "kernel"
mount -t proc proc "$root/proc"
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$kernel" tzdata \
  > "$work/kernel.log" 2>&1 || { tail -30 "$work/kernel.log" >&2; exit 1; }
chroot "$root" apt-get clean
umount "$root/proc"

echo box > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 box\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' > "$root/etc/fstab"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/20-dhcp.network"
chroot "$root" systemctl enable systemd-networkd >/dev/null 2>&1
# systemd-networkd-wait-online would hold network-online.target for 2 minutes on a slow boot otherwise.
chroot "$root" systemctl enable ssh >/dev/null 2>&1 || true
echo 'root:box' | chroot "$root" chpasswd
# root's key for the test's scp/ssh (the test logs in as root on the console too).
ssh-keygen -q -t ed25519 -N '' -C lmc-box-root -f "$work/id_ed25519"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$work/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
# The serial console: the getty systemd starts on console= gets a 80×24 terminal by default.
rm -f "$root"/etc/ssh/ssh_host_*
chroot "$root" ssh-keygen -A >/dev/null

cp -L "$root/vmlinuz" "$work/vmlinuz" 2>/dev/null || cp "$(ls "$root"/boot/vmlinuz-* | head -1)" "$work/vmlinuz"
cp -L "$root/initrd.img" "$work/initrd.img" 2>/dev/null || cp "$(ls "$root"/boot/initrd.img-* | head -1)" "$work/initrd.img"
log "mkfs.ext4 -d"
truncate -s 3G "$work/rootfs.ext4"
mkfs.ext4 -q -F -L box -d "$root" "$work/rootfs.ext4"
rm -rf "$root"
mkdir -p "$dir"
mv "$work/rootfs.ext4" "$work/vmlinuz" "$work/initrd.img" "$work/id_ed25519" "$work/id_ed25519.pub" "$dir/"
log "done: $dir ($(du -sh "$dir/rootfs.ext4" | cut -f1) used)"
echo "$dir"
