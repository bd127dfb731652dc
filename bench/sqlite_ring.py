#!/usr/bin/env python3
"""The ring log's job done by SQLite, for docs/PERFORMANCE.md: the same 17-byte samples as rows.

WAL mode, synchronous=FULL (a commit is durable, like the ring's fdatasync), one row per sample,
one transaction per second of samples. Prints Markdown rows like lmc-bench ring.
"""
import os, sqlite3, subprocess, sys, time

def write_bytes():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0

def open_db(path):
    for suffix in ("", "-wal", "-shm"):
        try: os.unlink(path + suffix)
        except FileNotFoundError: pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE samples (seq INTEGER PRIMARY KEY, wall_ns INTEGER, mono_ns INTEGER, mode INTEGER,"
               " mp0_value REAL, mp0_quality INTEGER, site0_sp REAL, site0_bound INTEGER, site0_import REAL)")
    return db

def row(name, ours, against, ratio, method):
    print(f"| {name} | {ours} | {against} | {ratio} | {method} |", flush=True)

def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/lmc-bench"
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 120
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "samples.sqlite")
    payload = 17
    ins = "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)"

    # Throughput: commit once a second of real time.
    db = open_db(path)
    t0 = time.monotonic(); last = t0
    db.execute("BEGIN")
    for i in range(records):
        now = time.monotonic_ns()
        db.execute(ins, (i + 1, now, now, 0, 400000.0 + i % 1000, 0, 250000.0, 1, 240000.0 + i % 100))
        if time.monotonic() - last >= 1:
            db.execute("COMMIT"); db.execute("BEGIN"); last = time.monotonic()
    db.execute("COMMIT")
    dt = time.monotonic() - t0
    row("SQLite append, full speed (1 s commits)", f"{int(records / dt)} rows/s", "", "",
        f"Python sqlite3 {sqlite3.sqlite_version}, WAL, synchronous=FULL, one row per sample (Python's per-row cost included)")

    # Export with the sqlite3 command-line shell (C speed).
    out = os.path.join(directory, "export-sqlite.csv")
    t1 = time.monotonic()
    with open(out, "w") as f:
        rc = subprocess.run(["sqlite3", "-csv", "-header", path, "SELECT * FROM samples ORDER BY seq"], stdout=f).returncode
    dt1 = time.monotonic() - t1
    if rc == 0:
        size = os.path.getsize(out)
        row("SQLite export to CSV", f"{int(records / dt1)} rows/s, {size / dt1 / 1048576:.1f} MB/s", "", "",
            "sqlite3 -csv SELECT * ORDER BY seq, output to a file")
    os.unlink(out)
    db.close()

    # Write amplification at 10 Hz with a commit each second; the WAL checkpointed at the end so every
    # byte that must reach the database file is counted.
    db = open_db(path)
    os.sync()
    before = write_bytes()
    n = seconds * 10
    for s in range(seconds):
        db.execute("BEGIN")
        for k in range(10):
            i = s * 10 + k
            db.execute(ins, (i + 1, i * 100_000_000, i * 100_000_000, 0, 400000.0 + i % 1000, 0, 250000.0, 1, 240000.0 + i % 100))
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    written = write_bytes() - before
    row("SQLite write amplification at 10 Hz", f"{written / (n * payload):.1f} B written per payload B ({written / seconds / 1024:.1f} KiB/s)", "", "",
        f"/proc/self/io write_bytes over {seconds} s of 10-row transactions, WAL checkpointed at the end")
    db.close()
    for suffix in ("", "-wal", "-shm"):
        try: os.unlink(path + suffix)
        except FileNotFoundError: pass

main()
