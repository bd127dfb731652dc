#!/usr/bin/env bash
# scripts/arm64/test.sh [--all-unit] [SUITE...]: the test product built for aarch64 (.build-arm64) and
# swift-testing suites run under qemu-user in the build root (QEMU_LD_PREFIX: the sysroot's glibc and Swift
# runtime), each suite its own qemu process, JOBS of them at a time (default 2), then a table: suite,
# result, tests, seconds (also in .build-arm64/test-logs/summary.txt; each suite's output beside it).
#   --all-unit     the unit suites listed in scripts/arm64/unit-suites (what `make test-arm64` runs)
#   SUITE          Module.Suite (e.g. FailSafeTests.SupervisorTests), Module.Suite/test (one test function:
#                  ControlCycleTests.ReplayTests/exampleDay), a module (FailSafeTests), or any other
#                  swift-testing --filter regex
# Environment: JOBS (suites at a time, 2), SUITE_TIMEOUT (seconds per suite, 3600).
# The build is debug (LMC_TEST_HOOKS, @testable) optimised with -O throughout: unoptimised, the scenario
# and replay tests ran over 24 minutes under qemu without finishing. Not part of make test.
# Debian's toolchain lacks lib_Testing_Foundation (the Testing+Foundation cross-import overlay):
# cross-import overlays are turned off for this build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
cd "$here/../.."
suites=()
for a in "$@"; do
  case $a in
    --all-unit) mapfile -t -O "${#suites[@]}" suites < <(grep -v '^#' "$here/unit-suites" | grep -v '^ *$') ;;
    -*) echo "scripts/arm64/test.sh: unknown option $a (usage: scripts/arm64/test.sh [--all-unit] [SUITE...])" >&2; exit 2 ;;
    *) suites+=("$a") ;;
  esac
done
[ ${#suites[@]} -gt 0 ] || { echo "usage: scripts/arm64/test.sh [--all-unit] [SUITE...]" >&2; exit 2; }
jobs=${JOBS:-2}; timeout_s=${SUITE_TIMEOUT:-3600}
"$here/static-deps.sh" >/dev/null
"$here/make-sdk.sh" >/dev/null
fresh_if_sysroot_changed
install -m 0755 "$(qemu_aarch64)" "$buildroot/usr/local/bin/qemu-aarch64-static"
pc=$sysroot_in/usr/local/lib/pkgconfig:$sysroot_in/usr/lib/aarch64-linux-gnu/pkgconfig:$sysroot_in/usr/share/pkgconfig
t0=$(date +%s)
in_root env PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$sysroot_in" sh -c "cd /src && \
  nice swift build -j ${JOBS:-2} --build-tests --scratch-path .build-arm64 \
    --swift-sdks-path /opt/swift-sdks --swift-sdk lmc-debian-aarch64 \
    -Xswiftc -Xfrontend -Xswiftc -disable-cross-import-overlays -Xswiftc -O 2>&1" > .build-arm64/test-build.log \
  || { grep -A12 "error:" .build-arm64/test-build.log | head -60; echo "arm64 test: the build failed (.build-arm64/test-build.log)" >&2; exit 1; }
echo "arm64 test: the test product built in $(( $(date +%s) - t0 )) s"
xctest=/src/.build-arm64/aarch64-unknown-linux-gnu/debug/lmcPackageTests.xctest
[ -x "$PWD${xctest#/src}" ] || { echo "arm64 test: $xctest was not built" >&2; exit 1; }

logs=.build-arm64/test-logs
rm -rf "$logs"; mkdir -p "$logs"
printf '%s\n' "${suites[@]}" > "$logs/suites"
# One suite: its own qemu process, its output in $logs/SUITE.log, one line "SUITE RC TESTS SECONDS" in results.
cat > "$logs/run-one.sh" <<EOF
#!/bin/bash
s=\$1
case \$s in
  *.*) re="^\${s//./\\\\.}(/|\\\\(|\$)" ;;   # Module.Suite[/test]: that suite or test only (HalfHourTests is in two modules)
  *) re=\$s ;;
esac
start=\$(date +%s.%N)
QEMU_LD_PREFIX=$sysroot_in QEMU_SET_ENV=LD_LIBRARY_PATH=/usr/libexec/swift/lib/swift/linux \\
  timeout --kill-after=10 $timeout_s nice /usr/local/bin/qemu-aarch64-static $xctest \\
  --testing-library swift-testing --filter "\$re" > /src/$logs/\${s//\//_}.log 2>&1
rc=\$?
secs=\$(echo "\$(date +%s.%N) \$start" | awk '{printf "%.1f", \$1 - \$2}')
n=\$(sed -n 's/.*Test run with \([0-9]*\) tests\{0,1\} .*/\1/p' /src/$logs/\${s//\//_}.log | tail -1)
echo "\$s \$rc \${n:-?} \$secs" >> /src/$logs/results
echo "  \$s: rc \$rc, \${n:-?} tests, \$secs s"
EOF
echo "arm64 test: ${#suites[@]} suite(s) under qemu-user, $jobs at a time, logs in $logs/"
in_root sh -c "cd /src && xargs -P $jobs -n 1 bash $logs/run-one.sh < $logs/suites" || true

# The table, in the order asked. 0 tests run counts as a failure (a name that matched nothing).
rc=0
{
  printf '| suite | result | tests | seconds |\n| --- | --- | --- | --- |\n'
  for s in "${suites[@]}"; do
    line=$(awk -v s="$s" '$1 == s' "$logs/results" 2>/dev/null | tail -1)
    if [ -z "$line" ]; then printf '| %s | not run | | |\n' "$s"; rc=1; continue; fi
    read -r _ code n secs <<<"$line"
    if [ "$code" = 0 ] && [ "$n" != "?" ] && [ "$n" != 0 ]; then result=pass
    elif [ "$code" = 124 ] || [ "$code" = 137 ]; then result="timeout (${timeout_s} s)"; rc=1
    elif [ "$n" = 0 ]; then result="no test matched"; rc=1
    else result="FAIL (rc $code)"; rc=1; fi
    printf '| %s | %s | %s | %s |\n' "$s" "$result" "$n" "$secs"
  done
} > "$logs/summary.txt"
cat "$logs/summary.txt"
awk '$2 == 0 && $3 != "?" { n += $3 } END { printf "arm64 test: %d tests passed in the passing suites\n", n }' "$logs/results" 2>/dev/null || true
if [ $rc -ne 0 ]; then
  for s in "${suites[@]}"; do
    grep -q "^$s 0 [1-9]" "$logs/results" 2>/dev/null || { echo "== $s ($logs/${s//\//_}.log)"; grep -E "✘|error|recorded an issue|failed" "$logs/${s//\//_}.log" 2>/dev/null | head -20; }
  done
fi
exit $rc
