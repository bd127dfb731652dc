#!/usr/bin/env bash
# make deb: out/lmc_VERSION_ARCH.deb from the static out/lmc (make release) and the files of this repo.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x out/lmc ] || { echo "make-deb: out/lmc missing; run make release first" >&2; exit 1; }
version=$(out/lmc --version)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/lmc_${version}_${arch}"

install -D -m 0755 out/lmc                     "$root/usr/bin/lmc"
install -D -m 0644 systemd/lmc.service          "$root/usr/lib/systemd/system/lmc.service"
install -D -m 0644 systemd/lmc.sysusers         "$root/usr/lib/sysusers.d/lmc.conf"
install -D -m 0644 systemd/lmc.tmpfiles         "$root/usr/lib/tmpfiles.d/lmc.conf"
install -D -m 0644 systemd/sshd-lmc-logs.conf   "$root/etc/ssh/sshd_config.d/lmc-logs.conf"
install -D -m 0640 hw/examples/lmc.toml         "$root/etc/lmc/lmc.toml"
for f in $(cd hw && find meters chargers examples -type f) README.md; do
  install -D -m 0644 "hw/$f" "$root/usr/share/lmc/hw/$f"
done
# lmc simulate finds these by name (scenarios/README.md).
for f in scenarios/*.csv scenarios/README.md; do install -D -m 0644 "$f" "$root/usr/share/lmc/$f"; done
install -D -m 0644 README.md "$root/usr/share/doc/lmc/README.md"
for f in docs/*.md systemd/README.md; do install -D -m 0644 "$f" "$root/usr/share/doc/lmc/$f"; done
install -D -m 0644 packaging/copyright "$root/usr/share/doc/lmc/copyright"
install -D -m 0644 packaging/lintian-overrides "$root/usr/share/lintian/overrides/lmc"
gzip -9n -c packaging/changelog > "$stage/changelog.gz"
install -D -m 0644 "$stage/changelog.gz" "$root/usr/share/doc/lmc/changelog.gz"

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" packaging/control > "$root/DEBIAN/control"
printf '/etc/lmc/lmc.toml\n/etc/ssh/sshd_config.d/lmc-logs.conf\n' > "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/$s" "$root/DEBIAN/$s"; done

mkdir -p out
dpkg-deb --root-owner-group --build "$root" "out/lmc_${version}_${arch}.deb" >/dev/null
echo "out/lmc_${version}_${arch}.deb"
