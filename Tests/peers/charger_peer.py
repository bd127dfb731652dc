#!/usr/bin/env python3
"""A hub charger that behaves like the real ones, for lmc's relay tests (pymodbus).

    charger_peer.py --profile hw/chargers/alfen-ng9xx.toml --validity 3 --fallback-a 10 [--refuse-fc6-on-limit]

Reads its register addresses and encodings from an lmc charger profile, encodes with struct, and:
- applies the last limit written while it is fresh; once no limit (or life bit) has been written for
  the timeout/validity, applies its fallback: the safe current programmed over Modbus, else the
  factory fallback (--fallback-a) — as the Alfen validity timer and ABB's communication timeout do;
- reports what it applies in the readback register;
- with --refuse-fc6-on-limit, answers function 6 on the limit register with "illegal function"
  (Alfen: float32 registers take function 16 only);
- prints every write as "WRITE <seconds> fc=<n> addr=<a> values=<list>" so a test sees their order;
- on a stdin line "forget", forgets what was programmed but keeps its connections (an RTU charger's
  reboot, which no connection loss reveals);
- on a stdin line "reboot", drops its connections, forgets what was programmed and serves again on the
  same port; "state" prints "STATE <json>"; "refuse on|off" makes it refuse every write with an
  exception (busy); end of stdin stops it.
"""
import argparse
import asyncio
import json
import logging
import socket
import struct
import sys
import threading
import time
import tomllib

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FORMATS = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f", "f64": ">d"}
SIZE = 0x4200


def words(reg, amps):
    raw = amps * 1000 if reg.get("milliamps") else amps
    t = reg.get("type", "u16")
    if t[0] in "ui":
        raw = int(round(raw))
    data = struct.pack(FORMATS[t], raw)
    w = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
    return w[::-1] if reg.get("word_order") == "little" else w


def amps_of(reg, regs):
    if reg.get("word_order") == "little":
        regs = regs[::-1]
    data = b"".join(r.to_bytes(2, "big") for r in regs)
    v = struct.unpack(FORMATS[reg.get("type", "u16")], data)[0]
    return v / 1000 if reg.get("milliamps") else v


def nregs(reg):
    return struct.calcsize(FORMATS[reg.get("type", "u16")]) // 2


class Charger:
    def __init__(self, prof, args):
        self.prof, self.args = prof, args
        self.refusing = False
        self.reset()

    def reset(self):
        self.limit_a = None
        self.written_at = None
        self.safe_a = None
        self.timeout_s = None

    def applied(self):
        timeout = self.timeout_s or self.args.validity
        fresh = self.written_at is not None and time.monotonic() - self.written_at <= timeout
        if fresh and self.limit_a is not None:
            return min(self.limit_a, self.args.clamp_a) if self.args.clamp_a else self.limit_a
        return self.safe_a if self.safe_a is not None else self.args.fallback_a

    async def action(self, function_code, start_address, address, count, current_registers, set_values):
        p = self.prof
        limit = p["limit"]
        if set_values is not None:
            print(f"WRITE {time.monotonic():.3f} fc={function_code} addr={address} values={list(set_values)}", flush=True)
            if self.refusing:
                return ExcCodes.SLAVE_DEVICE_BUSY if hasattr(ExcCodes, "SLAVE_DEVICE_BUSY") else ExcCodes.DEVICE_BUSY
            if address == limit["address"]:
                if function_code == 6 and self.args.refuse_fc6_on_limit:
                    return ExcCodes.ILLEGAL_FUNCTION
                self.limit_a = amps_of(limit, list(set_values)[:nregs(limit)])
                self.written_at = time.monotonic()
            elif "safe_current" in p and address == p["safe_current"]["address"]:
                self.safe_a = amps_of(p["safe_current"], list(set_values)[:nregs(p["safe_current"])])
            elif "timeout" in p and address == p["timeout"]["address"]:
                self.timeout_s = list(set_values)[0]
            elif "life_bit" in p and address == p["life_bit"]["address"]:
                self.written_at = time.monotonic()
            return None
        if "readback" in p:
            rb = p["readback"]
            w = words(rb, self.applied())
            for i, v in enumerate(w):
                idx = rb["address"] + i - start_address
                if 0 <= idx < len(current_registers):
                    current_registers[idx] = v
        if "safe_current" in p:
            # What the charger holds as its fallback: what was programmed, else its own default.
            sc = p["safe_current"]
            w = words(sc, self.safe_a if self.safe_a is not None else self.args.fallback_a)
            for i, v in enumerate(w):
                idx = sc["address"] + i - start_address
                if 0 <= idx < len(current_registers):
                    current_registers[idx] = v
        return None

    def device(self):
        return SimDevice(id=0, simdata=[SimData(0, values=[0] * SIZE, datatype=DataType.REGISTERS)], action=self.action)

    def state(self):
        return {"limit_a": self.limit_a, "safe_a": self.safe_a, "timeout_s": self.timeout_s, "applied_a": self.applied()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--validity", type=float, default=60)
    ap.add_argument("--fallback-a", type=float, default=6)
    ap.add_argument("--refuse-fc6-on-limit", action="store_true")
    ap.add_argument("--clamp-a", type=float, help="apply at most this current whatever is written (a charger with a lower hardware limit)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    with open(args.profile, "rb") as f:
        prof = tomllib.load(f)
    charger = Charger(prof, args)
    port = free_port()

    async def serve():
        server = ModbusTcpServer(charger.device(), address=("127.0.0.1", port))
        task = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0.3)
        return server, task

    server, task = await serve()
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    lines = asyncio.Queue()

    def read_stdin():
        for l in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, l.strip())
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    while True:
        line = await lines.get()
        if line is None:
            break
        if line == "reboot":
            await server.shutdown()
            task.cancel()
            charger.reset()
            server, task = await serve()
            print("REBOOTED", flush=True)
        elif line == "forget":
            # An RTU charger's reboot: it forgets what was programmed, but the serial line (here the
            # TCP connection) stays — nothing tells the master it rebooted.
            charger.reset()
            print("FORGOTTEN", flush=True)
        elif line == "state":
            print("STATE " + json.dumps(charger.state()), flush=True)
        elif line in ("refuse on", "refuse off"):
            # A charger that answers but refuses every write (busy): the relay must call itself failing.
            charger.refusing = line == "refuse on"
            print("REFUSING " + str(charger.refusing), flush=True)
    await server.shutdown()
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
