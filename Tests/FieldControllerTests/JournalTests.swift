import Foundation
import LMCTestSupport
import Testing

/// Under systemd, every line `lmc run` writes to stderr carries its level (sd-daemon prefixes), so
/// `journalctl -p warning` finds trips and fail-safe; on a terminal the lines stay plain.
@Suite(.serialized) struct JournalPriorities {
    func waitFor(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if (try? condition()) == true { return }
            usleep(50_000)
        }
        Issue.record("not within \(seconds) s: \(what)")
    }

    @Test func eventsCarryTheirLevelInTheJournal() throws {
        let journal = "/tmp/lmc-journal-\(getpid()).log"
        unlink(journal)
        defer { unlink(journal) }
        // While this file exists the simulated breaker's aux contact does not move (a stuck mechanism).
        let stuck = "/tmp/lmc-journal-stuck-\(getpid())"
        defer { unlink(stuck) }
        let d = try Daemon(tag: "j", extra: "\n[site.breaker]\nchip = \"gpiochip0\"\ntrip_line = 3\nclose_line = 4\naux_line = 5\naux_active_low = true\npulse_ms = 50\n",
                           environment: ["LMC_GPIO_SIMULATOR": "gpiochip0:8:stuck=\(stuck)"], journal: journal)
        func lines() -> [String] { ((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        try waitFor(25, "charger at 362 A") { try d.applied() == 362 }
        // Blind: fail-safe (warning); seeing again: back to NORMAL (notice).
        d.meter.send("silence on")
        try waitFor(5, "FAILSAFE") { lines().contains { $0.contains("→ FAILSAFE") } }
        d.meter.send("silence off")
        try waitFor(10, "NORMAL again") { lines().contains { $0.contains("FAILSAFE → ") } }
        // A test trip with the contact stuck: TRIP_FAILED (err); freed, the breaker opens (err).
        FileManager.default.createFile(atPath: stuck, contents: nil)
        let r = try run(Repo.lmc, ["test", "trip", "--site", "hub", "--yes", "--socket", d.socket])
        #expect(r.status == 0, "\(r.err)")
        try waitFor(5, "TRIP_FAILED") { lines().contains { $0.contains("alarm_raised: TRIP_FAILED") } }
        unlink(stuck)
        try waitFor(5, "TRIPPED") { lines().contains { $0.contains("→ TRIPPED") } }
        kill(d.lmc.process.processIdentifier, SIGTERM)
        try waitFor(5, "lmc stopped") { !d.lmc.process.isRunning }

        let all = lines()
        #expect(!all.isEmpty)
        // Every line has a level and no "lmc: " (the journal names the unit).
        for l in all {
            #expect(l.range(of: #"^<[3-6]>"#, options: .regularExpression) != nil, "no level: \(l)")
            #expect(!l.dropFirst(3).hasPrefix("lmc: "), "\(l)")
        }
        func level(of needle: String) -> String? { all.first { $0.contains(needle) }.map { String($0.prefix(3)) } }
        #expect(level(of: "event start: lmc") == "<5>", "\(all)")
        #expect(level(of: "event mode: STARTUP → NORMAL") == "<5>", "a mode change is a notice: \(all)")
        #expect(level(of: "event mode: NORMAL → FAILSAFE") == "<4>", "\(all)")
        #expect(level(of: "event mode: FAILSAFE → ") == "<5>", "\(all)")
        #expect(level(of: "event breaker: hub: trip") == "<3>", "\(all)")
        #expect(level(of: "→ TRIPPED") == "<3>", "\(all)")
        #expect(level(of: "event alarm_raised: TRIP_FAILED hub") == "<3>", "\(all)")
        if all.contains(where: { $0.contains("alarm_cleared: TRIP_FAILED") }) {
            #expect(level(of: "event alarm_cleared: TRIP_FAILED hub") == "<5>", "\(all)")
        }
        #expect(level(of: "event command: ") == "<5>", "\(all)")
        #expect(level(of: "control: 'test-trip hub' by user") == "<6>", "routine: \(all)")
        #expect(level(of: "event stop: ") == "<5>", "\(all)")
    }

    /// printError: at err under the journal, plain "lmc: " on a terminal or when stderr is not the
    /// stream JOURNAL_STREAM names (a child of the service whose stderr was redirected).
    @Test func errorsAreErrUnderTheJournalAndPlainElsewhere() throws {
        let bad = "/tmp/lmc-journal-bad-\(getpid()).toml"
        let out = "/tmp/lmc-journal-err-\(getpid()).log"
        defer { unlink(bad); unlink(out) }
        try "[box]\nid = 1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let plain = try run(Repo.lmc, ["run", "--config", bad], environment: ["JOURNAL_STREAM": "1:1"])
        #expect(plain.status == 2)
        #expect(plain.err.hasPrefix("lmc: "), "\(plain.err)")
        #expect(plain.err.contains("refusing to start"))
        let journal = try run("/bin/sh", ["-c", "exec 2>\"$0\"; JOURNAL_STREAM=$(stat -c %d:%i \"$0\") exec \"$1\" run --config \"$2\"", out, Repo.lmc, bad])
        #expect(journal.status == 2)
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("<3>") }, "\(text)")
        #expect(text.contains("<3>\(bad): refusing to start"), "\(text)")
    }
}
