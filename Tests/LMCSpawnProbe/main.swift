import Foundation
import LMCTestSupport

/// A stand-in for a test process that dies badly (Tests/FieldControllerTests/ChildCleanupTests.swift):
/// it starts one child of every kind the test support can start — a python peer, a socat pty pair, an
/// `lmc demo`, a posix_spawn'ed child, a `run()` still waiting for its command, and a child started
/// from a thread that has already exited — prints "CHILD <pid> <what>" for each and "READY", then on
/// the stdin line "crash" traps (as a failed precondition does), or waits to be SIGKILLed.
var keep: [AnyObject] = []
func say(_ line: String) { print(line); fflush(nil) }
func child(_ pid: Int32, _ what: String) { say("CHILD \(pid) \(what)") }

// From a thread that exits at once: the child must outlive the thread, and die with the process.
final class Box: @unchecked Sendable { var child: ChildProcess? }
let fromThread = Box()
let t = Thread { fromThread.child = try? ChildProcess("/bin/sleep", ["600"]) }
t.start()
while fromThread.child == nil { usleep(1_000) }
while !t.isFinished { usleep(1_000) }
keep.append(fromThread.child!)
child(fromThread.child!.process.processIdentifier, "sleep-from-exited-thread")

let peer = try PyModbusPeer(tcpSpec: #"{"holding": [{"address": 0, "type": "u16", "value": 1}]}"#)
keep.append(peer)
child(peer.child.process.processIdentifier, "python-peer")

let pty = try PtyPair()
keep.append(pty)
child(pty.pid, "socat")

let demo = try ChildProcess(Repo.lmc, ["demo", "--seconds", "600", "--plain", "--plot", "/tmp/lmc-spawn-probe-\(getpid()).svg"],
                            environment: ["LMC_HW_DIR": Repo.root.appendingPathComponent("hw").path])
keep.append(demo)
child(demo.process.processIdentifier, "lmc-demo")

let spawned = try SpawnedChild("/bin/sleep", ["600"])
keep.append(spawned)
child(spawned.pid, "posix-spawned-sleep")

// run() blocks its caller until the command ends: the command's pid is found as our child by its argv.
let marker = "6\(getpid())"
Thread.detachNewThread { _ = try? run("/bin/sleep", [marker], timeout: 3600) }
var runPid: Int32 = 0
while runPid == 0 {
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), let cmd = try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8) else { continue }
        if cmd.hasSuffix("/sleep\0\(marker)\0") || cmd == "sleep\0\(marker)\0" { runPid = pid }
    }
    usleep(10_000)
}
child(runPid, "sleep-under-run")

say("READY")
while let line = readLine() {
    if line == "crash" { precondition(false, "lmc-spawn-probe: crashing on purpose") }
}
// stdin closed: the test is done with us.
