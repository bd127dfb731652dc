import Foundation
import LMCTestSupport
import Testing

/// `lmc doctor` against pymodbus peers: with lmc stopped it asks each device itself; with lmc running
/// it judges them by what the daemon sees. The system checks run on whatever machine runs the tests,
/// so they are only held to their form (a status, and a fix whenever not ok).
@Suite(.serialized) struct DoctorTests {
    static let systemChecks = "clock,service,watchdog,ssh,sysrq,disk"

    func doctor(_ args: [String], environment: [String: String] = [:]) throws -> (status: Int32, checks: [String: [String: Any]], out: String) {
        var env = ["PATH": "/usr/bin:/bin", "LMC_HW_DIR": Repo.root.appendingPathComponent("hw").path]
        env.merge(environment) { $1 }
        let r = try run(Repo.lmc, ["doctor", "--json", "--timeout-ms", "300"] + args, environment: env)
        let o = try #require(try? jsonObject(r.out), "doctor printed no JSON (exit \(r.status)): \(r.out)\(r.err)")
        let list = try #require(o["checks"] as? [[String: Any]], "\(r.out)\(r.err)")
        #expect((o["ok"] as? Bool) == (r.status == 0), "ok matches the exit status")
        var byName: [String: [String: Any]] = [:]
        for c in list {
            let name = try #require(c["name"] as? String)
            let status = try #require(c["status"] as? String)
            #expect(["ok", "warn", "fail"].contains(status))
            if status != "ok" { #expect((c["fix"] as? String)?.isEmpty == false, "\(name) says what to do: \(c)") }
            byName[name] = c
        }
        return (r.status, byName, r.out)
    }

    @Test func withLmcStoppedItAsksEachDevice() throws {
        let meter = try PyModbusPeer(profile: Repo.root.appendingPathComponent("hw/meters/eastron-sdm630.toml").path, values: RunEndToEnd.loaded, jitter: 1e-4)
        defer { meter.stop() }
        let charger = try ChargerPeer(profile: Repo.root.appendingPathComponent("hw/chargers/alfen-ng9xx.toml").path, validity: 60, fallbackA: 6)
        defer { charger.stop() }
        let dir = "/tmp/lmc-doctor-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = "\(dir)/lmc.toml"
        try RunEndToEnd.config(meterPort: meter.port, chargerPort: charger.port, socket: "\(dir)/control.sock").write(toFile: config, atomically: true, encoding: .utf8)
        // Rings as the daemon writes them, so the log check has something to reach back into.
        let sim = try run(Repo.lmc, ["simulate", "--scenario", Repo.root.appendingPathComponent("scenarios/seed-example-day.csv").path,
                                     "--log-dir", dir, "--start", "2026-11-20", "--period-s", "10"])
        #expect(sim.status == 0, "\(sim.err)")

        let good = try doctor(["--config", config, "--skip", Self.systemChecks])
        #expect(good.status == 0, "\(good.out)")
        #expect(good.checks["config"]?["status"] as? String == "ok")
        let m = try #require(good.checks["meter trafo_ct"])
        #expect(m["status"] as? String == "ok" && (m["detail"] as? String)?.contains("tcp 127.0.0.1:\(meter.port) unit 1: good, 400.0 kVA") == true, "\(m)")
        #expect(good.checks["charger hub"]?["status"] as? String == "ok", "\(good.checks["charger hub"] ?? [:])")
        #expect(good.checks["gpio"]?["status"] as? String == "ok")
        let log = try #require(good.checks["log"])
        #expect(log["status"] as? String == "ok" && (log["detail"] as? String)?.contains("halfhours back to 2026-11-20T00:30Z") == true, "\(log)")
        #expect(good.checks["clock"] == nil, "skipped")

        // The meter goes silent: its check fails, says what to try, and doctor exits 1.
        meter.send("silence on")
        let silent = try doctor(["--config", config, "--skip", Self.systemChecks])
        #expect(silent.status == 1)
        let sm = try #require(silent.checks["meter trafo_ct"])
        #expect(sm["status"] as? String == "fail", "\(sm)")
        #expect((sm["fix"] as? String)?.contains("lmc meter probe --profile eastron-sdm630 --tcp 127.0.0.1:\(meter.port) --unit 1") == true, "\(sm)")
        meter.send("silence off")

        // The charger gone: its check fails.
        charger.stop()
        let gone = try doctor(["--config", config, "--skip", Self.systemChecks + ",meters"])
        #expect(gone.status == 1 && gone.checks["charger hub"]?["status"] as? String == "fail", "\(gone.out)")

        // The text form: fits 80 columns, a summary, an arrow under each failure.
        let text = try run(Repo.lmc, ["doctor", "--config", config, "--skip", Self.systemChecks, "--timeout-ms", "300"],
                           environment: ["PATH": "/usr/bin:/bin", "LMC_HW_DIR": Repo.root.appendingPathComponent("hw").path])
        #expect(text.status == 1)
        let lines = text.out.split(separator: "\n")
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(text.out)")
        #expect(lines.contains { $0.hasPrefix("FAIL  charger hub") } && lines.contains { $0.hasPrefix("      → ") }, "\(text.out)")
        #expect(lines.last == "doctor: 1 of 5 checks failed", "\(text.out)")
    }

    @Test func withLmcRunningItAsksTheDaemon() throws {
        let d = try Daemon(tag: "doc")
        try RunEndToEnd().waitFor(25, "charger at 362 A") { try d.applied() == 362 }
        let r = try doctor(["--config", d.path, "--skip", Self.systemChecks])
        #expect(r.status == 0, "\(r.out)")
        let m = try #require(r.checks["meter trafo_ct"])
        #expect((m["detail"] as? String)?.contains("read by the running lmc: good") == true, "\(m)")
        let c = try #require(r.checks["charger hub"])
        #expect((c["detail"] as? String)?.contains("the running lmc relays to it; ") == true && c["status"] as? String == "ok", "\(c)")
        #expect(r.checks["log"]?["status"] as? String == "ok", "\(r.checks["log"] ?? [:])")

        d.meter.send("silence on")
        var failed = false
        let end = Date().addingTimeInterval(5)
        while !failed && Date() < end {
            failed = (try? doctor(["--config", d.path, "--skip", Self.systemChecks]))?.checks["meter trafo_ct"]?["status"] as? String == "fail"
            usleep(100_000)
        }
        #expect(failed, "a silent meter fails the check through the daemon too")
    }

    @Test func breakerLinesAndAuxContact() throws {
        let dir = "/tmp/lmc-doctor-gpio-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = "\(dir)/lmc.toml"
        try (RunEndToEnd.config(meterPort: 1, chargerPort: 1, socket: "\(dir)/control.sock")
             + "\n[site.breaker]\nchip = \"gpiochip0\"\ntrip_line = 3\nclose_line = 4\naux_line = 5\naux_active_low = true\npulse_ms = 50\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let sim = try doctor(["--config", config, "--skip", Self.systemChecks + ",meters,chargers,log"], environment: ["LMC_GPIO_SIMULATOR": "gpiochip0:8"])
        let b = try #require(sim.checks["breaker hub"])
        #expect(b["status"] as? String == "ok", "\(b)")
        #expect((b["detail"] as? String) == "trip gpiochip0:3 free; close gpiochip0:4 free; aux gpiochip0:5 reads closed", "\(b)")
        #expect(sim.checks["gpio"]?["status"] as? String == "warn", "simulated lines are said to be simulated")
        // A line past the chip's end.
        try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "trip_line = 3", with: "trip_line = 9")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let short = try doctor(["--config", config, "--skip", Self.systemChecks + ",meters,chargers,log"], environment: ["LMC_GPIO_SIMULATOR": "gpiochip0:8"])
        #expect(short.status == 1)
        #expect((short.checks["breaker hub"]?["detail"] as? String)?.contains("trip line 9: gpiochip0 has only 8 lines") == true, "\(short.checks)")
    }

    @Test func aBadConfigFailsAndTheDevicesAreNotGuessed() throws {
        let bad = "/tmp/lmc-doctor-bad-\(getpid()).toml"
        defer { unlink(bad) }
        try "[box]\nid = 1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try doctor(["--config", bad, "--skip", Self.systemChecks + ",log"])
        #expect(r.status == 1)
        #expect(r.checks["config"]?["status"] as? String == "fail")
        #expect((r.checks["config"]?["fix"] as? String)?.contains("lmc config check --config \(bad)") == true)
        #expect((r.checks["meters"]?["detail"] as? String)?.contains("not checked") == true)
        let unknown = try run(Repo.lmc, ["doctor", "--skip", "meterz"])
        #expect(unknown.status != 0 && unknown.err.contains("--skip 'meterz' is not a check"))
    }

    @Test func theSystemChecksEachGiveAStatusAndAFix() throws {
        let r = try doctor(["--config", "/nonexistent.toml"])
        for name in ["clock", "log", "disk", "service", "watchdog", "ssh", "sysrq"] {
            #expect(r.checks[name] != nil, "\(name) ran")
        }
        #expect(r.status == 1, "a missing config alone fails")
    }
}
