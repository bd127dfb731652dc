#!/usr/bin/env python3
"""A SCADA / DERMS client for lmc's upstream Modbus server (pymodbus), for the tests.

    upstream_client.py PORT [--source 127.0.0.2] read ADDRESS COUNT
    upstream_client.py PORT [--source …] write ADDRESS V1 V2 …
    upstream_client.py PORT [--source …] write-float ADDRESS VALUE   (float32, high word first)

Prints one JSON line: {"ok": true, "registers": [...]} or {"ok": false, "exception": CODE}.
"""
import argparse
import json
import logging
import struct

from pymodbus.client import ModbusTcpClient

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--source")
ap.add_argument("op")
ap.add_argument("address", type=int)
ap.add_argument("rest", nargs="*")
a = ap.parse_args()
logging.disable(logging.CRITICAL)
c = ModbusTcpClient("127.0.0.1", port=a.port, source_address=(a.source, 0) if a.source else None, retries=0, timeout=2)
assert c.connect(), "cannot connect"
if a.op == "read":
    r = c.read_holding_registers(a.address, count=int(a.rest[0]), device_id=1)
elif a.op == "write":
    r = c.write_registers(a.address, [int(v) for v in a.rest], device_id=1)
elif a.op == "write-float":
    hi, lo = struct.unpack(">HH", struct.pack(">f", float(a.rest[0])))
    r = c.write_registers(a.address, [hi, lo] + [int(v) for v in a.rest[1:]], device_id=1)
else:
    raise SystemExit(f"unknown op {a.op}")
if r.isError():
    print(json.dumps({"ok": False, "exception": getattr(r, "exception_code", None)}))
else:
    print(json.dumps({"ok": True, "registers": list(getattr(r, "registers", []) or [])}))
c.close()
