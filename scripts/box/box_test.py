#!/usr/bin/env python3
"""make box-test: the real .deb on a booted stock Debian 12 (systemd, sshd, serial console) under qemu.

    box_test.py --arch amd64 --deb out/lmc_0.2.0_amd64.deb --image /var/cache/lmc-box/debian12-amd64-…

The Modbus peers (Tests/peers: a live SDM630 meter and an Alfen-like charger) run on this host on
127.0.0.1; the guest reaches them at 10.0.2.2 (qemu's user-mode network). The guest boots from a
copy-on-write overlay of the cached image, so every run starts from the same stock system.

Every process started here (qemu, peers, ssh) gets PR_SET_PDEATHSIG=SIGKILL and is killed at exit too,
so nothing outlives the test, even when this driver is killed. Prints a table of the checks
(check, PASS/FAIL/SKIP, seconds) at the end; exit status 1 if any failed. docs/release.md, "Box test".
"""
import argparse
import atexit
import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import pexpect

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
LIBC = ctypes.CDLL(None, use_errno=True)
CHILDREN = []  # (Popen or pexpect.spawn) to kill at exit


def die_with_parent():
    LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def kill_children():
    for c in CHILDREN:
        try:
            pid = c.pid
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, AttributeError, TypeError):
            pass
    for c in CHILDREN:
        try:
            c.wait() if isinstance(c, subprocess.Popen) else None
        except Exception:
            pass


atexit.register(kill_children)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg):
    print(f"box-test [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class CheckFailed(Exception):
    pass


class Skip(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def wait_for(seconds, what, fn, step=0.25):
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 — retried until the deadline
            last = e
        time.sleep(step)
    raise CheckFailed(f"not within {seconds} s: {what} (last: {last!r})")


class Peer:
    """A Tests/peers program on 127.0.0.1, its stdout collected, its stdin for commands."""

    def __init__(self, args, logpath):
        self.lines = []
        self.cond = threading.Condition()
        self.log = open(logpath, "w")
        self.p = subprocess.Popen([PY] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                  text=True, bufsize=1, preexec_fn=die_with_parent)
        CHILDREN.append(self.p)
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait_line("READY", 30).split()[1])

    def _read(self):
        for line in self.p.stdout:
            self.log.write(line)
            self.log.flush()
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, prefix, timeout, start=0):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    if line.startswith(prefix):
                        return line
                left = end - time.monotonic()
                if left <= 0:
                    raise CheckFailed(f"peer printed no {prefix!r} line within {timeout} s")
                self.cond.wait(left)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def state(self):
        n = len(self.lines)
        self.send("state")
        return json.loads(self.wait_line("STATE ", 5, n)[6:])


class Box:
    """The guest: qemu with its serial console under pexpect, ssh to root through a forwarded port."""

    def __init__(self, arch, image, work):
        self.arch, self.image, self.work = arch, image, work
        self.overlay = os.path.join(work, "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        os.path.join(image, "rootfs.ext4"), self.overlay], check=True)
        self.key = os.path.join(work, "root_key")
        shutil.copy(os.path.join(image, "id_ed25519"), self.key)
        os.chmod(self.key, 0o600)
        self.ssh_port = free_port()
        self.console = None
        self.boots = 0
        self.consolelog = open(os.path.join(work, "console.log"), "ab")
        self.qmp_path = os.path.join(work, "qmp.sock")
        self.events = []  # (monotonic, QMP event name), from every boot
        self.master, self.cm = None, None

    def _qmp(self):
        """qemu's own events (WATCHDOG, RESET), timed as they arrive."""
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.qmp_path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.2)
        f = s.makefile("rw")
        f.readline()
        f.write('{"execute": "qmp_capabilities"}\n')
        f.flush()
        for line in f:
            try:
                ev = json.loads(line).get("event")
            except ValueError:
                continue
            if ev:
                self.events.append((time.monotonic(), ev))

    def qemu_cmd(self):
        common = ["-m", "1024", "-smp", "1", "-display", "none", "-monitor", "none",
                  "-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
                  "-kernel", os.path.join(self.image, "vmlinuz"), "-initrd", os.path.join(self.image, "initrd.img"),
                  "-drive", f"file={self.overlay},if=virtio,format=qcow2",
                  "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
                  "-device", "virtio-net-pci,netdev=n0",
                  # The i6300ESB's second stage resets the guest (as a real box's watchdog does).
                  "-device", "i6300esb", "-action", "watchdog=reset",
                  "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                  "-pidfile", os.path.join(self.work, "qemu.pid")]
        # systemd waits 90 s by default for a device unit (30 s for the console's here): under TCG on a
        # loaded machine udev's coldplug took longer, dev-ttyAMA0.device timed out, the serial getty was
        # never started and no login prompt came (the arm64 run's second boot, 2026-11-29). 10 minutes.
        append = ("root=/dev/vda rw quiet loglevel=3 i6300esb.heartbeat=10 systemd.show_status=0 "
                  "systemd.default_device_timeout_sec=600")
        if self.arch == "arm64":
            return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"] + common + ["-append", append + " console=ttyAMA0"]
        return ["qemu-system-x86_64", "-M", "pc", "-accel", "tcg"] + common + ["-append", append + " console=ttyS0"]

    def boot(self, timeout=600):
        cmd = self.qemu_cmd()
        self.console = pexpect.spawn("nice", ["-n", "10"] + cmd, timeout=timeout, preexec_fn=die_with_parent,
                                     dimensions=(24, 80))
        CHILDREN.append(self.console)
        self.console.logfile_read = self.consolelog
        threading.Thread(target=self._qmp, daemon=True).start()
        self.boots += 1
        self.wait_login_prompt(timeout)
        self.wait_ssh(120)

    def wait_login_prompt(self, timeout):
        """The serial console's login prompt. If systemd gave up waiting for the console's device (udev's
        coldplug is slow under TCG on a loaded machine: 'Timed out waiting for device dev-ttyAMA0.device',
        the serial getty never starts) while sshd already answers, the getty is started over ssh, once."""
        end = time.monotonic() + timeout
        con = "ttyAMA0" if self.arch == "arm64" else "ttyS0"
        kicked = False
        while True:
            try:
                self.console.expect(r"box login: ", timeout=60)
                return
            except pexpect.TIMEOUT:
                if time.monotonic() > end:
                    raise
            if kicked:
                continue
            try:
                r = self.ssh(f"systemctl is-active serial-getty@{con}.service", timeout=40)
            except subprocess.TimeoutExpired:
                continue
            if r.returncode != 0 and r.stdout.strip() in ("inactive", "failed"):
                log(f"no login prompt, sshd up, serial-getty@{con} {r.stdout.strip()}: started over ssh")
                self.ssh(f"systemctl start serial-getty@{con}.service", timeout=60)
                kicked = True

    def wait_ssh(self, timeout):
        wait_for(timeout, "ssh to the guest", lambda: self.ssh("true", timeout=20).returncode == 0, step=1)
        self.start_master()

    def start_master(self):
        """One ssh connection for root, shared by every later command (a key exchange costs seconds
        under TCG). Our child, not a daemon (no ControlPersist): it dies with the driver."""
        self.cm = os.path.join(self.work, f"cm-{self.boots}")
        m = subprocess.Popen(self.ssh_args(extra=("-M", "-N", "-S", self.cm, "-o", "ControlPersist=no")),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             preexec_fn=die_with_parent)
        CHILDREN.append(m)
        self.master = m
        wait_for(60, "the ssh master", lambda: os.path.exists(self.cm), step=0.2)

    def power_cut(self):
        """The plug pulled: qemu killed, no flush, no shutdown."""
        if self.master is not None:
            self.master.kill()
            self.master = None
        os.kill(self.console.pid, signal.SIGKILL)
        try:
            pid = int(open(os.path.join(self.work, "qemu.pid")).read())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        self.console.close(force=True)
        time.sleep(0.5)

    def new_disk(self, name):
        """A fresh copy-on-write overlay of the stock image for the next boot (the old one is removed)."""
        if os.path.exists(self.overlay):
            os.remove(self.overlay)
        self.overlay = os.path.join(self.work, f"disk-{name}.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        os.path.join(self.image, "rootfs.ext4"), self.overlay], check=True)

    def ssh_args(self, user="root", key=None, extra=()):
        return ["ssh", "-p", str(self.ssh_port), "-i", key or self.key, "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=20", *extra, f"{user}@127.0.0.1"]

    def ssh(self, command, user="root", key=None, extra=(), timeout=120, input=None):
        if user == "root" and not extra and self.master is not None and self.master.poll() is None and os.path.exists(self.cm):
            extra = ("-S", self.cm, "-o", "ControlMaster=no")
        args = self.ssh_args(user, key, extra) + ([command] if command is not None else [])
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input,
                              preexec_fn=die_with_parent)

    def root(self, command, timeout=120, check=True):
        r = self.ssh(command, timeout=timeout)
        if check and r.returncode != 0:
            raise CheckFailed(f"guest: {command!r} exited {r.returncode}: {r.stdout[-800:]}{r.stderr[-800:]}")
        return r.stdout

    def scp(self, src, dst):
        subprocess.run(["scp", "-q", "-P", str(self.ssh_port), "-i", self.key, "-o", "BatchMode=yes",
                        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                        src, f"root@127.0.0.1:{dst}"], check=True, timeout=300, preexec_fn=die_with_parent)

    def console_run(self, command, prompt, timeout=60):
        """Runs a command on the serial console's shell; returns its output (without the echo)."""
        c = self.console
        c.sendline(command + '; echo "__R""C=$?"')
        c.expect(r"__RC=(\d+)", timeout=timeout)
        out = c.before.decode(errors="replace")
        rc = int(c.match.group(1))
        c.expect(prompt, timeout=timeout)
        # Drop the echoed command line (it may wrap at 80 columns: up to the marker's echo).
        idx = out.find('__R""C=$?')
        if idx >= 0:
            out = out[idx + len('__R""C=$?'):]
        out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
        return rc, out.replace("\r\n", "\n").lstrip("\n")


# How long lmc has run before its footprint is read (check 2): past the 5 s after which it unmaps its
# start-up pages (StartupPages in LMCPlatform), so the reading is the running loop's.
# BOX_FOOTPRINT_AFTER_S reads it earlier or later.
FOOTPRINT_AFTER_S = int(os.environ.get("BOX_FOOTPRINT_AFTER_S", "15"))


def smaps_breakdown(text):
    """/proc/PID/smaps → ([(Rss, Anonymous, AnonHugePages, size KiB, perms, name)] by Rss, largest first;
    AnonHugePages in all). Anonymous mappings are named by what they look like: a thread's stack (8 MiB
    behind a guard page), a malloc arena (its reserve of PROT_NONE behind it)."""
    maps = []
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$", line)
        if m:
            maps.append({"start": int(m[1], 16), "end": int(m[2], 16), "perms": m[3], "name": m[4].strip()})
        elif maps and re.match(r"^(Rss|Anonymous|AnonHugePages):", line):
            maps[-1][line.split(":")[0]] = int(line.split()[1])
    rows = []
    for i, m in enumerate(maps):
        name = m["name"]
        prev = maps[i - 1] if i else None
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        if not name:
            if prev and prev["perms"] == "---p" and prev["end"] == m["start"] and prev["end"] - prev["start"] <= 65536:
                name = "[thread stack]"
            elif nxt and nxt["perms"] == "---p" and nxt["start"] == m["end"] and not nxt["name"]:
                name = "[malloc arena]"
            else:
                name = "[anonymous]"
        if m.get("Rss", 0):
            rows.append((m["Rss"], m.get("Anonymous", 0), m.get("AnonHugePages", 0), (m["end"] - m["start"]) // 1024, m["perms"], name))
    rows.sort(key=lambda r: -r[0])
    return rows, sum(m.get("AnonHugePages", 0) for m in maps)


def service(box):
    out = box.root("systemctl show lmc -p ActiveState,SubState,MainPID,NRestarts,Result,ExecMainStatus,StatusText,ActiveEnterTimestampMonotonic")
    return dict(line.split("=", 1) for line in out.strip().splitlines() if "=" in line)


# The guest's lmc.toml: RunTests' end-to-end site (tests/FieldControllerTests/RunTests.swift) with its peers
# on the host, the package's paths (rings in /var/lib/lmc, socket in /run/lmc), the charger's validity
# shortened to 6 s (a copy of the Alfen profile) so a hung lmc shows at the charger within the test.
# release010: only the keys 0.1.0 knew (it refuses the others: no trips or minutes ring then), the
# charger's profile by name (0.1.0's package has its own hw/); the same file is then read by 0.2.0.
# breaker: a [site.breaker] on the guest's GPIO chip (trip and close lines, no auxiliary contact) and
# max_trips = 1, so one test trip locks the site out.
def guest_config(meter_port, charger_port, box_extra="", release010=False, breaker=None):
    rings = "" if release010 else "trips_mb = 1\nminutes_mb = 0.5\n"
    profile = "alfen-ng9xx" if release010 else "/etc/lmc/alfen-box.toml"
    lockout = "max_trips = 1\nbreaker_confirm_s = 1\n" if breaker else ""
    site_breaker = ""
    if breaker:
        site_breaker = (f'[site.breaker]\nchip = "{breaker["chip"]}"\ntrip_line = {breaker["trip"]}\n'
                        f'close_line = {breaker["close"]}\npulse_ms = 200\n')
    return f"""# make box-test: peers on the host (10.0.2.2)
[box]
id = "box-test"
socket = "/run/lmc/control.sock"
{box_extra}
[log]
sync_interval_s = 1
samples_mb = 2
halfhours_mb = 0.1
{rings}events_mb = 0.5
[control]
mode = "incremental"
period_ms = 100
[failsafe]
good_samples = 5
startup_delay_max_s = 0
recovery_ramp_kw_per_s = 100
{lockout}[[bus]]
id = "meters"
tcp = "10.0.2.2:{meter_port}"
timeout_ms = 300
[[meter]]
id = "trafo_ct"
bus = "meters"
profile = "eastron-sdm630"
poll_ms = 100
ct_rating_a = 800
[[measurement_point]]
id = "trafo"
kind = "apparent_power"
meter = "trafo_ct"
sensitivity_per_kw = 1.0
regulate_margin_kva = 8
ride_through_s = 0.3
regulate_interval_s = 2
release_interval_s = 5
filter_s = 0.2
[measurement_point.upper]
limit_kva = 500
release_zone_kva = 492
release_trigger_kva = 488
[[site]]
id = "hub"
firm_kw = 150
rated_kw = 250
setpoint_unit = "a"
quantum = 1
ramp_up_kw_per_s = 100
[site.charger]
profile = "{profile}"
tcp = "10.0.2.2:{charger_port}"
max_current_a = 400
{site_breaker}"""


LOADED = {"voltage_l1": 230, "voltage_l2": 230, "voltage_l3": 230, "current_l1": 579.7, "current_l2": 579.7,
          "current_l3": 579.7, "apparent_power_total": 400000, "power_total": 390000}
STEP = {"apparent_power_total": 520000, "current_l1": 753.6, "current_l2": 753.6, "current_l3": 753.6}
RATED_A, SAFE_A = 362, 217  # 250 kW and 150 kW at 3 × 230 V
VALIDITY_S = 6


class Run:
    def __init__(self, args):
        self.args = args
        self.results = []  # (name, status, seconds, note)
        self.work = tempfile.mkdtemp(prefix="lmc-box-")
        log(f"work directory {self.work} (console.log, peer logs)")

    def check(self, name, fn, skip=None):
        if skip:
            self.results.append((name, "SKIP", 0.0, skip))
            log(f"SKIP {name}: {skip}")
            return None
        log(f"---- {name}")
        t0 = time.monotonic()
        try:
            note = fn() or ""
            status = "PASS"
        except CheckFailed as e:
            status, note = "FAIL", str(e)
        except Skip as e:
            status, note = "SKIP", str(e)
        except Exception as e:  # noqa: BLE001 — a crashed check is a failed check, the run goes on
            status, note = "FAIL", f"{type(e).__name__}: {e}"
            traceback.print_exc()
        dt = time.monotonic() - t0
        self.results.append((name, status, dt, note))
        log(f"{status} {name} ({dt:.1f} s){': ' + note if note else ''}")
        return status == "PASS"

    # ---------------------------------------------------------------- checks
    def boot(self):
        self.box.boot()
        return f"boot {self.box.boots}: login prompt and sshd up"

    def install(self):
        b = self.box
        b.scp(self.args.deb, "/root/lmc.deb")
        out = b.root("dpkg -i /root/lmc.deb 2>&1")
        for g in ("lmc", "lmc-admin", "gpio"):
            expect(b.ssh(f"getent group {g}").returncode == 0, f"group {g} missing after install")
        # The site: peers on the host, a copy of the Alfen profile with a 6 s validity.
        prof = open(os.path.join(REPO, "hw/chargers/alfen-ng9xx.toml")).read()
        prof = re.sub(r"(?m)^validity_s = .*$", f"validity_s = {VALIDITY_S}", prof)
        self.put("/etc/lmc/alfen-box.toml", prof, "0644", "root:root")
        self.put("/etc/lmc/lmc.toml", guest_config(self.meter.port, self.charger.port), "0640", "root:lmc")
        b.root("lmc config check --config /etc/lmc/lmc.toml")
        b.root("systemctl enable --now lmc 2>&1", timeout=180)
        s = wait_for(60, "lmc.service active (running)", lambda: (lambda s: s if s["SubState"] == "running" else None)(service(b)))
        st = b.ssh("SYSTEMD_COLORS=0 systemctl status lmc --no-pager -l").stdout
        print(st)
        expect("active (running)" in st, "systemctl status lmc: not active (running)")
        expect("216/GROUP" not in st and "status=2" not in st, "systemctl status lmc shows an exec failure")
        return f"dpkg -i ok; READY: {s['StatusText'][:60]!r}"

    def deb_version(self):
        return subprocess.run(["dpkg-deb", "-f", self.args.deb, "Version"], capture_output=True, text=True).stdout.strip()

    def install_release010(self):
        """BOX_ONLY=footprint with a 0.1.x package: installed and started as check 6 runs the previous
        release (the gpio group by hand, 0.1.0's keys, the chown drop-in if its filter kills it)."""
        b = self.box
        b.scp(self.args.deb, "/root/lmc.deb")
        b.root("dpkg -i /root/lmc.deb 2>&1 </dev/null", timeout=300)
        if b.ssh("getent group gpio").returncode != 0:
            b.root("groupadd --system gpio")
        self.put("/etc/lmc/lmc.toml", guest_config(self.meter.port, self.charger.port, release010=True), "0640", "root:lmc")
        b.root("lmc config check --config /etc/lmc/lmc.toml")
        b.root("systemctl enable --now lmc 2>&1", timeout=180, check=False)
        try:
            wait_for(40, "active (running)", lambda: service(b)["SubState"] == "running" and service(b)["NRestarts"] == "0", step=1)
        except CheckFailed:
            b.root("mkdir -p /etc/systemd/system/lmc.service.d && printf '[Service]\\nSystemCallFilter=@chown\\n' > "
                   "/etc/systemd/system/lmc.service.d/field.conf && systemctl daemon-reload && systemctl reset-failed lmc; "
                   "systemctl restart lmc", timeout=120)
            wait_for(40, "active (running) with the chown drop-in", lambda: service(b)["SubState"] == "running", step=1)
        return f"{self.deb_version()} running"

    def put(self, path, text, mode, owner):
        self.box.ssh(f"cat > {path} && chmod {mode} {path} && chown {owner} {path}", input=text)

    def load_step(self):
        wait_for(30, f"charger at the rated {RATED_A} A", lambda: self.charger.state()["applied_a"] == RATED_A)
        t0 = time.monotonic()
        self.meter.send("set " + json.dumps(STEP))
        a = wait_for(10, f"charger below {RATED_A} A", lambda: (lambda a: a if a < RATED_A else None)(self.charger.state()["applied_a"]))
        dt = time.monotonic() - t0
        self.meter.send("set " + json.dumps(LOADED))
        return f"520 kVA at the meter → charger {RATED_A} A → {a:g} A in {dt:.1f} s; " + self.footprint()

    def footprint(self):
        """lmc's footprint on the box's own kernel (Debian 12's 6.1, transparent_hugepage=always): what
        docs/PERFORMANCE.md's RSS rows mean on a box. Read once lmc has run FOOTPRINT_AFTER_S (it unmaps
        its start-up pages 5 s into the loop), with the mappings that hold the most printed to the log:
        anonymous memory in 2 MiB pages (AnonHugePages) is the arm64 box's old 11.5 MiB."""
        pid = service(self.box)["MainPID"]
        r = self.box.root(f"ps -o etimes= -p {pid}", check=False)
        up = int(r.strip() or 0) if isinstance(r, str) else 0
        if up < FOOTPRINT_AFTER_S:
            time.sleep(FOOTPRINT_AFTER_S - up)
        s = service(self.box)
        if s["MainPID"] != pid or s["NRestarts"] != "0":
            j = self.box.root("journalctl -u lmc --no-pager -o short-monotonic -n 30", check=False)
            print(j)
            raise CheckFailed(f"lmc {pid} did not last {FOOTPRINT_AFTER_S} s (now {s['MainPID']}, {s['NRestarts']} restarts): "
                              + " | ".join(str(j).strip().split("\n")[-5:])[-500:])
        # The sums of smaps, not /proc/PID/status: on 6.1 each thread keeps its own count of the pages
        # it faulted in and hands it over only every 64 faults, so VmRSS lags what is mapped.
        st = self.box.root(f"grep -E '^VmRSS:' /proc/{pid}/status")
        rows, huge = smaps_breakdown(self.box.root(f"cat /proc/{pid}/smaps"))
        rss, anon = sum(r[0] for r in rows), sum(r[1] for r in rows)
        log(f"lmc (pid {pid}, up {max(up, FOOTPRINT_AFTER_S)} s) mappings by RSS, KiB: Rss Anonymous AnonHugePages size perms name")
        for r in rows[:12]:
            print("    %7d %7d %7d %9d %s %s" % r)
        return (f"lmc RSS {rss / 1024:.1f} MiB ({anon / 1024:.1f} its own, {(rss - anon) / 1024:.1f} mapped from the binary; "
                f"{huge / 1024:.1f} MiB in huge pages) by smaps; {st.split()[1] if st.split() else '?'} kB by status")

    def engineer(self):
        b, c = self.box, self.box.console
        b.root("id eng >/dev/null 2>&1 || useradd -m -s /bin/bash -G lmc eng && echo eng:eng | chpasswd")
        wait_for(30, f"charger back at {RATED_A} A", lambda: self.charger.state()["applied_a"] == RATED_A)
        c.sendline("")
        c.expect(r"box login: ", timeout=30)
        c.sendline("eng")
        c.expect(r"Password: ", timeout=30)
        c.sendline("eng")
        c.expect(r"\$ ", timeout=60)
        prompt = r"ENG> "
        c.sendline("stty rows 24 cols 80; bind 'set enable-bracketed-paste off'; export TERM=vt100 PS1='ENG''> '")
        c.expect(prompt, timeout=30)
        rc, status = b.console_run("lmc status", prompt)
        print(status)
        lines = status.rstrip("\n").split("\n")
        wide = [l for l in lines if len(l) > 80]
        expect(rc == 0, f"lmc status exited {rc}")
        expect(len(lines) <= 24 and not wide, f"lmc status does not fit 80×24: {len(lines)} lines, {len(wide)} wider than 80")
        expect("NORMAL" in status, "lmc status: no NORMAL")
        expect(re.search(r"\b(399|400)(\.\d+)?\b", status), "lmc status: the meter's 400 kVA not shown")
        rc, doctor = b.console_run("lmc doctor", prompt, timeout=120)
        print(doctor)
        self.doctor = (rc, doctor)
        c.sendline("exit")
        c.expect(r"box login: ", timeout=30)
        # The guest has no NTP server: its clock is never synchronised, and doctor says so. Anything else
        # doctor fails for the engineer is a finding.
        fails = {l.split()[1] for l in doctor.split("\n") if l.startswith("FAIL")}
        warns = sorted({l.split()[1] for l in doctor.split("\n") if l.startswith("warn")})
        expect(not (fails - {"clock"}), f"lmc doctor (as eng, group lmc) fails {sorted(fails)}: " +
               " | ".join(l.strip() for l in doctor.split("\n") if l.startswith("FAIL"))[:300])
        return (f"status {len(lines)} lines × {max(len(l) for l in lines)} cols; doctor exit {rc}: "
                f"FAIL {','.join(sorted(fails)) or '-'} (no NTP in the VM), warn {','.join(warns) or '-'}")

    def dno(self):
        b = self.box
        key = os.path.join(self.work, "dno_key")
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dno-log-collector@dno.example", "-f", key], check=True)
        pub = open(key + ".pub").read().strip()
        b.root(f"echo {shlex.quote('restrict ' + pub)} >> /etc/lmc/dno_authorized_keys && "
               "chown root:root /etc/lmc/dno_authorized_keys && chmod 0644 /etc/lmc/dno_authorized_keys")
        r = b.ssh("log export --ring samples", user="lmc-logs", key=key)
        head = r.stdout.split("\n", 1)[0]
        rows = r.stdout.count("\n") - 1
        expect(r.returncode == 0, f"log export exited {r.returncode}: {r.stderr.strip()[:200]}")
        expect(head.startswith("seq,time,mono_s"), f"log export: not the samples CSV: {head[:80]!r}")
        expect(rows > 10, f"log export: {rows} rows")
        # A shell: no command → the forced command refuses, nothing runs.
        r = b.ssh(None, user="lmc-logs", key=key, input="id\n")
        expect(r.returncode != 0 and "uid=" not in r.stdout, f"a shell was not refused: rc {r.returncode} {r.stdout[:100]!r}")
        r = b.ssh("log export; id", user="lmc-logs", key=key)
        expect(r.returncode != 0 and "uid=" not in r.stdout, f"'log export; id' not refused: rc {r.returncode} {r.stdout[:100]!r}")
        r = b.ssh("log info", user="lmc-logs", key=key, extra=("-tt",))
        expect(r.returncode != 0 or "PTY" in r.stderr or "pty" in r.stderr, "ssh -tt: no refusal of the PTY")
        # A port forward: -L to the guest's own sshd. The listener is ours; the channel must be refused.
        lport = free_port()
        p = subprocess.Popen(self.box.ssh_args("lmc-logs", key, ("-N", "-L", f"127.0.0.1:{lport}:127.0.0.1:22")),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent)
        CHILDREN.append(p)
        try:
            banner = b""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", lport), timeout=5) as s:
                        s.settimeout(8)
                        try:
                            banner = s.recv(64)
                        except (socket.timeout, ConnectionResetError):
                            banner = b""
                        break
                except OSError:
                    time.sleep(0.5)
            else:
                raise CheckFailed("ssh -L: the local listener never came up")
        finally:
            p.kill()
            err = p.communicate()[1]
        expect(not banner.startswith(b"SSH-"), f"ssh -L forwarded to the guest's sshd: {banner!r}")
        return f"export {rows} rows; shell, -tt, -L ({err.strip().splitlines()[-1][:60] if err.strip() else 'closed'}), ';' refused"

    def kill9(self):
        b = self.box
        s0 = service(b)
        t_kill = float(b.root(f"kill -9 {s0['MainPID']}; cut -d' ' -f1 /proc/uptime"))
        s = wait_for(60, "a new lmc active (running)", lambda: (lambda s: s if s["SubState"] == "running" and s["MainPID"] not in ("0", s0["MainPID"]) else None)(service(b)))
        expect(int(s["NRestarts"]) == int(s0["NRestarts"]) + 1, f"NRestarts {s0['NRestarts']} → {s['NRestarts']}")
        ready = int(s["ActiveEnterTimestampMonotonic"]) / 1e6 - t_kill
        return f"pid {s0['MainPID']} → {s['MainPID']}, READY again {ready:.1f} s after the kill (guest clock; RestartSec=2s)"

    def stop_hang(self):
        b = self.box
        wait_for(30, f"charger at {RATED_A} A", lambda: self.charger.state()["applied_a"] == RATED_A)
        s0 = service(b)
        t_stop = float(b.root(f"kill -STOP {s0['MainPID']}; cut -d' ' -f1 /proc/uptime"))
        t0 = time.monotonic()
        wait_for(VALIDITY_S + 10, f"charger at its safe {SAFE_A} A", lambda: self.charger.state()["applied_a"] == SAFE_A)
        t_safe = time.monotonic() - t0
        s = wait_for(60, "systemd's watchdog restarts lmc", lambda: (lambda s: s if s["SubState"] == "running" and s["MainPID"] not in ("0", s0["MainPID"]) else None)(service(b)), step=0.5)
        t_restart = int(s["ActiveEnterTimestampMonotonic"]) / 1e6 - t_stop
        j = b.root("journalctl -u lmc --no-pager -o cat -n 60")
        expect("watchdog" in j.lower(), "the journal names no watchdog timeout")
        wait_for(30, f"charger back at {RATED_A} A", lambda: self.charger.state()["applied_a"] == RATED_A)
        return f"charger at {SAFE_A} A {t_safe:.1f} s after the STOP (validity {VALIDITY_S} s); READY again after {t_restart:.1f} s (WatchdogSec=5s); back at {RATED_A} A after {time.monotonic() - t0:.1f} s"

    def find_gpio(self):
        """A GPIO chip of the guest with two free lines for a breaker, or None (with the reason)."""
        b = self.box
        chips = b.root("ls /dev/gpiochip* 2>/dev/null; true").split()
        if not chips:
            return None, f"no GPIO chip in the {b.arch} guest (/dev/gpiochip* empty)"
        for dev in chips:
            r = b.ssh(f"lmc gpio info --chip {dev}")
            if r.returncode != 0:
                continue
            free = [int(m.group(1)) for m in re.finditer(r"line +(\d+):.*\bfree\b", r.stdout)]
            if len(free) >= 2:
                head = r.stdout.split("\n", 1)[0]
                return {"chip": os.path.basename(dev), "trip": free[0], "close": free[1], "info": head}, None
        return None, f"no chip with two free lines: {chips}"

    def trip_to_lockout(self, gpio):
        """A breaker on the guest's GPIO chip, max_trips = 1; one test trip: LOCKOUT, in breakers.state."""
        b = self.box
        self.put("/etc/lmc/lmc.toml", guest_config(self.meter.port, self.charger.port, breaker=gpio), "0640", "root:lmc")
        b.root("lmc config check --config /etc/lmc/lmc.toml")
        b.root("systemctl restart lmc", timeout=120)
        wait_for(60, "lmc active with the breaker", lambda: service(b)["SubState"] == "running", step=1)
        wait_for(30, "NORMAL before the trip", lambda: "NORMAL" in b.root("lmc status"), step=1)
        b.root(f"lmc test trip --site hub --yes")
        st = wait_for(30, "LOCKOUT after one trip (max_trips 1)",
                      lambda: (lambda s: s if "LOCKOUT" in s else None)(b.root("lmc status")), step=1)
        state = wait_for(10, "a lockout line in breakers.state",
                         lambda: (lambda s: s if "\tlockout\t" in s else None)(b.root("cat /var/lib/lmc/breakers.state")), step=0.5)
        return state

    def power_cut(self):
        b = self.box
        gpio, why_not = self.find_gpio()
        state0 = self.trip_to_lockout(gpio) if gpio else None
        t_guest = float(b.root("date +%s.%N"))
        b.power_cut()
        t0 = time.monotonic()
        b.boot()
        boot_s = time.monotonic() - t0
        wait_for(120, "lmc active after the power cut", lambda: service(b)["SubState"] == "running", step=1)
        info = b.root("lmc log info")
        csv = b.root(f"lmc log export --ring samples --format csv")
        times = []
        for line in csv.split("\n")[1:]:
            f = line.split(",")
            if len(f) > 2:
                times.append((f[1], line))
        # The last sample before the cut, then the first after it.
        import datetime
        def ts(t):
            return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
        before_cut = [ts(t) for t, _ in times if ts(t) <= t_guest + 0.2]
        expect(before_cut, "no sample from before the power cut survived")
        lost = t_guest - max(before_cut)
        expect(lost <= 1.0 + 0.6, f"{lost:.2f} s of samples lost before the cut (sync_interval_s = 1)")
        note = f"boot {boot_s:.0f} s; rings open; last sample {lost:.2f} s before the cut (sync_interval_s 1); "
        if not gpio:
            return note + f"breakers.state not tried: {why_not}"
        state1 = b.root("cat /var/lib/lmc/breakers.state")
        expect(state1 == state0, f"breakers.state changed across the cut: {state0!r} → {state1!r}")
        st = wait_for(30, "LOCKOUT after the power cut", lambda: (lambda s: s if "LOCKOUT" in s else None)(b.root("lmc status")), step=1)
        print(st)
        events = b.root("lmc log export --ring events --format csv | tail -n 40")
        expect("breaker state restored" in events, "the events ring does not say the breaker state was restored")
        b.root("lmc reset-lockout")
        st2 = wait_for(20, "no LOCKOUT after lmc reset-lockout", lambda: (lambda s: s if "LOCKOUT" not in s.split("\n", 1)[0] else None)(b.root("lmc status")), step=1)
        return note + (f"breaker on {gpio['info'].split(' ', 1)[0]} {gpio['info'].split(' ', 1)[1][:30]} lines {gpio['trip']}/{gpio['close']}: "
                       f"test trip → LOCKOUT, after the cut still LOCKOUT (breakers.state identical, 'restored' in events); "
                       f"reset-lockout → {st2.split(chr(10), 1)[0].split()[1] if len(st2.split()) > 1 else '?'}")

    def hw_watchdog(self):
        b = self.box
        devs = b.ssh("ls -l /dev/watchdog*").stdout
        if "watchdog0" not in devs:
            raise Skip(f"no /dev/watchdog0 in the {b.arch} guest (i6300esb)")
        print(devs)
        self.put("/etc/lmc/lmc.toml", guest_config(self.meter.port, self.charger.port, 'hardware_watchdog = "/dev/watchdog0"'), "0640", "root:lmc")
        # systemd's watchdog off: a hung lmc stays hung, so only the hardware watchdog can act.
        b.root("mkdir -p /run/systemd/system/lmc.service.d && printf '[Service]\\nWatchdogSec=0\\n' > /run/systemd/system/lmc.service.d/box.conf && systemctl daemon-reload && systemctl restart lmc")
        wait_for(60, "lmc active", lambda: service(b)["SubState"] == "running", step=1)
        j = wait_for(20, "the hardware watchdog armed or refused", lambda: (lambda j: j if "hardware watchdog" in j.lower() or "HARDWARE_WATCHDOG" in j else None)(b.root("journalctl -u lmc --no-pager -o cat -n 80")), step=1)
        lines = [l for l in j.split("\n") if "watchdog" in l.lower()]
        expect(any("armed" in l for l in lines), "lmc did not arm /dev/watchdog0: " + " | ".join(lines)[-300:])
        pid = service(b)["MainPID"]
        b.root(f"kill -STOP {pid}")
        t0 = time.monotonic()
        # qemu reports the i6300ESB's reset on QMP (WATCHDOG, then RESET).
        ev = wait_for(120, "qemu's WATCHDOG event", lambda: next((t for t, e in b.events if e == "WATCHDOG" and t > t0), None), step=0.5)
        t_reset = ev - t0
        expect(any(e == "RESET" and t >= ev for t, e in b.events) or
               wait_for(10, "qemu's RESET event", lambda: any(e == "RESET" and t >= ev for t, e in b.events)), "no RESET")
        # The last check: the guest's boot after the reset is not waited for (boots are the run's cost).
        return f"qemu WATCHDOG + RESET {t_reset:.0f} s after lmc stopped petting (i6300esb heartbeat 10 s)"

    def upgrade(self):
        """The package upgraded in place over a running, logging lmc: what the site made must survive.
        No earlier release exists to upgrade from (git has no tag), so the package under test is
        relabelled VERSION+box1 and installed over itself: the upgrade path of dpkg and the maintainer
        scripts (prerm upgrade, unpack, postinst configure OLD), not a change of binary or ring format
        (RingUpgradeTests cover 0.1.0 rings)."""
        b = self.box
        stage = os.path.join(self.work, "upgrade")
        subprocess.run(["dpkg-deb", "-R", self.args.deb, stage], check=True)
        ctl = os.path.join(stage, "DEBIAN/control")
        text = open(ctl).read()
        old_v = re.search(r"(?m)^Version: (.*)$", text).group(1)
        new_v = old_v + "+box1"
        open(ctl, "w").write(text.replace(f"Version: {old_v}", f"Version: {new_v}"))
        new_deb = os.path.join(self.work, f"lmc_{new_v}.deb")
        subprocess.run(["dpkg-deb", "--root-owner-group", "-b", stage, new_deb], check=True, stdout=subprocess.DEVNULL)
        b.scp(new_deb, "/root/lmc-new.deb")
        keep = "/etc/lmc/lmc.toml /etc/lmc/dno_authorized_keys /etc/lmc/alfen-box.toml /var/lib/lmc/breakers.state"
        before = b.root(f"md5sum {keep} 2>/dev/null; true")
        seq0 = int(b.root("lmc log export --ring samples | tail -n 1 | cut -d, -f1"))
        s0 = service(b)
        out = b.root("dpkg -i /root/lmc-new.deb 2>&1 </dev/null", timeout=300)
        expect(b.root("dpkg-query -W -f '${Version}' lmc") == new_v, "the new version is not installed")
        after = b.root(f"md5sum {keep} 2>/dev/null; true")
        expect(before == after, f"config or keys changed by the upgrade: {before} → {after}")
        wait_for(60, "lmc active after the upgrade", lambda: service(b)["SubState"] == "running", step=1)
        time.sleep(2)
        seq1 = int(b.root("lmc log export --ring samples | tail -n 1 | cut -d, -f1"))
        expect(seq1 > seq0, f"the samples ring did not go on: seq {seq0} → {seq1}")
        s1 = service(b)
        exe = b.root(f"readlink /proc/{s1['MainPID']}/exe").strip()
        expect(not exe.endswith("(deleted)"), f"after the upgrade lmc.service still runs the old binary (pid {s1['MainPID']}, exe {exe!r}): the package does not restart it")
        r = b.ssh("log info", user="lmc-logs", key=os.path.join(self.work, "dno_key"))
        expect(r.returncode == 0, f"the DNO's key no longer works after the upgrade: {r.stderr.strip()[:200]}")
        return f"{old_v} → {new_v}: config, keys, rings kept (seq {seq0} → {seq1}); pid {s0['MainPID']} → {s1['MainPID']}"

    def upgrade_release(self):
        """The previous release's own package (built from its commit by scripts/box/old-release.sh) on a
        fresh stock Debian 12, run and logging as a field box ran it; then this package installed over it:
        config, rings (the sequence goes on), the DNO's key file kept, the new binary READY."""
        notes = []
        try:
            return self._upgrade_release(notes)
        except CheckFailed as e:
            raise CheckFailed(f"{e} [so far: {'; '.join(notes)}]")

    def _upgrade_release(self, notes):
        b = self.box
        a = self.args
        # A new box: the stock image again (the checks before changed this one).
        if b.console is not None:
            b.power_cut()
        b.new_disk("upgrade")
        t0 = time.monotonic()
        b.boot()
        notes.append(f"boot {time.monotonic() - t0:.0f} s")
        b.scp(a.old_deb, "/root/lmc-old.deb")
        b.root("dpkg -i /root/lmc-old.deb 2>&1 </dev/null", timeout=300)
        old_v = b.root("dpkg-query -W -f '${Version}' lmc")
        expect(b.root("lmc --version").strip() == old_v, f"lmc --version is not {old_v}")
        # 0.1.0's unit names SupplementaryGroups=gpio and its sysusers makes no such group: on stock
        # Debian 12 systemd refuses to start it (216/GROUP). A field box that ran it had the group.
        if b.ssh("getent group gpio").returncode != 0:
            b.root("groupadd --system gpio")
            notes.append("gpio group made by hand for " + old_v)
        self.put("/etc/lmc/lmc.toml", guest_config(self.meter.port, self.charger.port, release010=True), "0640", "root:lmc")
        b.root("lmc config check --config /etc/lmc/lmc.toml")
        b.root("systemctl enable --now lmc 2>&1", timeout=180, check=False)
        try:
            wait_for(40, f"{old_v} active (running)", lambda: service(b)["SubState"] == "running" and service(b)["NRestarts"] == "0", step=1)
        except CheckFailed:
            j = b.root("journalctl -u lmc --no-pager -o short-monotonic -n 40")
            if "SYS" not in j:
                raise CheckFailed(f"{old_v} does not start: " + " | ".join(j.strip().split("\n")[-6:])[-600:])
            # Its seccomp filter (~@privileged) kills it when it gives the control socket to group lmc
            # (chown, SIGSYS): what a field box that ran it had is a drop-in allowing chown. It stays on
            # the box through the upgrade, as it would.
            b.root("mkdir -p /etc/systemd/system/lmc.service.d && printf '[Service]\\nSystemCallFilter=@chown\\n' > "
                   "/etc/systemd/system/lmc.service.d/field.conf && systemctl daemon-reload && systemctl reset-failed lmc; "
                   "systemctl restart lmc", timeout=120)
            wait_for(40, f"{old_v} active (running) with the drop-in", lambda: service(b)["SubState"] == "running", step=1)
            notes.append(f"{old_v} died of SIGSYS under its own unit: drop-in SystemCallFilter=@chown, as on a field box")
        s0 = service(b)
        # It logs: the samples ring fills for a while.
        wait_for(60, f"{old_v} logging samples", lambda: int(b.root("lmc log export --ring samples | tail -n 1 | cut -d, -f1") or 0) > 50, step=2)
        # The DNO's key where 0.1.0's sshd drop-in would look for it (the account's home, /var/lib/lmc).
        key = os.path.join(self.work, "dno_key_010")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dno@010", "-f", key], check=True)
        pub = open(key + ".pub").read().strip()
        b.root(f"install -d -m 0700 -o lmc-logs -g lmc /var/lib/lmc/.ssh && echo {shlex.quote(pub)} > /var/lib/lmc/.ssh/authorized_keys && "
               "chown lmc-logs:lmc /var/lib/lmc/.ssh/authorized_keys && chmod 0600 /var/lib/lmc/.ssh/authorized_keys")
        r = b.ssh("log info", user="lmc-logs", key=key)
        old_dno = "accepted" if r.returncode == 0 else "refused"
        keep = "/etc/lmc/lmc.toml /var/lib/lmc/.ssh/authorized_keys /etc/systemd/system/lmc.service.d/field.conf"
        before = b.root(f"md5sum {keep} 2>/dev/null; true")
        seqs0 = [int(x) for x in b.root("lmc log export --ring samples | cut -d, -f1 | tail -n +2").split()]
        events0 = b.root("lmc log export --ring events | tail -n +2").count("\n")
        # The upgrade, over the running old lmc, without a terminal, as a remote or scripted upgrade runs,
        # and with no --force-conf* option: 0.1.0's /etc/lmc/lmc.toml was a conffile every site edits, and
        # the example it started from has changed since, so dpkg used to ask about it and, with no one to
        # answer, stopped there (the first run of this check: "end of file on stdin at conffile prompt",
        # lmc unpacked but not configured). This package ships no conffile in /etc/lmc: postinst makes
        # the site's files from the examples only when they do not exist (docs/release.md, "Upgrading").
        b.scp(a.deb, "/root/lmc-new.deb")
        r = b.ssh("dpkg -i /root/lmc-new.deb 2>&1 </dev/null", timeout=300)
        print(r.stdout)
        expect(r.returncode == 0 and "conffile prompt" not in r.stdout,
               f"plain dpkg -i with no terminal: rc {r.returncode}: " + " | ".join(r.stdout.strip().split("\n")[-4:])[-400:])
        notes.append("plain dpkg -i </dev/null: no conffile question")
        new_v = b.root("dpkg-query -W -f '${Version}' lmc")
        expect(new_v != old_v and b.root("lmc --version").strip() == new_v, f"after dpkg -i: package {new_v}, lmc --version {b.root('lmc --version').strip()}")
        after = b.root(f"md5sum {keep} 2>/dev/null; true")
        expect(before == after, f"the config or the key changed in the upgrade: {before} → {after}")
        s1 = wait_for(60, f"{new_v} active (running)", lambda: (lambda s: s if s["SubState"] == "running" and s["MainPID"] != s0["MainPID"] else None)(service(b)), step=1)
        exe = b.root(f"readlink /proc/{s1['MainPID']}/exe").strip()
        expect(not exe.endswith("(deleted)"), f"the service still runs {old_v}'s binary ({exe})")
        st = wait_for(30, f"{new_v}'s lmc status NORMAL", lambda: (lambda s: s if "NORMAL" in s else None)(b.root("lmc status")), step=1)
        time.sleep(3)
        seqs1 = [int(x) for x in b.root("lmc log export --ring samples | cut -d, -f1 | tail -n +2").split()]
        expect(seqs1[:len(seqs0)] == seqs0, f"{old_v}'s samples are not all there after the upgrade ({len(seqs0)} before)")
        new = seqs1[len(seqs0):]
        expect(new and new[0] > seqs0[-1], f"no sample after the upgrade follows {old_v}'s last ({seqs0[-1]})")
        expect(all(y == x + 1 for x, y in zip(seqs1, seqs1[1:])),
               f"the samples' sequence has a gap or restarts: {[(x, y) for x, y in zip(seqs1, seqs1[1:]) if y != x + 1][:3]}")
        info = b.root("lmc log info")
        events1 = b.root("lmc log export --ring events | tail -n +2").count("\n")
        expect(events1 > events0, f"events ring: {events0} → {events1} records")
        # The DNO: 0.1.0's key location is not read by this release's sshd drop-in (nor was it usable
        # under 0.1.0's, StrictModes); installed as docs/ssh.md says, the key works.
        r = b.ssh("log info", user="lmc-logs", key=key)
        new_dno_home = "accepted" if r.returncode == 0 else "refused"
        b.root(f"echo {shlex.quote('restrict ' + pub)} >> /etc/lmc/dno_authorized_keys")
        r = b.ssh("log export --ring samples", user="lmc-logs", key=key)
        expect(r.returncode == 0 and r.stdout.startswith("seq,"), f"the DNO's key in /etc/lmc/dno_authorized_keys: rc {r.returncode} {r.stderr.strip()[:200]}")
        rows = r.stdout.count("\n") - 1
        expect(rows >= len(seqs1), f"the DNO's export has {rows} rows, fewer than the {len(seqs1)} samples")
        notes.append(f"{old_v} → {new_v} over a running lmc: config, drop-in and key file unchanged; samples seq "
                     f"{seqs0[0]}…{seqs0[-1]} kept, then {new[0]}…{seqs1[-1]} without a gap; events {events0} → {events1}; "
                     f"pid {s0['MainPID']} → {s1['MainPID']}, READY, NORMAL; DNO key in ~lmc-logs/.ssh: {old_v} {old_dno}, "
                     f"{new_v} {new_dno_home}; moved to /etc/lmc/dno_authorized_keys (docs/ssh.md): export {rows} rows")
        return "; ".join(notes)

    def run(self):
        a = self.args
        self.meter = Peer([os.path.join(REPO, "Tests/peers/modbus_peer.py"), "--tcp", "0", "--profile",
                           os.path.join(REPO, "hw/meters/eastron-sdm630.toml"), "--values", json.dumps(LOADED),
                           "--jitter", "1e-4"], os.path.join(self.work, "meter.log"))
        self.charger = Peer([os.path.join(REPO, "Tests/peers/charger_peer.py"), "--profile",
                             os.path.join(REPO, "hw/chargers/alfen-ng9xx.toml"), "--validity", str(VALIDITY_S),
                             "--fallback-a", "6", "--refuse-fc6-on-limit"], os.path.join(self.work, "charger.log"))
        log(f"peers on the host: meter 127.0.0.1:{self.meter.port}, charger 127.0.0.1:{self.charger.port} (guest: 10.0.2.2)")
        self.box = Box(a.arch, a.image, self.work)
        if a.only:
            if a.only == "footprint":
                # Boot, install, and lmc's footprint (check 2's reading) alone: the quick look at its memory.
                # The previous release (a 0.1.x package) is installed as check 6 runs it.
                old = self.deb_version().startswith("0.1.")
                if self.check("boot (TCG, stock Debian 12)", self.boot) and \
                        self.check("1 install .deb, lmc.service READY", self.install_release010 if old else self.install):
                    self.check("2 lmc's footprint", self.footprint)
                return
            expect(a.only == "upgrade" and a.old_deb, "--only upgrade (with --old-deb) is the one check that runs alone")
            self.check("6 upgrade from the previous release", self.upgrade_release)
            return
        if not self.check("boot (TCG, stock Debian 12)", self.boot):
            return
        if not self.check("1 install .deb, lmc.service READY", self.install):
            return
        self.check("3 engineer on the serial console", self.engineer)
        self.check("2 load step reaches the charger", self.load_step)
        self.check("4 DNO ssh forced command", self.dno)
        if not a.old_deb:
            self.check("6 upgrade in place (relabelled package)", self.upgrade)
        self.check("5a kill -9 → restart", self.kill9)
        self.check("5b kill -STOP → charger safe, watchdog restart", self.stop_hang)
        self.check("5c power cut → rings, samples", self.power_cut)
        self.check("5d hardware watchdog resets the box", self.hw_watchdog, skip=a.skip_hw_watchdog)
        if a.old_deb:
            self.check("6 upgrade from the previous release", self.upgrade_release)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="amd64", choices=["amd64", "arm64"])
    ap.add_argument("--deb", required=True)
    ap.add_argument("--image", required=True, help="the directory build-image.sh printed")
    ap.add_argument("--old-deb", default=None,
                    help="the previous release's package (scripts/box/old-release.sh): check 6 upgrades from it on a "
                         "fresh guest; without it, check 6 installs this package relabelled over itself")
    ap.add_argument("--only", default=None, choices=["upgrade", "footprint"],
                    help="upgrade: check 6 (the upgrade from --old-deb, on its own fresh guest) and nothing else; "
                         "footprint: boot, install and lmc's footprint (check 2's reading) alone")
    ap.add_argument("--skip-hw-watchdog", default=None, help="reason to skip the hardware watchdog check")
    args = ap.parse_args()
    t0 = time.monotonic()
    r = Run(args)
    try:
        r.run()
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        r.results.append(("driver", "FAIL", 0.0, f"{type(e).__name__}: {e}"))
    finally:
        kill_children()
        # The logs stay (console.log, the peers'); the guest's disk and the upgrade's staging do not.
        for big in [f for f in os.listdir(r.work) if f.endswith(".qcow2")] + ["upgrade"]:
            path = os.path.join(r.work, big)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else (os.path.exists(path) and os.remove(path))
        for f in os.listdir(r.work):
            if f.endswith(".deb"):
                os.remove(os.path.join(r.work, f))
    total = time.monotonic() - t0
    print()
    print(f"{'check':<48} {'result':<6} {'s':>6}  note")
    for name, status, dt, note in r.results:
        print(f"{name:<48} {status:<6} {dt:6.1f}  {note}")
    print(f"{'total':<48} {'':<6} {total:6.1f}")
    print(f"(console, peers: {r.work})")
    sys.exit(1 if any(s == "FAIL" for _, s, _, _ in r.results) else 0)


if __name__ == "__main__":
    main()
