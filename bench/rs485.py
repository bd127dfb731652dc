#!/usr/bin/env python3
"""make bench: `lmc run` on the example's RS-485 layout, measured from outside.

    bench/rs485.py --lmc .build/release/lmc [--trials 5] [--overshoot-s 150]

The rig: hw/examples/lmc.toml as written (its bus, meters, poll_ms, time constants), with only what a
bench must change — the serial device, the charger's address, the log directory and socket, no breaker
GPIO and no per-box start-up delay. The bus is two socat pty pairs joined by a line that carries bytes
at the example's 9600 8N1 (a pty alone passes bytes at memory speed, whatever its baud rate): a frame
is delivered when its last byte would have arrived, one direction at a time, as on a two-wire RS-485
line. On the far side one pymodbus serial server (Tests/peers/modbus_peer.py) answers unit 1 as the
SDM630 and unit 2 as the EM24. The charger is Tests/peers/charger_peer.py (Alfen) over TCP. The plant:
the site imports min(demand, what the charger applies) through a first-order lag of 5 s, the
transformer carries background + site (unity power factor).

Rows (markdown, to stdout):
- dead transformer meter → safe current written to the charger (the line drops its requests, as a
  meter that has lost power; the other meter on the bus still answers);
- frozen transformer meter (it answers with bit-identical registers) → safe current;
- requests per poll, counted at the pymodbus server;
- start-up overshoot: seconds above limit + 2 % after `lmc run` starts, in incremental mode (the fault
  table's case) and in the example's direct mode.
"""
import argparse
import ctypes
import json
import math
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import tomllib
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "Tests", "peers")
LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
PHASE_V = 230.0
LIMIT_KVA = 500.0


def die_with_parent():
    LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(args, **kw):
    return subprocess.Popen(args, preexec_fn=die_with_parent, **kw)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def toml_table(path, d, out, array=False):
    out.append(f"[[{path}]]" if array else f"[{path}]")
    for k, v in d.items():
        if not isinstance(v, (dict, list)) or (isinstance(v, list) and not (v and isinstance(v[0], dict))):
            out.append(f"{k} = {toml_value(v)}")
    for k, v in d.items():
        if isinstance(v, dict):
            toml_table(f"{path}.{k}", v, out)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for x in v:
                toml_table(f"{path}.{k}", x, out, array=True)


def to_toml(doc):
    out = []
    for k, v in doc.items():
        if isinstance(v, dict):
            toml_table(k, v, out)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for x in v:
                toml_table(k, x, out, array=True)
        else:
            out.insert(0, f"{k} = {toml_value(v)}")
    return "\n".join(out) + "\n"


class PtyPair:
    def __init__(self, tag):
        self.a, self.b = f"/tmp/lmc-bench-{tag}-{os.getpid()}-a", f"/tmp/lmc-bench-{tag}-{os.getpid()}-b"
        self.p = spawn(["socat", "pty,raw,echo=0,link=" + self.a, "pty,raw,echo=0,link=" + self.b], stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while not (os.path.exists(self.a) and os.path.exists(self.b)):
            if time.monotonic() > end:
                raise RuntimeError("socat did not create its ptys")
            time.sleep(0.02)

    def stop(self):
        self.p.terminate()
        self.p.wait()


class Line:
    """Two pty ends joined at a baud rate: one frame on the wire at a time (half duplex), each delivered
    when its last character would have arrived. Requests to a unit in `dead` are carried but never
    reach the meter (it has lost power: silence, not an error)."""

    def __init__(self, lmc_side, meter_side, baud, bits_per_char=10):
        self.char = bits_per_char / baud
        self.a, self.b = self.open_raw(lmc_side), self.open_raw(meter_side)
        self.lock = threading.Lock()
        self.free_at = 0.0
        self.dead = set()
        self.running = True
        for src, dst, down in ((self.a, self.b, True), (self.b, self.a, False)):
            threading.Thread(target=self.forward, args=(src, dst, down), daemon=True).start()

    @staticmethod
    def open_raw(path):
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        return fd

    def forward(self, src, dst, down):
        while self.running:
            try:
                r, _, _ = select.select([src], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = os.read(src, 4096)
            except OSError:
                return
            with self.lock:
                start = max(time.monotonic(), self.free_at)
                end = start + len(data) * self.char
                # 3.5 characters of silence close the frame before the next may start.
                self.free_at = end + 3.5 * self.char
            delay = end - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if down and data and data[0] in self.dead:
                continue
            try:
                os.write(dst, data)
            except OSError:
                return


class Lines:
    """A child's stdout lines, kept, on a thread (so its pipe never fills)."""

    def __init__(self, proc, on_line=None):
        self.proc, self.lines, self.on_line = proc, [], on_line
        self.cv = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()
            if self.on_line:
                self.on_line(line)

    def wait_prefix(self, prefix, timeout=20):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for l in self.lines:
                    if l.startswith(prefix):
                        return l
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no {prefix!r} line from {self.proc.args[:2]}; got {self.lines[-5:]}")
                self.cv.wait(left)


class Rig:
    def __init__(self, lmc, mode, work, site_kw=150.0, background_kva=330.0, demand_kw=250.0, lag_s=5.0):
        self.work = work
        os.makedirs(work, exist_ok=True)
        with open(os.path.join(ROOT, "hw/examples/lmc.toml"), "rb") as f:
            self.example = tomllib.load(f)
        ex = self.example
        self.bus = ex["bus"][0]
        self.baud = int(self.bus.get("baud", 9600))
        site = ex["site"][0]
        self.amps_per_kw = 1000 / (site.get("phases", 3) * site.get("phase_voltage_v", 230) * site.get("power_factor", 1.0))
        self.safe_a = math.floor(site["firm_kw"] * self.amps_per_kw)
        self.site_kw, self.background_kva, self.demand_kw, self.lag_s = site_kw, background_kva, demand_kw, lag_s
        self.initial_site_kw = site_kw
        self.procs = []
        self.limit_writes = []  # (monotonic s, amps)
        self.lock = threading.Lock()
        self.samples = []  # (monotonic s, trafo kVA)

        self.lmc_pty, self.meter_pty = PtyPair("lmc"), PtyPair("meter")
        self.line = Line(self.lmc_pty.b, self.meter_pty.a, self.baud)
        units = [m["unit"] for m in ex["meter"]]
        profiles = [os.path.join(ROOT, "hw/meters", m["profile"] + ".toml") for m in ex["meter"]]
        self.units = dict(zip([m["id"] for m in ex["meter"]], units))
        args = [sys.executable, os.path.join(PEERS, "modbus_peer.py"), "--rtu", self.meter_pty.b, "--baud", str(self.baud),
                "--jitter", "1e-4", "--log-requests", "--values", json.dumps([self.meter_values(m["id"]) for m in ex["meter"]])]
        for u, p in zip(units, profiles):
            args += ["--unit", str(u), "--profile", p]
        self.meter = spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.meter_lines = Lines(self.meter)
        self.meter_lines.wait_prefix("READY")

        self.charger_profile = os.path.join(ROOT, "hw/chargers", site["charger"]["profile"] + ".toml")
        with open(self.charger_profile, "rb") as f:
            self.limit_reg = tomllib.load(f)["limit"]
        # A charger holding the safe current it was programmed with, as after a power cut.
        self.charger = spawn([sys.executable, os.path.join(PEERS, "charger_peer.py"), "--profile", self.charger_profile,
                              "--validity", "60", "--fallback-a", str(self.safe_a)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.charger_lines = Lines(self.charger, self.on_charger_line)
        port = int(self.charger_lines.wait_prefix("READY").split()[1])
        self.applied_a = float(self.safe_a)

        cfg = json.loads(json.dumps(ex))
        cfg["box"]["socket"] = os.path.join(work, "control.sock")
        cfg["control"]["mode"] = mode
        cfg["failsafe"]["startup_delay_min_s"] = 0
        cfg["failsafe"]["startup_delay_max_s"] = 0
        cfg["log"] = {"directory": work, "samples_mb": 4, "events_mb": 1, "halfhours_mb": 1, "minutes_mb": 1, "trips_mb": 1}
        cfg["bus"][0]["rtu"] = self.lmc_pty.a
        for s in cfg["site"]:
            s.pop("breaker", None)
            s["charger"]["tcp"] = f"127.0.0.1:{port}"
        self.config = os.path.join(work, "lmc.toml")
        with open(self.config, "w") as f:
            f.write(to_toml(cfg))
        check = subprocess.run([lmc, "config", "check", "--config", self.config], capture_output=True, text=True,
                               env=dict(os.environ, LMC_HW_DIR=os.path.join(ROOT, "hw")))
        if check.returncode != 0:
            raise RuntimeError(f"lmc config check refused the bench config {self.config}: {check.stderr}")
        self.config_warnings = [l for l in (check.stdout + check.stderr).splitlines() if "warning" in l.lower()]

        self.running = True
        threading.Thread(target=self.physics, daemon=True).start()
        self.log = open(os.path.join(work, "lmc.log"), "w")
        self.lmc = spawn([lmc, "run", "--config", self.config], stdout=self.log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, LMC_HW_DIR=os.path.join(ROOT, "hw")))
        self.started = time.monotonic()

    def on_charger_line(self, line):
        # WRITE <seconds> fc=16 addr=1210 values=[a, b]
        if not line.startswith("WRITE "):
            return
        parts = line.split(" ", 4)
        addr = int(parts[3][5:])
        if addr != self.limit_reg["address"]:
            return
        words = json.loads(parts[4][7:])[:2]
        if self.limit_reg.get("word_order") == "little":
            words = words[::-1]
        amps = struct.unpack(">f", struct.pack(">HH", *words))[0]
        with self.lock:
            self.limit_writes.append((float(parts[1]), amps))
            self.applied_a = amps

    def meter_values(self, meter_id):
        trafo_va = (self.background_kva + self.site_kw) * 1000
        site_w = self.site_kw * 1000
        va = trafo_va if meter_id == self.example["measurement_point"][0]["meter"] else site_w
        i = va / (3 * PHASE_V)
        return {"voltage_l1": PHASE_V, "voltage_l2": PHASE_V, "voltage_l3": PHASE_V, "current_l1": i, "current_l2": i, "current_l3": i,
                "power_total": va, "apparent_power_total": va, "energy_import": 1e6, "frequency": 50.0}

    def physics(self):
        last = time.monotonic()
        while self.running:
            time.sleep(0.05)
            now = time.monotonic()
            dt, last = now - last, now
            with self.lock:
                target = min(self.demand_kw, self.applied_a / self.amps_per_kw)
                self.site_kw += (target - self.site_kw) * (1 - math.exp(-dt / self.lag_s))
                self.samples.append((now, self.background_kva + self.site_kw))
            for mid, unit in self.units.items():
                self.send(f"set {json.dumps(self.meter_values(mid))} @{unit}")

    def send(self, line):
        try:
            self.meter.stdin.write((line + "\n").encode())
            self.meter.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the peer was stopped (the rig is stopping)

    def last_limit(self):
        with self.lock:
            return self.limit_writes[-1] if self.limit_writes else (0.0, float("nan"))

    def wait(self, cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.01)
        return False

    def requests(self):
        return [l for l in self.meter_lines.lines if "READ " in l]

    def stop(self):
        self.running = False
        self.lmc.terminate()
        self.lmc.wait()
        self.log.close()
        for p in (self.meter, self.charger):
            try:
                p.stdin.close()
            except OSError:
                pass
            p.terminate()
            p.wait()
        self.line.running = False
        self.lmc_pty.stop()
        self.meter_pty.stop()


def row(name, ours, limit, ratio, method):
    print(f"| {name} | {ours} | {limit} | {ratio} | {method} |", flush=True)


def ms(s):
    return f"{s * 1000:.0f} ms" if s == s else "--"


def detection(lmc, trials, work):
    rig = Rig(lmc, "direct", work)
    trafo = rig.example["measurement_point"][0]["meter"]
    unit = rig.units[trafo]
    meters = rig.example["meter"]
    blind = rig.example["failsafe"]["blind_time_s"]
    out = {"dead": [], "frozen": []}
    try:
        if not rig.wait(lambda: rig.last_limit()[1] >= rig.safe_a + 5, 90):
            raise RuntimeError(f"lmc did not raise the charger above {rig.safe_a + 5} A within 90 s; see {work}/lmc.log")
        # Requests per poll: over 20 s of steady running, per unit, against the polls the period makes.
        t0 = time.monotonic()
        n0 = len(rig.requests())
        time.sleep(20)
        reqs = rig.requests()[n0:]
        per_unit = {}
        for l in reqs:
            m = re.search(r"unit=(\d+) fc=\d+ addr=(\d+) count=(\d+)", l)
            if m:
                per_unit.setdefault(int(m.group(1)), []).append((int(m.group(2)), int(m.group(3))))
        polls_seen = {}
        for m in meters:
            rs = per_unit.get(m["unit"], [])
            first = rs[0] if rs else None
            polls = sum(1 for r in rs if r == first)
            polls_seen[m["id"]] = (polls, len(rs), sorted(set(rs)))
        for trial in range(2 * trials):
            kind = "dead" if trial % 2 == 0 else "frozen"
            if not rig.wait(lambda: rig.last_limit()[1] >= rig.safe_a + 5, 120):
                print(f"bench: no recovery above {rig.safe_a + 5} A before trial {trial}; see {work}/lmc.log", file=sys.stderr)
                break
            time.sleep(random.uniform(2.0, 3.0))
            if kind == "dead":
                rig.line.dead.add(unit)
            else:
                rig.send(f"freeze on @{unit}")
            t0 = time.monotonic()
            ok = rig.wait(lambda: any(t >= t0 and a <= rig.safe_a + 0.5 for t, a in rig.limit_writes[-20:]), 30)
            if ok:
                with rig.lock:
                    seen = min(t for t, a in rig.limit_writes if t >= t0 and a <= rig.safe_a + 0.5)
                out[kind].append(seen - t0)
            if kind == "dead":
                rig.line.dead.discard(unit)
            else:
                rig.send(f"freeze off @{unit}")
    finally:
        rig.stop()
    polls = ", ".join(f"{m['id']} ({m['profile']}, every {m['poll_ms']} ms): {polls_seen[m['id']][1] / max(1, polls_seen[m['id']][0]):.0f} "
                      f"request{'s' if polls_seen[m['id']][1] != polls_seen[m['id']][0] else ''} a poll "
                      f"({'; '.join(f'{c} reg at {a}' for a, c in polls_seen[m['id']][2])})" for m in meters)
    layout = f"hw/examples/lmc.toml as written: two meters on one RS-485 bus at {rig.baud} 8N1 (socat ptys joined by a {rig.baud}-baud line), " \
             f"pymodbus serial server, blind_time_s {blind}, frozen_after_s {rig.example['meter'][0].get('frozen_after_s', 1)}, timeout_ms {rig.bus.get('timeout_ms', 200)}"
    for kind, what in (("dead", "the line stops carrying the transformer meter's requests (a meter without power)"),
                       ("frozen", "the transformer meter repeats its last registers bit for bit")):
        xs = out[kind]
        mx = max(xs) if xs else float("nan")
        row(f"RS-485 {kind} meter → safe current at the charger", f"mean {ms(sum(xs) / len(xs) if xs else float('nan'))}, max {ms(mx)} (n {len(xs)})",
            "fault table round two item 11: ≤ 1.5 s", f"{mx / 1.5:.2f}× of 1.5 s" if xs else "",
            f"{layout}; {what}; until the charger receives a limit ≤ the safe {rig.safe_a} A")
    char = 10 / rig.baud

    def line_ms(reads):
        return sum((20 + 2 * c) * char + 0.010 for _, c in reads) * 1000

    cost = "; ".join(
        f"{m['id']}: {line_ms(polls_seen[m['id']][2]):.0f} ms a poll as read, {line_ms([(0, max(a + c for a, c in polls_seen[m['id']][2]) - min(a for a, _ in polls_seen[m['id']][2]))]):.0f} ms as one read"
        for m in meters if polls_seen[m['id']][2])
    row("RS-485 requests per poll", polls, f"fault table: one request a meter; line time by the config check's model: {cost}", "",
        "counted at the pymodbus server over 20 s of lmc run; a read's registers are the control registers "
        "(V, I, W and VA total) and the gaps worth reading across at this baud (hw/README.md)")
    return out, polls_seen


def overshoot(lmc, mode, seconds, work):
    rig = Rig(lmc, mode, work)
    mp = rig.example["measurement_point"][0]
    limit = mp["upper"]["limit_kva"]
    tol = limit * 1.02
    try:
        time.sleep(seconds)
    finally:
        rig.stop()
    s = [x for x in rig.samples if x[0] >= rig.started]
    above = sum(t1 - t0 for (t0, v), (t1, _) in zip(s, s[1:]) if v > tol)
    above_limit = sum(t1 - t0 for (t0, v), (t1, _) in zip(s, s[1:]) if v > limit)
    peak = max(v for _, v in s)
    settled = [a for t, a in rig.limit_writes if t >= s[-1][0] - 30]
    row(f"start-up overshoot, {mode} mode (lmc run)", f"{above:.1f} s above limit + 2 % ({tol:.0f} kVA), {above_limit:.1f} s above the limit, peak {peak:.1f} kVA; "
        f"charger at {settled[-1] if settled else float('nan'):.0f} A after {seconds} s",
        "fault table round two item 2: 0 s above limit + tolerance", "",
        f"lmc run on hw/examples/lmc.toml (mode = \"{mode}\", no start-up delay) over the 9600-baud bus, from the start: "
        f"{rig.background_kva:.0f} kVA background, the site wants {rig.demand_kw:.0f} kW and follows the charger through a 5 s first-order lag, "
        f"from {rig.initial_site_kw:.0f} kW at the charger's safe current")
    return above, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmc", default=os.path.join(ROOT, ".build/release/lmc"))
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--overshoot-s", type=int, default=150)
    ap.add_argument("--work", default=f"/tmp/lmc-bench-rs485-{os.getpid()}")
    ap.add_argument("--only", choices=["detection", "overshoot"])
    a = ap.parse_args()
    if a.only in (None, "detection"):
        detection(a.lmc, a.trials, os.path.join(a.work, "detection"))
    if a.only in (None, "overshoot"):
        for mode in ("incremental", "direct"):
            overshoot(a.lmc, mode, a.overshoot_s, os.path.join(a.work, f"overshoot-{mode}"))


if __name__ == "__main__":
    main()
