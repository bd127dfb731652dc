#!/usr/bin/env bash
# make man: out/lmc.1, the command-line reference as a manual page, by swift-argument-parser's
# generate-manual (the tool behind its generate-manual plugin, which runs `lmc --experimental-dump-help`).
# The plugin's own escaping drops every non-ASCII character (→, —, ×, ≤ vanish from the text), so the
# tool is run here on a wrapper that turns them into ASCII markers first; the page then gets them back
# as groff escapes, loses the hidden test command, and has its blank lines made paragraph breaks — so
# that man and lintian have nothing to say about it.
set -euo pipefail
cd "$(dirname "$0")/.."
swift=${SWIFT:-swift}
$swift build -j "${JOBS:-2}" --product lmc >/dev/null
$swift build -j "${JOBS:-2}" --product generate-manual >/dev/null
bin=$($swift build --show-bin-path)
date=$(date -u -d "$(dpkg-parsechangelog -l packaging/changelog -S Date)" +%Y-%m-%d)
work=.build/man
rm -rf "$work" && mkdir -p "$work/tool"
cat > "$work/tool/lmc" <<WRAP
#!/bin/sh
exec python3 -c 'import subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)
sys.stdout.write("".join(c if ord(c) < 128 else "@U%04X@" % ord(c) for c in r.stdout.decode("utf-8")))
sys.exit(r.returncode)' "$bin/lmc" "\$@"
WRAP
chmod +x "$work/tool/lmc"
"$bin/generate-manual" "$work/tool/lmc" --date "$date" --authors "LMC field controller team<lmc@example.org>" -o "$work" >/dev/null
[ -s "$work/lmc.1" ] || { echo "make-man: generate-manual wrote no $work/lmc.1" >&2; exit 1; }
mkdir -p out
python3 - "$work/lmc.1" out/lmc.1 <<'PY'
import re, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
out, skip, depth = [], False, 0
for line in lines:
    if line.startswith(".It Em _"):          # a hidden subcommand (shouldDisplay: false) and its option list
        skip, depth = True, 0
        continue
    if skip:
        if line.startswith(".Bl"):
            depth += 1
        elif line.startswith(".El"):
            depth -= 1
            if depth == 0:
                skip = False
        continue
    line = re.sub(r"@U([0-9A-F]{4,6})@", r"\\[u\1]", line)
    out.append(".Pp" if line.strip() == "" else line)
while out and out[-1] == ".Pp":
    out.pop()
open(sys.argv[2], "w", encoding="ascii").write("\n".join(out) + "\n")
PY
# No warnings from man itself (lintian reports them as groff-message).
warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l out/lmc.1 2>&1 >/dev/null || true)
[ -z "$warnings" ] || { echo "make-man: man warns about out/lmc.1:" >&2; echo "$warnings" >&2; exit 1; }
echo "out/lmc.1: $(wc -l < out/lmc.1) lines, $(grep -c '^\.It Em' out/lmc.1) commands and subcommands"
