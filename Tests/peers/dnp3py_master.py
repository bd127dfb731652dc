#!/usr/bin/env python3
"""A second, independent DNP3 master: PyPI dnp3py (pure Python), one exchange per run.

    dnp3py_master.py --port P [--outstation 1024] [--master 1] integrity
    dnp3py_master.py --port P direct INDEX VALUE
    dnp3py_master.py --port P heartbeat INDEX PERIOD_S [SITE VALUE]
    dnp3py_master.py --port P crob-heartbeat INDEX PERIOD_S [SITE VALUE]   (a CROB PULSE_ON each time)
        an optional DIRECT OPERATE of VALUE on SITE first, then a DIRECT OPERATE on INDEX (the
        heartbeat output) every PERIOD_S seconds with a count as its value, until killed; one
        {"kind":"heartbeat","n":N,"iin":I} line per operate answered

Prints one JSON line per value received ({"kind":"value","type":"analog_input","index":0,
"value":12345.5,"quality":1,"event":false}) and, per response, {"kind":"response","iin":N,
"function":"..."}; then {"kind":"done"}. dnp3py sends analog outputs as g41v1 (32-bit) with
qualifier 0x17, where opendnp3 sends g41v3 with 0x28.
"""
import argparse
import asyncio
import json
import sys

from dnp3.core.enums import ControlCode
from dnp3.master.config import MasterConfig
from dnp3.master.master import Master
from dnp3.master.tcp_runner import MasterTcpRunner


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Handler:
    def _values(self, kind, values, info):
        for v in values:
            value = v.value
            if isinstance(value, bool):
                value = 1 if value else 0
            emit({"kind": "value", "type": kind, "index": v.index, "value": value, "quality": int(v.quality),
                  "event": v.timestamp is not None})

    def on_binary_input(self, values, info): self._values("binary_input", values, info)
    def on_binary_output(self, values, info): self._values("binary_output", values, info)
    def on_analog_input(self, values, info): self._values("analog_input", values, info)
    def on_analog_output(self, values, info): self._values("analog_output", values, info)
    def on_counter(self, values, info): self._values("counter", values, info)
    def on_frozen_counter(self, values, info): self._values("frozen_counter", values, info)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outstation", type=int, default=1024)
    ap.add_argument("--master", type=int, default=1)
    ap.add_argument("action", nargs="+")
    a = ap.parse_args()
    master = Master(config=MasterConfig(address=a.master, outstation_address=a.outstation), handler=Handler())
    runner = MasterTcpRunner(master=master, host=a.host, port=a.port, response_timeout=5.0)
    await runner.open()
    try:
        if a.action[0] == "integrity":
            infos = await runner.integrity_poll()
        elif a.action[0] == "direct":
            task = master.command_builder().add_analog(int(a.action[1]), float(a.action[2])).build_direct_operate()
            infos = await runner.request(master.build_direct_operate(task))
        elif a.action[0] in ("heartbeat", "crob-heartbeat"):
            index, period = int(a.action[1]), float(a.action[2])
            infos = []
            if len(a.action) >= 5:
                task = master.command_builder().add_analog(int(a.action[3]), float(a.action[4])).build_direct_operate()
                for info in await runner.request(master.build_direct_operate(task)):
                    emit({"kind": "response", "iin": int(info.iin), "function": str(info.function), "sequence": info.sequence})
            n = 0
            while True:
                n += 1
                if a.action[0] == "crob-heartbeat":
                    task = master.command_builder().add_crob(index, ControlCode.PULSE_ON, on_time=100).build_direct_operate()
                else:
                    task = master.command_builder().add_analog(index, float(n)).build_direct_operate()
                for info in await runner.request(master.build_direct_operate(task)):
                    emit({"kind": "heartbeat", "n": n, "iin": int(info.iin)})
                await asyncio.sleep(period)
        else:
            raise SystemExit(f"unknown action {a.action[0]}")
        for info in infos:
            emit({"kind": "response", "iin": int(info.iin), "function": str(info.function), "sequence": info.sequence})
    finally:
        await runner.close()
    emit({"kind": "done"})


if __name__ == "__main__":
    asyncio.run(main())
