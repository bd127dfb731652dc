#!/usr/bin/env python3
"""Reference register layouts from Python's struct, for lmc's codec tests (one JSON object a line).

Each line: type, word_order, byte_order, scale, value (engineering), raw_bits (hex of the value's
big-endian bytes) and registers (as a device would send them). Independent of lmc's own encoder.
"""
import json
import struct

FORMATS = {"u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "u64": ">Q", "i64": ">q", "f32": ">f", "f64": ">d"}
VALUES = {
    "u16": [0, 1, 230, 0x1234, 65535],
    "i16": [0, -1, -32768, 32767, -2301],
    "u32": [0, 1, 0x12345678, 4294967295, 250000],
    "i32": [0, -1, -123456, 2147483647, -2147483648],
    "u64": [0, 1, 0x0123456789ABCDEF, 2**53, 18446744073709551615],
    "i64": [0, -1, -9223372036854775808, 9223372036854775807, -1234567890123],
    "f32": [0.0, 230.5, -1.5, 3.4028234663852886e38, 1e-38, float("inf"), 49.99],
    "f64": [0.0, 230.5, -1.5, 1.7976931348623157e308, 5e-324, float("-inf"), 0.1],
}
SCALED = [("i32", 0.1, 2301), ("u16", 0.01, 50.0), ("i16", 0.1, -3276.8), ("u32", 0.001, 1234.567)]


def layout(data, word_order, byte_order):
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if byte_order == "little":
        words = [w[::-1] for w in words]
    if word_order == "little":
        words = words[::-1]
    return [int.from_bytes(w, "big") for w in words]


def emit(t, value, raw, scale):
    data = struct.pack(FORMATS[t], raw)
    for wo in ("big", "little"):
        for bo in ("big", "little"):
            v = value
            if t[0] == "f":
                v = struct.unpack(FORMATS[t], data)[0]  # the value the type can hold
            print(json.dumps({
                "type": t, "word_order": wo, "byte_order": bo, "scale": scale,
                # As text: u64 passes 2^53, and float repr() is the shortest exact round trip.
                "value": repr(v),
                "raw_bits": data.hex(), "registers": layout(data, wo, bo),
            }))


for t, values in VALUES.items():
    for v in values:
        emit(t, v, v, 1)
for t, scale, value in SCALED:
    emit(t, value, int(round(value / scale)), scale)
