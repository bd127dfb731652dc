#!/usr/bin/env bash
# Did the test suite leave anything running? make test calls it around `swift test`:
#
#   since=$(scripts/check-leftovers.sh now)        # before: the time, in clock ticks since boot
#   scripts/check-leftovers.sh since "$since"      # after: fails if a process started from this tree
#                                                  # since then is still running, and kills it
#
# "Started from this tree": its executable, command line or working directory lies inside this
# checkout, or it carries make test's LMC_PYTHON. Only the kinds of process the tests start count
# (lmc, the test binary, socat, python, tmux, sleep, the spawn probe), so other checkouts and builds on the same
# machine never trip it. Zombies are dead already and are ignored (PID 1 here may not reap them).
# --only-env NAME=VALUE restricts the check to processes with that environment entry (the
# self-test in Tests/FieldControllerTests/ChildCleanupTests.swift uses it while other tests run).
set -uo pipefail
tree=$(cd "$(dirname "$0")/.." && pwd -P)
hz=$(getconf CLK_TCK)

case "${1:-}" in
  now)
    awk -v hz="$hz" '{ printf "%d\n", $1 * hz }' /proc/uptime
    exit 0 ;;
  since)
    since=${2:?since what? (run "$0 now" first)}
    only_env=""
    [ "${3:-}" = --only-env ] && only_env=${4:?--only-env NAME=VALUE}
    ;;
  *) echo "usage: $0 now | since TICKS [--only-env NAME=VALUE]" >&2; exit 2 ;;
esac

# This script and whatever runs it are not leftovers.
ancestors=" "
p=$$
while [ "$p" -gt 1 ] 2>/dev/null; do
  ancestors+="$p "
  p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null) || break
done

now=$(awk -v hz="$hz" '{ printf "%d\n", $1 * hz }' /proc/uptime)
left=()
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  case "$ancestors" in *" $pid "*) continue ;; esac
  stat=$(cat "$d/stat" 2>/dev/null) || continue
  read -r -a f <<< "${stat##*) }"
  state=${f[0]}; start=${f[19]}
  [ "$state" = Z ] && continue
  [ "$start" -ge "$since" ] || continue
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  case "$comm" in lmc|lmc-fuzz|lmcPackageTest*|LMCSpawnProbe|socat|python*|tmux*|sleep|setpriv) ;; *) continue ;; esac
  env=$(tr '\0' '\n' < "$d/environ" 2>/dev/null) || env=""
  if [ -n "$only_env" ]; then grep -qxF -e "$only_env" <<< "$env" || continue; fi
  cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
  exe=$(readlink "$d/exe" 2>/dev/null || true)
  cwd=$(readlink "$d/cwd" 2>/dev/null || true)
  why=""
  case "$exe/" in "$tree"/*) why="its executable is in $tree" ;; esac
  [ -z "$why" ] && case "$cwd/" in "$tree"/*) why="it runs in $tree" ;; esac
  [ -z "$why" ] && case "$cmd" in *"$tree/"*) why="its command line names $tree" ;; esac
  [ -z "$why" ] && grep -qxF -e "LMC_PYTHON=$tree/.venv/bin/python" <<< "$env" && why="it has make test's LMC_PYTHON"
  [ -z "$why" ] && continue
  left+=("$pid")
  echo "check-leftovers: still running $(( (now - start) / hz )) s after it started: pid $pid ($comm): ${cmd:0:200} — $why" >&2
done

if [ ${#left[@]} -gt 0 ]; then
  kill -KILL "${left[@]}" 2>/dev/null
  echo "check-leftovers: FAIL: ${#left[@]} process(es) started by the tests outlived them (killed now)" >&2
  exit 1
fi
echo "check-leftovers: nothing the tests started is still running"
