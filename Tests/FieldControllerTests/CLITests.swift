import Foundation
import LMCTestSupport
import Testing

/// `lmc` as a field engineer runs it: a subprocess against independent peers.
@Suite struct CLITests {
    let meterSpec = """
    {"input": [{"address": 0, "type": "f32", "value": 230.5},
               {"address": 2, "type": "f32", "value": 229.75},
               {"address": 52, "type": "i32", "word_order": "little", "value": -4200}],
     "holding": [{"address": 1210, "type": "f32", "value": 16.0}]}
    """

    @Test func versionAndHelp() throws {
        let v = try run(Repo.lmc, ["--version"])
        #expect(v.status == 0 && v.out.trimmingCharacters(in: .whitespacesAndNewlines) == "0.2.0")
        let h = try run(Repo.lmc, ["--help"])
        for word in ["modbus", "gpio", "demo"] { #expect(h.out.contains(word)) }
        let r = try run(Repo.lmc, ["modbus", "read", "--help"])
        for word in ["--tcp", "--rtu", "--baud", "--parity", "--unit", "--holding", "--input", "--count", "--type", "--word-order", "--json"] {
            #expect(r.out.contains(word), "modbus read --help lacks \(word)")
        }
    }

    @Test func readsAFloatFromPymodbusOverTCP() throws {
        let peer = try PyModbusPeer(tcpSpec: meterSpec)
        defer { peer.stop() }
        let r = try run(Repo.lmc, ["modbus", "read", "--tcp", "127.0.0.1:\(peer.port)", "--unit", "1", "--input", "0", "--count", "2", "--type", "f32"])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].hasSuffix("0x4366 0x8000  230.5"))
        #expect(lines[2].hasSuffix("229.75"))
    }

    @Test func jsonOutputForScripts() throws {
        let peer = try PyModbusPeer(tcpSpec: meterSpec)
        defer { peer.stop() }
        let r = try run(Repo.lmc, ["modbus", "read", "--tcp", "127.0.0.1:\(peer.port)", "--input", "52", "--type", "i32", "--word-order", "little", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let o = try jsonObject(r.out)
        let values = o["values"] as! [[String: Any]]
        #expect((values[0]["value"] as! NSNumber).intValue == -4200)
        #expect((values[0]["address"] as! NSNumber).intValue == 52)
        #expect(o["word_order"] as? String == "little")
    }

    @Test func readsAFloatFromPymodbusOverRTU() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        // No parity here: pyserial's termios settings for parity E/O garble bytes on a pty (not on a
        // UART); libmodbus-to-libmodbus covers 19200 8E1 in ModbusBridgeTests.
        let peer = try PyModbusPeer(rtuDevice: pty.b, baud: 9600, units: [3], spec: meterSpec)
        defer { peer.stop() }
        let r = try run(Repo.lmc, ["modbus", "read", "--rtu", pty.a, "--baud", "9600", "--unit", "3", "--input", "0", "--type", "f32"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("rtu \(pty.a) 9600 8N1 unit 3"))
        #expect(r.out.split(separator: "\n").last?.hasSuffix("230.5") == true)
    }

    @Test func writeNeedsYesThenWrites() throws {
        let peer = try PyModbusPeer(tcpSpec: meterSpec)
        defer { peer.stop() }
        let target = ["modbus", "write", "--tcp", "127.0.0.1:\(peer.port)", "1210", "10.5", "--type", "f32"]
        let refused = try run(Repo.lmc, target)
        #expect(refused.status != 0)
        #expect(refused.err.contains("--yes"))
        let done = try run(Repo.lmc, target + ["--yes"])
        #expect(done.status == 0, "\(done.err)")
        let back = try run(Repo.lmc, ["modbus", "read", "--tcp", "127.0.0.1:\(peer.port)", "--holding", "1210", "--type", "f32"])
        #expect(back.out.hasSuffix("10.5\n"))
    }

    @Test func badArgumentsNameTheThingAndTheFix() throws {
        let cases: [([String], String)] = [
            (["modbus", "read", "--tcp", "127.0.0.1:notaport", "0"], "port 'notaport' is not a number"),
            (["modbus", "read", "--tcp", "127.0.0.1:502", "--rtu", "/dev/ttyS1", "0"], "exactly one of --tcp"),
            (["modbus", "read", "--tcp", "127.0.0.1:502", "--type", "f16", "0"], "--type 'f16'"),
            (["modbus", "read", "--tcp", "127.0.0.1:502", "--parity", "X", "--rtu", "x", "0"], "exactly one"),
            (["modbus", "read", "--rtu", "/dev/ttyS1", "--parity", "X", "0"], "--parity 'X' is not N, E or O"),
            (["modbus", "read", "--tcp", "127.0.0.1:502", "70000"], "address '70000'"),
            (["modbus", "read", "--tcp", "127.0.0.1:502", "--unit", "300", "0"], "--unit 300"),
            (["modbus", "write", "--tcp", "127.0.0.1:502", "--coils", "0", "2", "--yes"], "coil value 2.0 is not 0 or 1"),
        ]
        for (args, message) in cases {
            let r = try run(Repo.lmc, args)
            #expect(r.status != 0, "\(args)")
            #expect(r.err.contains(message), "\(args): \(r.err)")
        }
    }

    @Test func deviceErrorsExitNonZeroWithTheReason() throws {
        let peer = try PyModbusPeer(tcpSpec: meterSpec)
        let port = peer.port
        let absent = try run(Repo.lmc, ["modbus", "read", "--tcp", "127.0.0.1:\(port)", "--holding", "5000"])
        #expect(absent.status == 1)
        #expect(absent.err.contains("exception 0x02 illegal data address"))
        peer.stop()
        let refused = try run(Repo.lmc, ["modbus", "read", "--tcp", "127.0.0.1:\(port)", "--holding", "0"])
        #expect(refused.status == 1)
        #expect(refused.err.contains("connection refused"))
        #expect(refused.err.contains("127.0.0.1:\(port)"))
    }

    @Test func gpioOnABoxWithoutTheChipSaysSo() throws {
        let r = try run(Repo.lmc, ["gpio", "info", "--chip", "/dev/gpiochip-lmc-absent"])
        #expect(r.status == 1)
        #expect(r.err.contains("no such GPIO chip"))
        let p = try run(Repo.lmc, ["gpio", "pulse", "--line", "3"])
        #expect(p.status != 0 && p.err.contains("--yes"))
    }

    @Test func theDemoNamesABadMode() throws {
        let r = try run(Repo.lmc, ["demo", "--mode", "sideways"])
        #expect(r.status != 0 && r.err.contains("--mode sideways: expected direct or incremental"), "\(r.err)")
    }

    /// `--window`: only that time of day, at a lower compression; the summary is the window's.
    @Test func theDemoRunsAWindowOfTheDay() throws {
        let r = try run(Repo.lmc, ["demo", "--seconds", "6", "--plain", "--window", "17:00-18:00", "--mode", "incremental",
                                   "--plot", "/dev/null"], timeout: 90)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("from 17:00 to 18:00 in 6 s (600× faster)"), "\(r.out.prefix(400))")
        #expect(r.out.contains("summary of 17:00–18:00 (incremental mode"), "\(r.out.suffix(600))")
        #expect(!r.out.contains("evening 15:00–20:30:"), "the evening is not all in the window")
        // Hourly lines: only the window's hours (the last at its end).
        let hours = r.out.split(separator: "\n").compactMap { $0.count > 6 && $0.dropFirst(2).hasPrefix(":00  ") ? String($0.prefix(2)) : nil }
        #expect(!hours.isEmpty && hours.allSatisfy { $0 == "17" || $0 == "18" }, "\(hours)")
        // The demo's working folder (its rings, socket and breakers.state) is gone when it ends.
        let folder = try #require(r.out.split(separator: "\n").first { $0.hasPrefix("rings and control socket in ") }, "\(r.out.prefix(400))")
            .dropFirst("rings and control socket in ".count).split(separator: " ").first.map(String.init)
        #expect(folder?.hasPrefix("/tmp/lmc-demo-") == true && access(folder!, F_OK) != 0, "left behind: \(folder ?? "?")")
        let bad = try run(Repo.lmc, ["demo", "--window", "18:00-17:00"])
        #expect(bad.status != 0 && bad.err.contains("--window '18:00-17:00' is not a time-of-day window"), "\(bad.err)")
    }

    @Test func demoRunsTheExampleDayThroughTheDaemon() throws {
        let plot = "/tmp/lmc-demo-test-\(getpid()).svg"
        defer { unlink(plot) }
        let r = try run(Repo.lmc, ["demo", "--seconds", "6", "--plain", "--plot", plot], timeout: 90)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("through lmc run's control loop"))
        #expect(r.out.contains("seconds above 510 kVA (+2 %):"))
        #expect(r.out.contains("evening 15:00–20:30:") && r.out.contains("direct mode"), "\(r.out.suffix(600))")
        #expect(r.out.contains("plot: \(plot)"))
        // Hourly lines: the set point never leaves firm and rated, as whole amps (217 A = 149.7 kW, 362 A = 249.8 kW).
        let setPoints = r.out.split(separator: "\n").compactMap { line -> Double? in
            guard let range = line.range(of: "set point ") else { return nil }
            return Double(line[range.upperBound...].split(separator: " ")[0])
        }
        // Under a sanitizer (make sanitize sets LMC_SLOW) the loop runs slower and prints fewer hours.
        #expect(setPoints.count >= (ProcessInfo.processInfo.environment["LMC_SLOW"] == nil ? 20 : 8))
        #expect(setPoints.allSatisfy { (149...250).contains($0) }, "\(setPoints)")  // whole amps: 217 A = 149.7 kW
        // The picture, read back by Python's XML parser: every series in the legend, no legend label
        // running into the next one (text widths at a generous 0.65 em of the 12 px font), and the set
        // point drawn after — on top of — the import, dashed in another colour, so it shows where the
        // two are equal.
        let parsed = try run(Repo.python, ["-c", """
        import json, sys, xml.etree.ElementTree as ET
        ns = "{http://www.w3.org/2000/svg}"
        root = ET.parse(sys.argv[1]).getroot()
        size = float(root.get("font-size"))
        legend = root.find(ns + "g[@id='legend']")
        items = [(float(t.get("x")), float(t.get("y")), t.text) for t in legend.iter(ns + "text")]
        swatches = [(float(l.get("x1")), float(l.get("x2")), float(l.get("y1"))) for l in legend.iter(ns + "line")]
        overlaps = []
        boxes = [(x, x + 0.65 * size * len(text), y, text) for x, y, text in items] + [(a, b, y + 4, "swatch") for a, b, y in swatches]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if a[2] == b[2] and a[0] < b[1] and b[0] < a[1]:
                    overlaps.append([a[3], b[3]])
        width = float(root.get("width"))
        series = [(p.get("data-label"), p.get("stroke"), p.get("stroke-dasharray")) for p in root.iter(ns + "polyline")]
        print(json.dumps({"legend": [t for _, _, t in items], "overlaps": overlaps, "inside": all(b[1] <= width for b in boxes),
                          "series": [s[0] for s in series], "styles": {s[0]: [s[1], s[2]] for s in series}}))
        """, plot])
        #expect(parsed.status == 0, "the SVG parses: \(parsed.err)")
        let o = try jsonObject(parsed.out)
        let series = try #require(o["series"] as? [String])
        #expect(Set(o["legend"] as? [String] ?? []) == Set(series), "every series in the legend: \(o)")
        #expect((o["overlaps"] as? [Any])?.isEmpty == true, "legend entries overlap: \(o["overlaps"] ?? "")")
        #expect(o["inside"] as? Bool == true, "legend within the picture")
        let sp = try #require(series.firstIndex { $0.hasPrefix("site set point") }), imp = try #require(series.firstIndex(of: "site import"))
        #expect(sp > imp, "set point drawn over the import")
        let styles = try #require(o["styles"] as? [String: [Any]])
        #expect(styles[series[sp]]?[1] is String, "set point dashed")
        #expect(styles[series[sp]]?[0] as? String != styles["site import"]?[0] as? String, "in its own colour")
    }

}

/// `lmc simulate` and `lmc config check` as an engineer runs them.
@Suite struct SimulateAndConfigCLITests {
    static let scenarios = Repo.root.appendingPathComponent("scenarios")
    static let example = Repo.root.appendingPathComponent("hw/examples/lmc.toml").path

    @Test func simulateTheExampleDayWithTheExampleConfig() throws {
        let trace = "/tmp/lmc-sim-\(getpid()).csv"
        defer { unlink(trace) }
        // By name: a development build finds the source tree's scenarios/ (no LMC_SCENARIOS here).
        let r = try run(Repo.lmc, ["simulate", "--config", Self.example, "--scenario", "seed-example-day",
                                   "--trace", trace, "--json"], environment: ["PATH": "/usr/bin:/bin"], timeout: 120)
        #expect(r.status == 0, "\(r.err)")
        let o = try jsonObject(r.out)
        let found = try #require(o["scenario"] as? String)
        #expect(found == "/usr/share/lmc/scenarios/seed-example-day.csv" || found == Self.scenarios.appendingPathComponent("seed-example-day.csv").path, "\(found)")
        #expect((o["seconds_above_tolerance"] as! NSNumber).doubleValue == 0)
        #expect((o["share_of_oracle"] as! NSNumber).doubleValue >= 0.97)
        #expect((o["reversals_per_hour"] as! NSNumber).doubleValue <= 2)
        let rows = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "t_s,background_kva,constraint_kva,site_kva,demand_kva,setpoint_kw,sent,bound_by")
        #expect(rows.count == 86_341)   // one row a second over 23:59, and the header
        // Every set point in the trace lies within firm and rated, as the charger's whole amps
        // (217 A = 149.7 kW, 362 A = 249.8 kW), and the sent value is the set point in amps.
        for row in rows.dropFirst().prefix(5000) {
            let cols = row.split(separator: ",")
            let sp = Double(cols[5])!, amps = Double(cols[6])!
            #expect(sp >= 149.7 && sp <= 250)
            #expect(amps == amps.rounded() && abs(amps * 0.69 - sp) < 0.1, "\(row)")
        }
    }

    /// Scenarios by name: $LMC_SCENARIOS first, then the package's folder, then (debug builds) the source
    /// tree's; never the current directory; the help lists what it finds.
    @Test func scenariosAreFoundByNameOnTheSearchPath() throws {
        let dir = "/tmp/lmc-scen-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A file of the same name in LMC_SCENARIOS hides the shipped one: a flat 100 kVA day.
        try "# flat\ntime_s,background_kva,ev_demand_kva\n0,100,250\n3600,100,250\n".write(toFile: "\(dir)/seed-example-day.csv", atomically: true, encoding: .utf8)
        try "time_s,background_kva,ev_demand_kva\n0,100,250\n600,100,250\n".write(toFile: "\(dir)/mine.csv", atomically: true, encoding: .utf8)
        let env = ["PATH": "/usr/bin:/bin", "LMC_SCENARIOS": dir]
        for name in ["seed-example-day", "seed-example-day.csv"] {
            let r = try run(Repo.lmc, ["simulate", "--scenario", name, "--json"], environment: env)
            #expect(r.status == 0, "\(r.err)")
            let o = try jsonObject(r.out)
            #expect(o["scenario"] as? String == "\(dir)/seed-example-day.csv")
            #expect((o["hours"] as? NSNumber)?.doubleValue == 1)
        }
        let mine = try run(Repo.lmc, ["simulate", "--scenario", "mine", "--json"], environment: env)
        #expect(mine.status == 0, "\(mine.err)")
        #expect(try jsonObject(mine.out)["scenario"] as? String == "\(dir)/mine.csv")
        // The month comes from further down the path.
        let help = try run(Repo.lmc, ["simulate", "--help"], environment: env)
        #expect(help.out.contains("looked up in, in order:\n  \(dir)  ($LMC_SCENARIOS)\n  /usr/share/lmc/scenarios  (the package)\n"), "\(help.out)")
        let listed = help.out.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(listed.contains(["mine", dir]) && listed.contains(["seed-example-day", dir]), "\(help.out)")
        #expect(listed.contains { $0.first == "semiurban-january" && $0.count == 2 && $0[1] != dir }, "the month comes from further down: \(help.out)")
        // (ArgumentParser leaves its USAGE line unwrapped; the text above it is ours.)
        let discussion = help.out.components(separatedBy: "USAGE:")[0]
        #expect(discussion.split(separator: "\n").allSatisfy { $0.count <= 80 }, "fits the 80-column console")
        // The current directory is not on the path: a scenario there by name is not found.
        let cwdOnly = try run("/bin/sh", ["-c", "cd \(dir) && exec \(Repo.lmc) simulate --scenario mine"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(cwdOnly.status == 2 && cwdOnly.err.contains("no scenario 'mine' in "), "\(cwdOnly.err)")
        #expect(cwdOnly.err.contains("there are: ") && cwdOnly.err.contains("seed-example-day"), "\(cwdOnly.err)")
        // …but a path is taken as given.
        let path = try run("/bin/sh", ["-c", "cd \(dir) && exec \(Repo.lmc) simulate --scenario ./mine.csv --json"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(path.status == 0, "\(path.err)")
    }

    @Test func simulateRefusesABadScenarioWithTheLine() throws {
        let bad = "/tmp/lmc-bad-\(getpid()).csv"
        defer { unlink(bad) }
        try "time_s,background_kva,ev_demand_kva\n0,100,50\n60,abc,50\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try run(Repo.lmc, ["simulate", "--scenario", bad])
        #expect(r.status == 2)
        #expect(r.err.contains("line 3: background_kva 'abc' is not a number"))
        let missing = try run(Repo.lmc, ["simulate", "--scenario", "/nonexistent.csv"])
        #expect(missing.status == 2 && missing.err.contains("cannot read scenario /nonexistent.csv"))
        let step = try run(Repo.lmc, ["simulate", "--scenario", bad, "--step", "12:40"])
        #expect(step.status != 0 && step.err.contains("--step '12:40' is not START_S:KVA:DURATION_S"))
    }

    @Test func configCheckAcceptsTheExampleAndNamesATypo() throws {
        let ok = try run(Repo.lmc, ["config", "check", "--config", Self.example])
        #expect(ok.status == 0 && ok.out.contains("ok — 1 measurement point, 1 site"))
        let typo = "/tmp/lmc-typo-\(getpid()).toml"
        defer { unlink(typo) }
        try String(contentsOfFile: Self.example, encoding: .utf8)
            .replacingOccurrences(of: "regulate_margin_kva", with: "regulate_margin_kv")
            .write(toFile: typo, atomically: true, encoding: .utf8)
        let bad = try run(Repo.lmc, ["config", "check", "--config", typo])
        #expect(bad.status == 2)
        let line = try String(contentsOfFile: Self.example, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("regulate_margin_kva") }! + 1
        #expect(bad.err.contains("line \(line): measurement_point[0].regulate_margin_kv: unknown key (did you mean regulate_margin_kva?)"), "\(bad.err)")
    }

    /// A profile that is not found: the error lists what is installed, and when nothing is (lmc started
    /// outside the source tree, no package), it says so and how to fix it, not "available: " and nothing.
    @Test func anUnknownProfileNamesWhatIsInstalledOrHowToInstallIt() throws {
        let cfg = "/tmp/lmc-profile-\(getpid()).toml"
        defer { unlink(cfg) }
        try String(contentsOfFile: Self.example, encoding: .utf8)
            .replacingOccurrences(of: "\"alfen-ng9xx\"", with: "\"no-such-charger\"")
            .write(toFile: cfg, atomically: true, encoding: .utf8)
        let charger = try run(Repo.lmc, ["config", "check", "--config", cfg])
        #expect(charger.status == 2 && charger.err.contains("no such charger profile"), "\(charger.err)")
        #expect(charger.err.contains("available: ") && charger.err.contains("alfen-ng9xx"), "\(charger.err)")

        let empty = "/tmp/lmc-no-hw-\(getpid())"
        mkdir(empty, 0o755)
        defer { rmdir(empty) }
        let none = try run("/bin/sh", ["-c", "cd \(empty) && exec \(Repo.lmc) config check --config \(Self.example)"],
                           environment: ProcessInfo.processInfo.environment.filter { $0.key != "LMC_HW_DIR" })
        #expect(none.status == 2, "\(none.err)")
        #expect(none.err.contains("no meter profiles are installed") && none.err.contains("no charger profiles are installed"), "\(none.err)")
        #expect(none.err.contains("LMC_HW_DIR") && !none.err.contains("available: \n") && !none.err.hasSuffix("available: "), "\(none.err)")
    }
}

@Suite struct MeterProbeCLITests {
    static let values = #"{"voltage_l1": 231.4, "voltage_l2": 229.8, "voltage_l3": 232.1, "current_l1": 412.5, "current_l2": 398.25, "current_l3": 405.125, "power_total": 269365.5, "apparent_power_total": 281001.1, "frequency": 49.9, "energy_import": 123456700}"#

    static let profiles = ["eastron-sdm630", "carlo-gavazzi-em24", "carlo-gavazzi-em340", "schneider-iem3000", "schneider-pm5100", "generic"]

    @Test(arguments: profiles)
    func probeEveryProfileOverTCP(name: String) throws {
        let path = Repo.root.appendingPathComponent("hw/meters/\(name).toml").path
        let peer = try PyModbusPeer(profile: path, values: Self.values)
        defer { peer.stop() }
        let r = try run(Repo.lmc, ["meter", "probe", "--profile", name, "--tcp", "127.0.0.1:\(peer.port)", "--ct-rating-a", "600"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("\(name) on tcp 127.0.0.1:\(peer.port) unit 1: good"))
        #expect(r.out.contains("412.5 A"))
    }

    @Test func probeOverTCPPrintsEveryValueWithUnitsAndQuality() throws {
        let path = Repo.root.appendingPathComponent("hw/meters/carlo-gavazzi-em24.toml").path
        let peer = try PyModbusPeer(profile: path, values: Self.values)
        defer { peer.stop() }
        let r = try run(Repo.lmc, ["meter", "probe", "--profile", path, "--tcp", "127.0.0.1:\(peer.port)", "--ct-rating-a", "600"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("carlo-gavazzi-em24 on tcp 127.0.0.1:\(peer.port) unit 1: good"))
        #expect(r.out.contains("current_l3") && r.out.contains("405.125 A"))
        #expect(r.out.contains("apparent_power_total") && r.out.contains("281001.1 VA"))
        let j = try run(Repo.lmc, ["meter", "probe", "--profile", path, "--tcp", "127.0.0.1:\(peer.port)", "--json"])
        let o = try jsonObject(j.out)
        #expect(o["usable"] as? Bool == true)
        #expect(((o["values"] as! [String: Any])["voltage_l2"] as! NSNumber).doubleValue == 229.8)
    }

    @Test(arguments: profiles)
    func probeEveryProfileOverRTU(name: String) throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let path = Repo.root.appendingPathComponent("hw/meters/\(name).toml").path
        let spec = try run(Repo.python, ["-c", """
        import json, sys; sys.path.insert(0, '\(Repo.root.appendingPathComponent("Tests/peers").path)')
        import modbus_peer; print(json.dumps(modbus_peer.spec_from_profile('\(path)', json.loads(sys.argv[1]))))
        """, Self.values]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let peer = try PyModbusPeer(rtuDevice: pty.b, baud: 9600, units: [5], spec: spec)
        defer { peer.stop() }
        let r = try run(Repo.lmc, ["meter", "probe", "--profile", name, "--rtu", pty.a, "--unit", "5", "--ct-rating-a", "600"])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("rtu \(pty.a) 9600 8N1 unit 5: good"))
        #expect(r.out.contains("412.5 A"))
    }

    @Test func aDeadMeterExitsOneWithTheReason() throws {
        let r = try run(Repo.lmc, ["meter", "probe", "--profile", "eastron-sdm630", "--tcp", "127.0.0.1:1", "--timeout-ms", "200"])
        #expect(r.status == 1)
        #expect(r.out.contains("bad: disconnected"))
        #expect(r.out.contains("connection refused"))
        let unknown = try run(Repo.lmc, ["meter", "probe", "--profile", "no-such-meter", "--tcp", "127.0.0.1:1"])
        #expect(unknown.status == 2 && unknown.err.contains("no such meter profile") && unknown.err.contains("eastron-sdm630"))
    }
}

@Suite struct ChargerCLITests {
    @Test func setProgramsTheFallbackAndProbeShowsIt() throws {
        let path = Repo.root.appendingPathComponent("hw/chargers/alfen-ng9xx.toml").path
        let peer = try ChargerPeer(profile: path, validity: 60, fallbackA: 6, refuseFC6OnLimit: true)
        defer { peer.stop() }
        let refused = try run(Repo.lmc, ["charger", "set", "--profile", "alfen-ng9xx", "--tcp", "127.0.0.1:\(peer.port)", "--amps", "16", "--safe-amps", "10"])
        #expect(refused.status != 0 && refused.err.contains("--yes"))
        let set = try run(Repo.lmc, ["charger", "set", "--profile", "alfen-ng9xx", "--tcp", "127.0.0.1:\(peer.port)", "--amps", "16", "--safe-amps", "10", "--yes"])
        #expect(set.status == 0, "\(set.err)")
        #expect(set.out.contains("charger applies 16.0 A"))
        let probe = try run(Repo.lmc, ["charger", "probe", "--profile", "alfen-ng9xx", "--tcp", "127.0.0.1:\(peer.port)"])
        #expect(probe.status == 0, "\(probe.out)\(probe.err)")
        #expect(probe.out.contains("limit                 16.0 A   (register 1210)"))
        #expect(probe.out.contains("safe current          10.0 A   (register 1212)"))
        #expect(peer.writes(waitingFor: 1210).map(\.address) == [1212, 1210])
    }
}

/// Issue 17 item 10: `lmc watch` on a serial console whose line hangs up (a cable pulled, the terminal
/// server dropped) must end, not poll the socket forever on a dead line. The test gives watch a pty as
/// its controlling terminal (Python's pty.fork: a new session, the pty as its tty), waits for a screen,
/// then closes the master side — the kernel's hang-up. Both ways it can arrive are tried: SIGHUP to the
/// session leader, and, with SIGHUP ignored (as under nohup), writes to the dead line failing with EIO.
@Suite struct WatchHangUp {
    static let driver = """
        import os, pty, signal, sys, time
        lmc, ignore = sys.argv[1], sys.argv[2] == "ignore"
        pid, fd = pty.fork()
        if pid == 0:
            if ignore:
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
            os.execv(lmc, [lmc, "watch", "--socket", "/nonexistent/lmc.sock", "--interval", "0.2"])
        buf, end = b"", time.time() + 10
        while b"not reachable" not in buf and time.time() < end:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
        print("SCREEN", b"not reachable" in buf)
        os.close(fd)
        t0 = time.time()
        while time.time() - t0 < 5:
            p, status = os.waitpid(pid, os.WNOHANG)
            if p:
                how = "signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exit %d" % os.WEXITSTATUS(status)
                print("ENDED %s after %.2f s" % (how, time.time() - t0))
                sys.exit(0)
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("STILL RUNNING 5 s after the hang-up")
        """

    @Test(arguments: ["default", "ignore"])
    func watchEndsWhenItsLineHangsUp(sighup: String) throws {
        let r = try run(Repo.python, ["-c", Self.driver, Repo.lmc, sighup], timeout: 30)
        #expect(r.out.contains("SCREEN True"), "watch drew its screen first: \(r.out) \(r.err)")
        if sighup == "ignore" {
            #expect(r.out.contains("ENDED exit 1"), "writes to the hung-up line fail: \(r.out)")
        } else {
            #expect(r.out.contains("ENDED signal \(SIGHUP)"), "SIGHUP ends it: \(r.out)")
        }
    }
}
