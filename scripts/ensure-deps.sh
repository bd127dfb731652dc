#!/usr/bin/env bash
# Installs what building and testing lmc needs, only where it is missing: Debian packages (libmodbus,
# libgpiod, socat, python3-venv) and the pinned Python test peers in .venv. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
dpkg -s libmodbus-dev >/dev/null 2>&1 || need_apt+=(libmodbus-dev)
dpkg -s libgpiod-dev  >/dev/null 2>&1 || need_apt+=(libgpiod-dev)
dpkg -s pkg-config    >/dev/null 2>&1 || need_apt+=(pkg-config)
dpkg -s libssl-dev    >/dev/null 2>&1 || need_apt+=(libssl-dev)
command -v openssl >/dev/null 2>&1   || need_apt+=(openssl)
command -v curl    >/dev/null 2>&1   || need_apt+=(curl)
command -v socat >/dev/null 2>&1     || need_apt+=(socat)
command -v tmux  >/dev/null 2>&1     || need_apt+=(tmux)
# The tests bind their children's lives to theirs with setpriv --pdeathsig (Tests/LMCTestSupport).
command -v setpriv >/dev/null 2>&1   || need_apt+=(util-linux)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
# SSHLogAccount runs a private sshd with the lmc-logs drop-in and logs in with ssh (docs/ssh.md).
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
# make bench also needs the C compiler for its libmodbus peer, valgrind and the sqlite3 shell.
if [ "${LMC_BENCH_DEPS:-}" = 1 ]; then
  command -v gcc      >/dev/null 2>&1 || need_apt+=(gcc)
  command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
  command -v sqlite3  >/dev/null 2>&1 || need_apt+=(sqlite3)
fi

# make box-test (LMC_BOX_DEPS=amd64|arm64): qemu, debootstrap and, for arm64, qemu-user to run the
# guest's maintainer scripts while its image is built (scripts/box/build-image.sh).
case "${LMC_BOX_DEPS:-}" in
  amd64|arm64)
    command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
    command -v qemu-img    >/dev/null 2>&1 || need_apt+=(qemu-utils)
    command -v mkfs.ext4   >/dev/null 2>&1 || need_apt+=(e2fsprogs)
    command -v scp         >/dev/null 2>&1 || need_apt+=(openssh-client)
    if [ "$LMC_BOX_DEPS" = amd64 ]; then
      command -v qemu-system-x86_64 >/dev/null 2>&1 || need_apt+=(qemu-system-x86)
    else
      command -v qemu-system-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-system-arm)
      command -v qemu-aarch64-static >/dev/null 2>&1 || need_apt+=(qemu-user-static)
      command -v update-binfmts      >/dev/null 2>&1 || need_apt+=(binfmt-support)
    fi ;;
esac

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "ensure-deps: the Swift toolchain (6.1 or later) is not on PATH; install it from swift.org first" >&2
  exit 1
fi

# Python peers for the tests, pinned (Tests/peers/requirements.txt).
req=Tests/peers/requirements.txt
stamp=.venv/.requirements.sha
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "ensure-deps: creating .venv with $(tr '\n' ' ' < "$req")"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
