import Foundation
import Headroom
import Testing
import TOMLReader
@testable import LMCConfig
import LMCWiring

func exampleConfigText() throws -> String {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    return try String(contentsOfFile: u.appendingPathComponent("hw/examples/lmc.toml").path, encoding: .utf8)
}

@Suite struct TOMLTests {
    @Test func readsTablesArraysOfTablesAndValues() throws {
        let t = try TOML.parse("""
        # comment
        title = "box 7"   # trailing comment
        n = 1_000
        x = -2.5
        on = true
        list = [1, 2.5, 3]
        [a.b]
        c = 'literal'
        [[site]]
        id = "one"
        [site.upper]
        limit = 1
        [[site]]
        id = "two"
        [site.upper]
        limit = 2
        [[site.schedule]]
        name = "w"
        """)
        #expect(t["title"] == .string("box 7"))
        #expect(t["n"] == .integer(1000))
        #expect(t["x"] == .float(-2.5))
        #expect(t["on"] == .bool(true))
        #expect(t["list"] == .array([.integer(1), .float(2.5), .integer(3)]))
        guard case .table(let a)? = t["a"], case .table(let b)? = a["b"] else { Issue.record("no [a.b]"); return }
        #expect(b["c"] == .string("literal"))
        guard case .array(let sites)? = t["site"], sites.count == 2, case .table(let two) = sites[1] else { Issue.record("no [[site]]"); return }
        #expect(two["id"] == .string("two"))
        guard case .table(let upper)? = two["upper"], case .array(let sched)? = two["schedule"] else { Issue.record("nesting"); return }
        #expect(upper["limit"] == .integer(2))
        #expect(sched.count == 1)
        #expect(t.line(of: "n") == 3)
    }

    @Test func syntaxErrorsNameTheLine() {
        let cases: [(String, Int, String)] = [
            ("a = 1\nb = \"open", 2, "not closed"),
            ("a = 1\na = 2", 2, "set twice"),
            ("a = hello", 1, "strings need quotes"),
            ("x = {y = 1}", 1, "inline tables"),
            ("[t]\n[t]", 2, "defined twice"),
            ("a = 1 b = 2", 1, "one key = value per line"),
            ("= 3", 1, "expected a key"),
        ]
        for (text, line, message) in cases {
            do {
                _ = try TOML.parse(text)
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.line == line, "\(text)")
                #expect(error.message.contains(message), "\(text): \(error.message)")
            }
        }
    }
}

@Suite struct ConfigurationTests {
    @Test func theExampleConfigIsTheExampleSite() throws {
        let c = try Configuration.parse(exampleConfigText()).get()
        #expect(c.mode == .direct && c.periodMilliseconds == 100)
        let mpSame = c.measurementPoints == [ExampleSite.measurementPoint()]
        if !mpSame { print("MP differs: \(c.measurementPoints) vs \(ExampleSite.measurementPoint())") }
        #expect(mpSame)
        var site = ExampleSite.site()
        site.connectionOrder = 1
        let siteSame = c.sites == [site]
        if !siteSame { print("site differs: \(c.sites) vs \(site)") }
        #expect(siteSame)
        _ = try c.controller()
    }

    /// `[[pulse_meter]]`: a site's PoC meter, never a constraint's meter (an average is too slow).
    @Test func aPulseMeterIsASitesPocMeterButNotAConstraintsMeter() throws {
        let s0 = "\n[[pulse_meter]]\nid = \"hub_s0\"\nline = 6\nactive_low = true\nimpulses_per_kwh = 1000\nminimum_load_w = 2000\n"
        let example = try exampleConfigText()
        let asPoc = example.replacingOccurrences(of: "poc_meter = \"hub_poc\"", with: "poc_meter = \"hub_s0\"") + s0
        let c = try Configuration.parse(asPoc).get()
        #expect(c.runtime.pulseMeters == [.init(id: "hub_s0", chip: "gpiochip0", line: 6, activeLow: true, impulsesPerKWh: 1000, minimumLoadW: 2000, windowSeconds: 60)])
        #expect(c.runtime.sitePocMeter["hub"] == "hub_s0")
        let asMP = example.replacingOccurrences(of: "meter = \"trafo_ct\"", with: "meter = \"hub_s0\"") + s0
        guard case .failure(let e) = Configuration.parse(asMP) else { Issue.record("accepted a pulse meter at a constraint"); return }
        #expect(e.description.contains("= \"hub_s0\": a [[pulse_meter]] gives an average over a minute, too slow to see a constraint"), "\(e)")
        guard case .failure(let missing) = Configuration.parse(example + "\n[[pulse_meter]]\nid = \"x\"\nline = 6\n") else { Issue.record("accepted"); return }
        #expect(missing.description.contains("impulses_per_kwh: missing (required)"), "\(missing)")
    }

    @Test func aTypoIsAnErrorNotASilentlyDroppedThreshold() throws {
        let text = try exampleConfigText().replacingOccurrences(of: "release_trigger_kva = 496", with: "release_triger_kva = 496")
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("accepted a typo"); return }
        let messages = e.issues.map(\.description)
        #expect(messages.contains { $0.contains("measurement_point[0].upper.release_triger_kva: unknown key (did you mean release_trigger_kva?)") }, "\(messages)")
        #expect(messages.contains { $0.contains("measurement_point[0].upper.release_trigger_kva: missing (required)") }, "\(messages)")
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("release_triger_kva") }! + 1
        #expect(e.issues.first { $0.path.hasSuffix("release_triger_kva") }?.line == line)
    }

    @Test func everyProblemIsReportedAtOnce() {
        let text = """
        [control]
        mode = "fast"
        [[measurement_point]]
        id = "feeder_a"
        kind = "current"
        sensitivity_per_kw = "1.44"
        [measurement_point.upper]
        limit_kva = 400
        release_zone_a = 390
        release_trigger_a = 380
        [[site]]
        id = "hub"
        firm_kw = 150
        rated_kw = -250
        setpoint_unit = "amps"
        [[site.schedule]]
        from = "8am"
        to = "09:00"
        limit_kw = 100
        """
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("accepted"); return }
        let m = e.description
        for expected in [
            "line 2: control.mode: = \"fast\": must be one of \"incremental\", \"direct\"",
            "line 6: measurement_point[0].sensitivity_per_kw: is a string, expected a number",
            "line 8: measurement_point[0].upper.limit_kva: a current point takes values in a: use limit_a",
            "measurement_point[0].upper.limit_a: missing (required)",
            "line 14: site[0].rated_kw: = -250.0: must be positive",
            "line 15: site[0].setpoint_unit: = \"amps\": must be one of \"kw\", \"kva\", \"a\"",
            "line 17: site[0].schedule[0].from: = \"8am\": expected a time of day \"HH:MM\"",
        ] {
            #expect(m.contains(expected), "missing: \(expected)\n--- got:\n\(m)")
        }
    }

    @Test func inconsistentThresholdsAreCaughtByTheCoreChecks() throws {
        let text = try exampleConfigText().replacingOccurrences(of: "release_zone_kva = 498", with: "release_zone_kva = 502")
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("accepted"); return }
        #expect(e.description.contains("trafo.upper: need limit > release_zone > release_trigger"))
    }

    @Test func unitsAreConvertedToSI() throws {
        let text = """
        [[measurement_point]]
        id = "feeder_a"
        kind = "current"
        sensitivity_per_kw = 1.44
        regulate_margin_a = 10
        [measurement_point.upper]
        limit_a = 400
        release_zone_a = 385
        release_trigger_a = 370
        [[measurement_point]]
        id = "far_end"
        kind = "voltage"
        sensitivity_per_kw = -0.05
        [measurement_point.lower]
        limit_v = 216.2
        release_zone_v = 218
        release_trigger_v = 220
        [[site]]
        id = "hub"
        firm_kw = 150
        rated_kw = 250
        setpoint_unit = "a"
        dsc_kw = 240
        [[site.schedule]]
        name = "evening"
        from = "17:00"
        to = "19:30"
        limit_kw = 180
        """
        let c = try Configuration.parse(text).get()
        #expect(abs(c.measurementPoints[0].sensitivity - 0.00144) < 1e-12)
        #expect(c.measurementPoints[0].upper?.limit == 400 && c.measurementPoints[0].regulateMargin == 10)
        #expect(abs(c.measurementPoints[1].sensitivity - -0.00005) < 1e-12)
        #expect(c.shapers["hub"]?.unit == .ampsPerPhase(phases: 3, phaseVoltage: 230, powerFactor: 1) && c.shapers["hub"]?.quantum == 1)
        #expect(c.sources["hub"]?.dscW == 240_000)
        #expect(c.sources["hub"]?.schedule == [ScheduleWindow(name: "evening", startSecondsOfDay: 61_200, endSecondsOfDay: 70_200, watts: 180_000)])
    }
}
