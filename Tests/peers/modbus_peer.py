#!/usr/bin/env python3
"""An independent Modbus device for lmc's tests: pymodbus serving values encoded with Python's struct.

    modbus_peer.py --tcp 0 --spec '{"input": [{"address": 0, "type": "f32", "value": 230.5}]}'
    modbus_peer.py --rtu /dev/pts/5 --baud 9600 --parity N --unit 1 --spec '...'

Prints "READY <port>" (TCP) or "READY 0" (RTU) on stdout once serving, then serves until stdin closes
or it is killed. The spec lists values per table ("holding", "input", "coils", "discrete"), each with
address, type (u16 i16 u32 i32 u64 i64 f32 f64), word_order and byte_order ("big"/"little") and scale.
Encoding uses struct only, never lmc's codec, so a test compares two independent implementations.

Profile mode (--profile, once, or once per --unit) serves live meters: stdin commands "set {json}",
"silence on|off", "freeze on|off", "flaky N|off" apply to every unit, or to one with " @UNIT" at the end
("silence on @1"). --log-requests prints "READ <seconds> unit=U fc=F addr=A count=N" for every request
(a test counts the requests a poll makes).
"""
import argparse
import asyncio
import json
import logging
import socket
import struct
import sys
import threading
import os
import random

from pymodbus.server import ModbusTcpServer, ModbusSerialServer
from pymodbus.simulator import SimData, SimDevice, DataType

FORMATS = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "u64": ">Q", "i64": ">q", "f32": ">f", "f64": ">d"}
TABLE_SIZE = 4096


def encode(entry):
    """Registers for one value, in the device's word and byte order."""
    t = entry["type"]
    raw = entry["value"] / entry.get("scale", 1)
    if t[0] in "ui":
        raw = int(round(raw))
    data = struct.pack(FORMATS[t], raw)  # big-endian bytes, most significant first
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if entry.get("byte_order", "big") == "little":
        words = [w[::-1] for w in words]
    if entry.get("word_order", "big") == "little":
        words = words[::-1]
    return [int.from_bytes(w, "big") for w in words]


def build_tables(spec):
    tables = {}
    for name in ("holding", "input"):
        regs = [0] * TABLE_SIZE
        for entry in spec.get(name, []):
            if "registers" in entry:
                words = entry["registers"]
            else:
                words = encode(entry)
            regs[entry["address"]:entry["address"] + len(words)] = words
        tables[name] = regs
    for name in ("coils", "discrete"):
        bits = [False] * TABLE_SIZE
        for entry in spec.get(name, []):
            for i, v in enumerate(entry["values"]):
                bits[entry["address"] + i] = bool(v)
        tables[name] = bits
    return tables


def device(unit, spec):
    t = build_tables(spec)
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, values=t["coils"], datatype=DataType.BITS)],
            [SimData(0, values=t["discrete"], datatype=DataType.BITS)],
            [SimData(0, values=t["holding"], datatype=DataType.REGISTERS)],
            [SimData(0, values=t["input"], datatype=DataType.REGISTERS)],
        ),
    )


def spec_from_profile(path, values):
    """Registers for a meter profile, encoded here with struct: the profile says where and how, Python
    does the encoding, so the test compares two independent implementations."""
    import tomllib
    with open(path, "rb") as f:
        prof = tomllib.load(f)
    table = prof.get("function", "input")
    entries = []
    for reg in prof["register"]:
        q = reg["quantity"]
        if q not in values:
            continue
        entries.append({
            "address": reg["address"],
            "type": reg.get("type", prof.get("type", "f32")),
            "word_order": reg.get("word_order", prof.get("word_order", "big")),
            "byte_order": reg.get("byte_order", prof.get("byte_order", "big")),
            "scale": reg.get("scale", 1),
            "value": values[q],
        })
    return {table: entries}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", type=int)
    ap.add_argument("--rtu")
    ap.add_argument("--baud", type=int, default=9600)
    ap.add_argument("--parity", default="N")
    ap.add_argument("--unit", type=int, action="append")
    ap.add_argument("--spec", default="{}", help="JSON, or a list of specs (one per --unit)")
    ap.add_argument("--profile", action="append", help="an lmc meter profile (hw/meters/*.toml) to lay --values out by; once, or once per --unit")
    ap.add_argument("--values", default="{}", help="JSON: quantity -> value in SI units (with --profile); a list: one per --unit")
    ap.add_argument("--log-requests", action="store_true", help="print every request (profile mode)")
    ap.add_argument("--jitter", type=float, default=0, help="relative noise on every read (with --profile), e.g. 1e-4")
    args = ap.parse_args()
    units = args.unit or [1]
    values = json.loads(args.values)
    if args.profile:
        profiles = args.profile if len(args.profile) == len(units) else [args.profile[0]] * len(units)
        values = values if isinstance(values, list) else [values] * len(units)
        args.spec = json.dumps([spec_from_profile(p, v) for p, v in zip(profiles, values)])
    logging.disable(logging.WARNING)

    spec = json.loads(args.spec)
    specs = spec if isinstance(spec, list) else [spec] * len(units)
    devices = [device(u, s) for u, s in zip(units, specs)]
    lives = {u: {"values": dict(v), "silent": False} for u, v in zip(units, values if isinstance(values, list) else [values] * len(units))}
    if args.profile:
        # A live meter: every read re-encodes the current values (changed with "set {json}" on stdin),
        # "silence on" makes it stop answering (the request times out at the client), "freeze on" makes it
        # repeat its last reply bit for bit.
        import tomllib, time

        def make_action(unit, profile_path):
          with open(profile_path, "rb") as f:
            prof = tomllib.load(f)
          live = lives[unit]

          async def action(function_code, start_address, address, count, current_registers, set_values):
            if args.log_requests:
                print(f"READ {time.monotonic():.4f} unit={unit} fc={function_code} addr={address} count={count}", flush=True)
            if live["silent"]:
                await asyncio.sleep(30)
            # "flaky N": every Nth request goes unanswered for a second (the client times out): one bad
            # poll in N, the rest good — a busy or noisy meter.
            if live.get("flaky"):
                live["requests"] = live.get("requests", 0) + 1
                if live["requests"] % live["flaky"] == 0:
                    await asyncio.sleep(1)
            # Real meters never repeat bit-identical readings under load: --jitter adds a little noise so
            # that lmc's frozen-value rule does not (rightly) call a constant reading frozen.
            # "freeze on": the meter repeats the last registers it sent, bit for bit (a stuck meter).
            if live.get("frozen") and live.get("last") is not None:
                jittered = live["last"]
            else:
                jittered = {q: v * (1 + random.uniform(-args.jitter, args.jitter)) for q, v in live["values"].items()}
                live["last"] = jittered
            table = spec_from_profile(profile_path, jittered)
            for entry in table.get(prof.get("function", "input"), []):
                for i, w in enumerate(encode(entry)):
                    idx = entry["address"] + i - start_address
                    if 0 <= idx < len(current_registers):
                        current_registers[idx] = w
            return None
          return action

        devices = [SimDevice(id=u, simdata=[SimData(0, values=[0] * TABLE_SIZE, datatype=DataType.REGISTERS)], action=make_action(u, p))
                   for u, p in zip(units, profiles)]

    if args.tcp is not None:
        port = args.tcp or free_port()
        server = ModbusTcpServer(devices, address=("127.0.0.1", port))
    else:
        port = 0
        server = ModbusSerialServer(devices, port=args.rtu, baudrate=args.baud, parity=args.parity,
                                    bytesize=8, stopbits=1)
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.3)
    print(f"READY {port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def read_stdin():
        for line in sys.stdin:
            line = line.strip()
            targets = list(lives.values())
            if " @" in line:
                line, _, u = line.rpartition(" @")
                targets = [lives[int(u)]]
            for live in targets:
                apply(live, line)
            print(f"OK {line}", flush=True)
        loop.call_soon_threadsafe(stop.set)

    def apply(live, line):
            if line.startswith("set "):
                live["values"].update(json.loads(line[4:]))
            elif line == "silence on":
                live["silent"] = True
            elif line == "silence off":
                live["silent"] = False
            elif line == "freeze on":
                live["frozen"] = True
            elif line == "freeze off":
                live["frozen"] = False
            elif line.startswith("flaky "):
                live["flaky"] = 0 if line == "flaky off" else int(line[6:])

    threading.Thread(target=read_stdin, daemon=True).start()
    await stop.wait()
    await server.shutdown()
    task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
