#!/usr/bin/env bash
# make box-test's previous release: the .deb of lmc as that commit built it, with that commit's own
# `make deb`, built once per machine and cached (docs/release.md, "Box test", check 6).
#
#   scripts/box/old-release.sh COMMIT    → prints the path of the cached lmc_VERSION_amd64.deb
#
# The commit's tree is exported with `git archive` (no tag needed, the hash names it) into a temporary
# directory and built there with its own Makefile: `make -o deps deb` (its static release and package;
# `-o deps` skips its Python test peers, which a package build does not use). The result is cached in
# $LMC_BOX_CACHE/release-COMMIT-ARCH/; the build's log stays beside it. Only this machine's architecture:
# the previous release had no aarch64 build.
set -euo pipefail
commit=${1:?usage: old-release.sh COMMIT}
cd "$(dirname "$0")/../.."
commit=$(git rev-parse --verify "$commit^{commit}")
arch=$(dpkg --print-architecture)
cache=${LMC_BOX_CACHE:-/var/cache/lmc-box}
dir="$cache/release-$commit-$arch"
deb=$(ls "$dir"/lmc_*_"$arch".deb 2>/dev/null | head -1 || true)
if [ -n "$deb" ] && [ -s "$deb" ]; then echo "$deb"; exit 0; fi

mkdir -p "$cache"
# One build at a time (two make box-test runs on one machine).
exec 9>"$cache/.release-$commit.lock"
flock 9
deb=$(ls "$dir"/lmc_*_"$arch".deb 2>/dev/null | head -1 || true)
if [ -n "$deb" ] && [ -s "$deb" ]; then echo "$deb"; exit 0; fi
work=$(mktemp -d "$cache/build-release-${commit:0:12}.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
echo "old-release: building ${commit:0:12}'s package with its own make deb (once per machine; log $work/build.log)" >&2
git archive --format=tar "$commit" | tar -x -C "$work/"
log="$work/build.log"
if ! (cd "$work" && nice make -o deps deb) > "$log" 2>&1; then
  tail -40 "$log" >&2
  mkdir -p "$dir" && cp "$log" "$dir/build-failed.log"
  echo "old-release: ${commit:0:12}'s make deb failed (log: $dir/build-failed.log)" >&2
  exit 1
fi
built=$(ls "$work"/out/lmc_*_"$arch".deb | head -1)
mkdir -p "$dir"
cp "$log" "$dir/build.log"
echo "$(( $(date +%s) - t0 )) s: make deb of $commit on $(hostname), $(date -u +%FT%TZ)" > "$dir/build-time.txt"
cp "$built" "$dir/"
echo "old-release: $(basename "$built") in $(( $(date +%s) - t0 )) s" >&2
echo "$dir/$(basename "$built")"
