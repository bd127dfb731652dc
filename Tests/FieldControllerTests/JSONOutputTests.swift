import Foundation
import LMCTestSupport
import Testing

/// `--json` on the read commands (docs/json.md): parsed back by Foundation, checked against the text
/// output or the peers' truth.
@Suite struct JSONOutputTests {
    static let example = Repo.root.appendingPathComponent("hw/examples/lmc.toml").path

    @Test func configCheck() throws {
        let ok = try run(Repo.lmc, ["config", "check", "--config", Self.example, "--json"])
        #expect(ok.status == 0, "\(ok.err)")
        let o = try jsonObject(ok.out)
        #expect(o["ok"] as? Bool == true && (o["issues"] as? [Any])?.isEmpty == true)
        #expect(o["file"] as? String == Self.example)
        #expect(o["measurement_points"] as? [String] == ["trafo"] && o["sites"] as? [String] == ["hub"], "\(o)")
        #expect(o["period_ms"] as? Int == 100)

        let typo = "/tmp/lmc-json-typo-\(getpid()).toml"
        defer { unlink(typo) }
        try String(contentsOfFile: Self.example, encoding: .utf8).replacingOccurrences(of: "regulate_margin_kva", with: "regulate_margin_kv")
            .write(toFile: typo, atomically: true, encoding: .utf8)
        let bad = try run(Repo.lmc, ["config", "check", "--config", typo, "--json"])
        #expect(bad.status == 2)
        let b = try jsonObject(bad.out)
        #expect(b["ok"] as? Bool == false)
        let issues = try #require(b["issues"] as? [[String: Any]])
        #expect(issues.contains { ($0["key"] as? String) == "measurement_point[0].regulate_margin_kv" && ($0["line"] as? Int ?? 0) > 0
                                   && ($0["message"] as? String)?.contains("unknown key") == true }, "\(issues)")
        let missing = try run(Repo.lmc, ["config", "check", "--config", "/nonexistent.toml", "--json"])
        #expect(missing.status == 2)
        #expect(try jsonObject(missing.out)["ok"] as? Bool == false, "\(missing.out)")
    }

    @Test func chargerProbe() throws {
        let charger = try ChargerPeer(profile: Repo.root.appendingPathComponent("hw/chargers/alfen-ng9xx.toml").path, validity: 60, fallbackA: 6)
        defer { charger.stop() }
        let set = try run(Repo.lmc, ["charger", "set", "--profile", "alfen-ng9xx", "--tcp", "127.0.0.1:\(charger.port)", "--amps", "16", "--safe-amps", "10", "--yes"])
        #expect(set.status == 0, "\(set.err)")
        let r = try run(Repo.lmc, ["charger", "probe", "--profile", "alfen-ng9xx", "--tcp", "127.0.0.1:\(charger.port)", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let o = try jsonObject(r.out)
        #expect(o["charger"] as? String == "alfen-ng9xx" && o["ok"] as? Bool == true, "\(o)")
        let regs = try #require(o["registers"] as? [String: [String: Any]])
        #expect(Set(regs.keys) == ["limit", "safe_current", "timeout", "applied"])
        let state = try charger.state()
        #expect((regs["safe_current"]?["value"] as? NSNumber)?.doubleValue == 10 && (state["safe_a"] as? NSNumber)?.doubleValue == 10, "\(regs) vs \(state)")
        #expect((regs["limit"]?["value"] as? NSNumber)?.doubleValue == 16 && (state["limit_a"] as? NSNumber)?.doubleValue == 16, "\(regs) vs \(state)")
        #expect(regs["limit"]?["register"] as? Int == 1210 && regs["limit"]?["unit"] as? String == "A")
        // A charger that does not answer: ok false, exit 1, each register with its error.
        charger.stop()
        let dead = try run(Repo.lmc, ["charger", "probe", "--profile", "alfen-ng9xx", "--tcp", "127.0.0.1:\(charger.port)", "--timeout-ms", "200", "--json"])
        if dead.status == 1, let d = try? jsonObject(dead.out) {
            #expect(d["ok"] as? Bool == false)
        } else {
            #expect(dead.status != 0 && dead.err.contains("127.0.0.1:\(charger.port)"), "connection refused is an error before any register: \(dead.out)\(dead.err)")
        }
    }

    @Test func statusAndAlarmsFromTheDaemon() throws {
        // The charger never answers: the relay fails, and after relay_alarm_after_s its alarm stands.
        let d = try Daemon(tag: "json", extra: "")
        d.charger.stop()
        var alarms: [[String: Any]] = []
        let end = Date().addingTimeInterval(20)
        while Date() < end {
            if let r = try? run(Repo.lmc, ["alarms", "--json", "--socket", d.socket]), r.status == 0, let o = try? jsonObject(r.out) {
                alarms = o["alarms"] as? [[String: Any]] ?? []
                if !alarms.isEmpty { break }
            }
            usleep(200_000)
        }
        let relay = try #require(alarms.first { $0["code"] as? String == "RELAY_FAILING" }, "\(alarms)")
        #expect(relay["subject"] as? String == "hub")
        #expect((relay["message"] as? String)?.isEmpty == false)
        #expect((relay["text"] as? String)?.hasPrefix("RELAY_FAILING hub: ") == true)
        // The same alarm as the text command and status --json show it (its message counts the seconds up).
        let text = try run(Repo.lmc, ["alarms", "--socket", d.socket]).out
        #expect(text.contains("RELAY_FAILING hub: set point not delivered"), "\(text)")
        let status = try jsonObject(try run(Repo.lmc, ["status", "--json", "--socket", d.socket]).out)
        #expect((status["alarms"] as? [String])?.contains { $0.hasPrefix("RELAY_FAILING hub: ") } == true, "\(status)")
        #expect(status["mode"] as? String != nil && (status["sites"] as? [[String: Any]])?.first?["id"] as? String == "hub")
        // No daemon: an error on stderr, exit 1, nothing on stdout.
        let none = try run(Repo.lmc, ["alarms", "--json", "--socket", "/nonexistent.sock"])
        #expect(none.status == 1 && none.out.isEmpty && none.err.contains("cannot reach the daemon"))
    }
}

extension AuditAndPlotTests {
    @Test func infoAndAuditAsJSONAgreeWithTheText() throws {
        let report = try Self.report
        let info = try run(Repo.lmc, ["log", "info", "--dir", Self.dir, "--json"])
        #expect(info.status == 0, "\(info.err)")
        let rings = try #require(try jsonObject(info.out)["rings"] as? [[String: Any]])
        #expect(rings.map { $0["name"] as? String } == ["samples", "minutes", "halfhours", "events", "trips"])
        let hh = try #require(rings.first { $0["name"] as? String == "halfhours" })
        #expect(hh["records"] as? Int == 48 && hh["present"] as? Bool == true && hh["unreadable"] as? Int == 0, "\(hh)")
        #expect((hh["first"] as? String)?.hasPrefix("2026-11-20T00:") == true, "\(hh)")
        let text = try run(Repo.lmc, ["log", "info", "--dir", Self.dir]).out
        for r in rings { #expect(text.contains("\(r["name"]!): ") && text.contains("holds \(r["records"]!)"), "\(text)") }

        let audit = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--day", "2026-11-20", "--json"])
        #expect(audit.status == 0, "\(audit.err)")
        let a = try jsonObject(audit.out)
        #expect(a["day"] as? String == "2026-11-20" && a["half_hours_recorded"] as? Int == 48 && (a["missing"] as? [Any])?.isEmpty == true)
        let mp = try #require((a["measurement_points"] as? [[String: Any]])?.first)
        #expect(mp["name"] as? String == "trafo" && mp["unit"] as? String == "VA" && (mp["limit"] as? NSNumber)?.doubleValue == 500_000)
        #expect(abs(((mp["s_beyond_limit"] as? NSNumber)?.doubleValue ?? -1) - report["seconds_above_limit"]!) < 1, "\(mp)")
        let site = try #require((a["sites"] as? [[String: Any]])?.first)
        #expect(abs(((site["imported_kwh"] as? NSNumber)?.doubleValue ?? -1) - report["delivered_kwh"]!) < 0.2, "\(site)")
        #expect((a["half_hours"] as? [Any])?.count == 48)
        let modes = try #require(a["seconds_in_mode"] as? [String: Double])
        #expect((modes["NORMAL"] ?? 0) > 86_000, "\(modes)")

        // The DNO's account may ask for both as JSON, and nothing else gains a flag.
        let s = SSHCommandTests()
        let viaSSH = try s.ssh("log audit --day 2026-11-20 --json", dir: Self.dir)
        #expect(viaSSH.status == 0 && viaSSH.out == audit.out, "\(viaSSH.err)")
        #expect(try s.ssh("log info --json", dir: Self.dir).status == 0)
        let refused = try s.ssh("log export --ring events --json", dir: Self.dir)
        #expect(refused.status == 1 && refused.err.contains("'--json' is not an allowed option of log export"), "\(refused.err)")
    }
}

extension AuditAndPlotTests {
    /// `lmc log audit --month --json` (issue 20): valid against its schema (docs/schemas), and the same
    /// numbers as the day's JSON for the month's only day.
    @Test func theMonthAsJSONMatchesItsSchemaAndTheDay() throws {
        _ = try Self.report
        let r = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--month", "2026-11", "--json"])
        #expect(r.status == 0, "\(r.err)")
        let path = "\(Self.dir)/month.json"
        try r.out.write(toFile: path, atomically: true, encoding: .utf8)
        let schema = Repo.root.appendingPathComponent("docs/schemas/log-audit-month.schema.json").path
        let v = try run(Repo.python, ["-c", """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        print(json.dumps([f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.load(open(sys.argv[2])))]))
        """, schema, path])
        #expect(v.status == 0 && v.out.trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(v.out)\(v.err)")

        let o = try jsonObject(r.out)
        #expect(o["month"] as? String == "2026-11" && o["days"] as? Int == 30 && o["half_hours_recorded"] as? Int == 48
                && o["half_hours_in_month"] as? Int == 1440, "\(o)")
        #expect(o["half_hours_clock_not_synchronised"] as? Int == 0 && o["half_hours_clock_unknown"] as? Int == 0, "lmc simulate's clock is synchronised")
        let byDay = try #require(o["by_day"] as? [[String: Any]])
        #expect(byDay.count == 30 && byDay[19]["day"] as? String == "2026-11-20" && byDay[19]["half_hours"] as? Int == 48
                && byDay[18]["half_hours"] as? Int == 0)
        func num(_ x: Any?) -> Double? { (x as? NSNumber)?.doubleValue }
        let day = try jsonObject(try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--day", "2026-11-20", "--json"]).out)
        let dayMP = try #require((day["measurement_points"] as? [[String: Any]])?.first)
        let mp = try #require((o["measurement_points"] as? [[String: Any]])?.first)
        let mpDays = try #require(mp["days"] as? [[String: Any]])
        let mpMonth = try #require(mp["month"] as? [String: Any])
        for k in ["peak", "peak_of_limit_pct", "s_beyond_limit", "s_beyond_trip", "s_bad"] {
            #expect(num(mpMonth[k]) != nil && num(mpMonth[k]) == num(dayMP[k]) && num(mpDays[19][k]) == num(dayMP[k]), "\(k): \(mpMonth) vs \(dayMP)")
        }
        #expect(mpDays.count == 30 && mpDays[0]["max"] is NSNull && mpDays[0]["half_hours"] as? Int == 0)
        let daySite = try #require((day["sites"] as? [[String: Any]])?.first)
        let siteMonth = try #require(((o["sites"] as? [[String: Any]])?.first)?["month"] as? [String: Any])
        for k in ["imported_kwh", "curtailed_kwh", "s_restricted"] {
            #expect(abs((num(siteMonth[k]) ?? -1) - (num(daySite[k]) ?? 1)) < 0.01, "\(k): \(siteMonth) vs \(daySite)")
        }
        // The DNO's SSH account gets the same.
        let viaSSH = try SSHCommandTests().ssh("log audit --month 2026-11 --json", dir: Self.dir)
        #expect(viaSSH.status == 0 && viaSSH.out == r.out, "\(viaSSH.err)")
    }
}
