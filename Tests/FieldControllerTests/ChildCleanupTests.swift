import Foundation
import LMCTestSupport
import Testing

/// Every child a test starts dies with the test process, even when that process crashes: the probe
/// (Tests/LMCSpawnProbe) starts one child of each kind the support can start, then traps or is
/// SIGKILLed, and every child must be gone soon after. (A crash that left `lmc run` and two socats
/// running as orphans is what this is about.)
@Suite struct ChildCleanupTests {
    enum Death: String, CaseIterable { case crash, sigkill }

    /// Whether `pid` is still the process it was: alive, not a zombie, with the same start time.
    static func stillRunning(_ pid: Int32, startTime: String) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return fields[0] != "Z" && fields[19] == startTime
    }
    static func startTime(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return String(stat[stat.index(close, offsetBy: 2)...].split(separator: " ")[19])
    }

    @Test(arguments: Death.allCases)
    func childrenDieWithACrashedTestProcess(death: Death) throws {
        let probePath = (Repo.lmc as NSString).deletingLastPathComponent + "/LMCSpawnProbe"
        try #require(FileManager.default.isExecutableFile(atPath: probePath), "\(probePath) not built (swift build --build-tests)")
        let probe = try ChildProcess(probePath, [], environment: ["LMC_PYTHON": Repo.python])
        defer { probe.terminate() }
        _ = try probe.waitForLine(prefix: "READY", timeout: 60)
        let children: [(pid: Int32, what: String, start: String)] = probe.lines.filter { $0.hasPrefix("CHILD ") }.compactMap { line in
            let p = line.split(separator: " ")
            guard let pid = Int32(p[1]), let start = Self.startTime(pid) else { return nil }
            return (pid, String(p[2]), start)
        }
        #expect(children.map(\.what).sorted() == ["lmc-demo", "posix-spawned-sleep", "python-peer", "sleep-from-exited-thread", "sleep-under-run", "socat"],
                "\(probe.lines) \(probe.stderr)")
        // Alive while their parent lives — including the one whose spawning thread has exited.
        for c in children { #expect(Self.stillRunning(c.pid, startTime: c.start), "\(c.what) died before its parent") }

        switch death {
        case .crash: probe.send("crash")
        case .sigkill: kill(probe.process.processIdentifier, SIGKILL)
        }
        let end = Date().addingTimeInterval(10)
        while probe.process.isRunning && Date() < end { usleep(10_000) }
        #expect(!probe.process.isRunning)
        if death == .crash { #expect(probe.process.terminationReason == .uncaughtSignal, "the probe trapped") }

        // The children go with it (bounded wait: the kernel delivers the signal, init reaps).
        var left = children.filter { Self.stillRunning($0.pid, startTime: $0.start) }
        let deadline = Date().addingTimeInterval(10)
        while !left.isEmpty && Date() < deadline {
            usleep(20_000)
            left = left.filter { Self.stillRunning($0.pid, startTime: $0.start) }
        }
        #expect(left.isEmpty, "outlived their parent: \(left.map { "\($0.what) (\($0.pid))" })")
        for c in left { kill(c.pid, SIGKILL) }   // leave nothing behind even when this fails
    }

    /// What no binding can catch — a daemon that forks away (a tmux server does) — the end of make test
    /// does: scripts/check-leftovers.sh fails the run and kills what is left. Here it must find a
    /// process that escaped this way and kill it (limited by --only-env to this test's own process,
    /// as other tests' children are running meanwhile).
    @Test func theEndOfMakeTestFindsAndKillsWhatEscaped() throws {
        let script = Repo.root.appendingPathComponent("scripts/check-leftovers.sh").path
        let since = try run(script, ["now"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Int(since) != nil, "\(since)")
        let token = "LMC_LEFTOVER_SELFTEST=\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let marker = "7\(getpid())"
        // (runDetached: Foundation's Process would wait for the escaped sleep, which holds its exit watch.)
        let started = try runDetached("/bin/sh", ["-c", "\(token) setsid sleep \(marker) &"])
        #expect(started == 0)
        let check = try run(script, ["since", since, "--only-env", token])
        #expect(check.status == 1, "\(check.out)\(check.err)")
        #expect(check.err.contains("(sleep): sleep \(marker)") && check.err.contains("it runs in \(Repo.root.path)"), "\(check.err)")
        #expect(check.err.contains("FAIL: 1 process(es) started by the tests outlived them (killed now)"))
        let again = try run(script, ["since", since, "--only-env", token])
        #expect(again.status == 0 && again.out.contains("nothing the tests started is still running"), "killed: \(again.err)")
    }
}
