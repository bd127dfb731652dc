#!/usr/bin/env bash
# The release checks CI runs (make release-check): out/lmc is fully static and runs; the .deb installs,
# its unit verifies, its user and directories are right, and it removes cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "release-check: FAIL: $*" >&2; exit 1; }
bin=out/lmc
file "$bin" | grep -q "statically linked" || fail "$(file "$bin")"
lddout=$(ldd "$bin" 2>&1 || true)
echo "$lddout" | grep -q "not a dynamic executable" || fail "ldd: $lddout"
echo "release-check: $bin is static, $(stat -c %s "$bin") bytes ($(( $(stat -c %s "$bin") / 1048576 )) MiB), stripped: $(file "$bin" | grep -q 'not stripped' && echo no || echo yes)"
"$bin" --version >/dev/null || fail "--version"
# Test hooks are compiled into debug builds only (Package.swift: LMC_TEST_HOOKS): the GPIO simulator
# and its stuck contact, the wall clock offset. grep without -q reads all of strings' output (pipefail).
for hook in LMC_GPIO_SIMULATOR LMC_WALL_CLOCK_OFFSET_FILE lmc-sim stuck= LMC_RING_SYNC_DELAY_MS HTTPFaultPlan; do
  if strings "$bin" | grep -F -- "$hook" >/dev/null; then fail "$bin contains the test hook string $hook"; fi
done
echo "release-check: no test hooks in $bin"
repo=$PWD
out=$(cd /tmp && LMC_HW_DIR="$repo/hw" timeout 120 "$repo/$bin" demo --seconds 4 --plain --plot /tmp/lmc-release-check.svg 2>&1) || fail "demo: $out"
echo "$out" | grep -q "summary of the day" || fail "demo printed no summary: $out"
echo "release-check: the static binary ran its demo"

deb=$(ls out/lmc_*.deb | tail -1)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Debian's own judgement of the package, pedantic and experimental tags included: anything it says that
# packaging/lintian-overrides does not explain (each override there says why) fails the release.
command -v lintian >/dev/null 2>&1 || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq lintian >/dev/null; }
tags=$(lintian --display-info --display-experimental --pedantic --tag-display-limit 0 "$deb" 2>&1 | grep -v '^running with root privileges is not recommended!$') || true
[ -z "$tags" ] || fail "lintian on $deb:
$tags"
echo "release-check: lintian has nothing to say about $deb beyond $(grep -c '^lmc:' packaging/lintian-overrides) justified overrides"
# A fresh install: an lmc left in any state (installed, removed with its /etc/lmc, unpacked) is purged first.
dpkg-query -W -f='${Status}' lmc 2>/dev/null | grep -qv ' not-installed$' && $SUDO dpkg -P lmc >/dev/null || true
$SUDO dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
[ -x /usr/bin/lmc ] || fail "/usr/bin/lmc missing"
getent passwd lmc >/dev/null || fail "user lmc missing"
getent group lmc-admin >/dev/null || fail "group lmc-admin missing"
[ "$(stat -c '%U:%G %a' /var/lib/lmc)" = "lmc:lmc 750" ] || fail "/var/lib/lmc is $(stat -c '%U:%G %a' /var/lib/lmc)"
[ "$(stat -c '%G %a' /etc/lmc/lmc.toml)" = "lmc 640" ] || fail "/etc/lmc/lmc.toml is $(stat -c '%G %a' /etc/lmc/lmc.toml)"
# The DNO's SSH account (docs/ssh.md): keys in a root-owned file sshd's StrictModes accepts; the drop-in applies.
[ "$(stat -c '%U:%G %a' /etc/lmc/dno_authorized_keys)" = "root:root 644" ] || fail "/etc/lmc/dno_authorized_keys is $(stat -c '%U:%G %a' /etc/lmc/dno_authorized_keys)"
[ "$(stat -c '%U %a' /etc/lmc)" = "root 755" ] || fail "/etc/lmc is $(stat -c '%U %a' /etc/lmc) (StrictModes wants root's, not writable by others)"
[ "$(getent passwd lmc-logs | cut -d: -f7)" = "/bin/sh" ] || fail "lmc-logs has shell $(getent passwd lmc-logs | cut -d: -f7): sshd runs the forced command through it (docs/ssh.md)"
if [ -x /usr/sbin/sshd ] && ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then
  sshdT=$(/usr/sbin/sshd -T -C user=lmc-logs,host=release-check,addr=127.0.0.1 2>&1) || fail "sshd -T: $sshdT"
  for want in "forcecommand /usr/bin/lmc log ssh-command" "authorizedkeysfile /etc/lmc/dno_authorized_keys" "disableforwarding yes" "permittty no" "passwordauthentication no"; do
    echo "$sshdT" | grep -qx "$want" || fail "sshd -T for lmc-logs lacks '$want'"
  done
fi
# No Magic SysRq from the serial console (kernel.sysrq = 0), applied from the vendor directory.
grep -qx 'kernel.sysrq = 0' /usr/lib/sysctl.d/90-lmc.conf || fail "/usr/lib/sysctl.d/90-lmc.conf does not set kernel.sysrq = 0"
/usr/bin/lmc config check --config /etc/lmc/lmc.toml >/dev/null || fail "the installed example config does not check (profiles in /usr/share/lmc/hw?)"
# The shipped scenarios by name, from a directory with none, as on a box.
sim=$(cd / && env -u LMC_SCENARIOS /usr/bin/lmc simulate --scenario seed-example-day --json 2>&1) || fail "lmc simulate --scenario seed-example-day: $sim"
echo "$sim" | grep -q '"scenario":"/usr/share/lmc/scenarios/seed-example-day.csv"' || fail "simulate did not use the packaged scenario: $sim"
(cd / && /usr/bin/lmc simulate --help) | grep -Eq "^  semiurban-january +/usr/share/lmc/scenarios$" || fail "lmc simulate --help does not list the packaged scenarios"
if command -v systemd-analyze >/dev/null 2>&1; then
  verify=$(systemd-analyze verify /usr/lib/systemd/system/lmc.service 2>&1) || fail "systemd-analyze verify: $verify"
  # The package creates the gpio group the unit names (stock Debian has none: systemd would refuse to
  # start the unit, 216/GROUP), so nothing is filtered out.
  other=$(echo "$verify" | grep -v -e "^$" || true)
  [ -z "$other" ] || fail "systemd-analyze verify: $other"
fi
getent group gpio >/dev/null || fail "no gpio group after install: lmc.service names it"
grep -q 'GROUP="gpio"' /usr/lib/udev/rules.d/60-lmc-gpio.rules || fail "/usr/lib/udev/rules.d/60-lmc-gpio.rules does not give the GPIO chips to the gpio group"
grep -q 'OWNER="lmc"' /usr/lib/udev/rules.d/60-lmc-watchdog.rules || fail "/usr/lib/udev/rules.d/60-lmc-watchdog.rules does not give the watchdog to lmc"
# The manual page and the shell completions, where man and the shells look for them.
man -w lmc 2>/dev/null | grep -q "^/usr/share/man/man1/lmc.1.gz$" || fail "man -w lmc does not find /usr/share/man/man1/lmc.1.gz"
LC_ALL=C MANWIDTH=80 man lmc 2>/dev/null | grep -q "lmc doctor" || fail "man lmc lacks the doctor command"
bash -c 'source /usr/share/bash-completion/completions/lmc && complete -p lmc' >/dev/null 2>&1 || fail "the bash completion does not register for lmc"
[ -s /usr/share/zsh/vendor-completions/_lmc ] && head -1 /usr/share/zsh/vendor-completions/_lmc | grep -q "^#compdef lmc" || fail "zsh completion missing or without #compdef"
echo "release-check: $deb installed; unit verified; user, groups and directories as expected; man page and completions in place"
$SUDO dpkg -r lmc >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/lmc ] || fail "/usr/bin/lmc left behind"
[ ! -e /usr/lib/systemd/system/lmc.service ] || fail "unit left behind"
[ -e /etc/lmc/lmc.toml ] && [ -e /etc/lmc/dno_authorized_keys ] || fail "dpkg -r removed the site's /etc/lmc/lmc.toml or dno_authorized_keys (only purge may)"
echo "release-check: removed cleanly (/etc/lmc and /var/lib/lmc kept until purge)"
$SUDO dpkg -P lmc >/dev/null || fail "dpkg -P"
[ ! -e /etc/lmc/dno_authorized_keys ] || fail "purge left the DNO's keys in /etc/lmc/dno_authorized_keys"
[ ! -e /etc/lmc/lmc.toml ] || fail "purge left /etc/lmc/lmc.toml"
[ ! -e /etc/ssh/sshd_config.d/lmc-logs.conf ] || fail "purge left /etc/ssh/sshd_config.d/lmc-logs.conf"
echo "release-check: purged: the config, the DNO's keys and the sshd drop-in are gone (the ring log is kept)"

# An upgrade never touches what the site made of /etc/lmc (docs/release.md, "Upgrading"). Every site edits
# lmc.toml, and adds the DNO's key to dno_authorized_keys (docs/ssh.md). When a release changes the examples
# those files started from, an unattended upgrade (no terminal: stdin closed, no --force-conf* option) must
# neither stop at dpkg's conffile question ("end of file on stdin at conffile prompt", lmc left unpacked,
# not configured) nor change the site's files: byte for byte, owner and mode. The previous release here is
# this package relabelled VERSION~prev, with both shipped examples changed wherever the package has them.
prev=$(mktemp -d)
trap 'rm -rf "$prev"' EXIT
dpkg-deb -R "$deb" "$prev/root"
v=$(dpkg-deb -f "$deb" Version)
sed -i "s/^Version: .*/Version: ${v}~prev/" "$prev/root/DEBIAN/control"
changed=$(cd "$prev/root" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | while read -r f; do
  if cmp -s "$f" "$repo/hw/examples/lmc.toml" || cmp -s "$f" "$repo/systemd/dno_authorized_keys"; then
    printf '# (changed for the previous release: release-check, upgrade)\n' >> "$f"; echo "$f"
  fi
done)
echo "$changed" | grep -q lmc.toml && echo "$changed" | grep -q dno_authorized_keys || fail "the package ships no copy of hw/examples/lmc.toml or systemd/dno_authorized_keys: $changed"
(cd "$prev/root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$prev/root/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$prev/root" "$prev/lmc_prev.deb" >/dev/null
out=$($SUDO dpkg -i "$prev/lmc_prev.deb" 2>&1 </dev/null) || fail "dpkg -i of ${v}~prev: $out"
# The site's edits: a comment in the config (the file still checks), a key for the DNO.
printf '\n# site: edited by release-check before the upgrade\n' | $SUDO tee -a /etc/lmc/lmc.toml >/dev/null
echo "restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyOfReleaseCheckUpgrade0000000000000 dno@release-check" | $SUDO tee -a /etc/lmc/dno_authorized_keys >/dev/null
$SUDO cp -p /etc/lmc/lmc.toml "$prev/site-lmc.toml"; $SUDO cp -p /etc/lmc/dno_authorized_keys "$prev/site-keys"
meta0=$(stat -c '%n %U:%G %a' /etc/lmc/lmc.toml /etc/lmc/dno_authorized_keys)
out=$($SUDO dpkg -i "$deb" 2>&1 </dev/null) || fail "upgrade ${v}~prev → $v with no terminal (dpkg -i </dev/null): $out"
st=$(dpkg-query -W -f='${Status} ${Version}' lmc)
[ "$st" = "install ok installed $v" ] || fail "after the upgrade lmc is '$st', not configured at $v: $out"
cmp -s /etc/lmc/lmc.toml "$prev/site-lmc.toml" || fail "the upgrade changed the site's /etc/lmc/lmc.toml: $(diff "$prev/site-lmc.toml" /etc/lmc/lmc.toml | head -5)"
cmp -s /etc/lmc/dno_authorized_keys "$prev/site-keys" || fail "the upgrade changed the site's /etc/lmc/dno_authorized_keys: $(diff "$prev/site-keys" /etc/lmc/dno_authorized_keys | head -5)"
meta1=$(stat -c '%n %U:%G %a' /etc/lmc/lmc.toml /etc/lmc/dno_authorized_keys)
[ "$meta0" = "$meta1" ] || fail "the upgrade changed the owner or mode of the site's files: $meta0 → $meta1"
ls /etc/lmc/*.dpkg-* >/dev/null 2>&1 && fail "the upgrade left $(ls /etc/lmc/*.dpkg-*)"
/usr/bin/lmc config check --config /etc/lmc/lmc.toml >/dev/null || fail "the site's config does not check after the upgrade"
echo "release-check: upgrade ${v}~prev → $v with no terminal and no --force-conf*: configured; the site's lmc.toml and DNO keys unchanged byte for byte"
$SUDO dpkg -P lmc >/dev/null || fail "dpkg -P after the upgrade"
[ ! -e /etc/lmc/lmc.toml ] && [ ! -e /etc/lmc/dno_authorized_keys ] || fail "purge after the upgrade left /etc/lmc: $(ls -A /etc/lmc)"
echo "release-check: purged again: /etc/lmc is gone"
