#!/usr/bin/env bash
# make bench: every measurement behind docs/PERFORMANCE.md, on this machine, in one table.
# Environment: BENCH_STEPS (meter steps, default 1000), BENCH_OUT (default docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
LMC=.build/release/lmc
BENCH=.build/release/lmc-bench
STEPS=${BENCH_STEPS:-1000}
OUT=${BENCH_OUT:-docs/PERFORMANCE.md}
SCEN=${LMC_SCENARIOS:-scenarios}
work=/var/tmp/lmc-bench
mkdir -p "$work" .build/bench
gcc -O2 -o .build/bench/modbus_c_client bench/modbus_c_client.c $(pkg-config --cflags --libs libmodbus)

rows=$(mktemp)
step() { echo "bench: $*" >&2; }

step "ring log (ours, then SQLite)"
$BENCH ring --dir "$work" --lmc "$LMC" >> "$rows"
.venv/bin/python bench/sqlite_ring.py "$work" 500000 60 >> "$rows"

step "ModbusBridge vs C on libmodbus"
$BENCH bridge >> "$rows"

step "DNP3 outstation: integrity poll and unsolicited latency"
$BENCH dnp3 >> "$rows"

step "control core (wall time, then callgrind instruction counts)"
$BENCH core >> "$rows"
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BENCH" core --quiet --ticks "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
i1=$(count 1000); i2=$(count 3000)
echo "| control core tick, instructions | $(( (i2 - i1) / 2000 )) instructions per tick | | | valgrind --tool=callgrind, (3000 ticks − 1000 ticks) / 2000: repeatable whatever the machine's load |" >> "$rows"

step "control quality on the scenarios"
for s in seed-example-day semiurban-january; do
  [ -f "$SCEN/$s.csv" ] || { echo "bench: scenario $SCEN/$s.csv missing" >&2; exit 1; }
  j=$($LMC simulate --scenario "$SCEN/$s.csv" --json)
  .venv/bin/python - "$s" "$j" >> "$rows" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
print(f"| control quality, {name} ({r['hours']:.0f} h) | {100*r['share_of_oracle']:.1f} % of the oracle's energy, {100*r['share_of_firm']:.0f} % of firm; "
      f"{r['seconds_above_tolerance']:.0f} s beyond tolerance, {r['seconds_above_limit']:.0f} s above the limit (largest {r['largest_overshoot_kva']:.1f} kVA) "
      f"| DESIGN ≥ 97 % of the oracle, 0 s beyond tolerance | {r['share_of_oracle']/0.97:.3f}× | lmc simulate, 1 s period, 5 s site lag, ±2 % noise, seed 1 |")
PY
done

step "lmc run end to end ($STEPS meter steps, each from a settled loop; about 20 minutes)"
$BENCH loop --lmc "$LMC" --steps "$STEPS" >> "$rows"

step "lmc run on the example's RS-485 layout at 9600 baud: dead and frozen meter, requests per poll, start-up overshoot (about 7 minutes)"
.venv/bin/python bench/rs485.py --lmc "$LMC" --work "$work/rs485" >> "$rows"

size=$(stat -c %s "$LMC"); strip -o "$work/lmc.stripped" "$LMC"; ssize=$(stat -c %s "$work/lmc.stripped")
echo "| release binary size | $((ssize / 1048576)).$(( (ssize % 1048576) * 10 / 1048576 )) MiB stripped ($((size / 1048576)) MiB not) | DESIGN ≤ 30 MB static, stripped | $(python3 -c "print(round($ssize/30e6,2))")× | swift build -c release --static-swift-stdlib; links libmodbus and libgpiod dynamically |" >> "$rows"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
  echo "# Performance"
  echo
  echo "Measured by \`make bench\` (bench/run.sh) on $(date -u +%Y-%m-%d): $(uname -m), ${cpu:-unknown CPU}, $(nproc) cores,"
  echo "Linux $(uname -r), $(swift --version 2>/dev/null | head -1 | sed 's/ (.*//'), release builds. Targets are docs/design.md §7."
  echo "Timings vary with the machine's load; the ratio column and the instruction counts travel better."
  echo
  echo "| benchmark | ours | limit or peer | ratio | method |"
  echo "| --- | --- | --- | --- | --- |"
  cat "$rows"
  echo
  cat bench/NOTES.md
} > "$OUT"
rm -f "$rows"
step "wrote $OUT"
