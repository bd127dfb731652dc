#!/usr/bin/env python3
"""A tap in an RS-485 line for lmc's soak: forwards bytes between two serial devices (two socat pty
pairs: lmc on one side, the meter on the other) and, on "garbage on" (stdin), corrupts every byte the
meter sends — noise on the line, a bad termination, a second master. Prints READY, then OK per command.
"""
import argparse, os, random, select, sys, termios, threading, tty

ap = argparse.ArgumentParser()
ap.add_argument("--lmc-side", required=True)
ap.add_argument("--meter-side", required=True)
args = ap.parse_args()

def open_raw(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd

a = open_raw(args.lmc_side)
b = open_raw(args.meter_side)
state = {"garbage": False}

def control():
    for line in sys.stdin:
        line = line.strip()
        if line in ("garbage on", "garbage off"):
            state["garbage"] = line == "garbage on"
        print("OK " + line, flush=True)
    os._exit(0)

threading.Thread(target=control, daemon=True).start()
print("READY", flush=True)
while True:
    r, _, _ = select.select([a, b], [], [])
    if a in r:
        os.write(b, os.read(a, 4096))
    if b in r:
        data = os.read(b, 4096)
        if state["garbage"]:
            data = bytes(x ^ random.randint(1, 255) for x in data)
        os.write(a, data)
