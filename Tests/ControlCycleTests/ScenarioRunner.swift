import Foundation
import ControlCycle
import FailSafe
import Headroom
import LMCConfig
import LMCWiring
import TOMLReader

/// Runs a scenario file (Tests/ControlCycleTests/Scenarios/README.md) through whole control cycles at
/// virtual time and checks its expectations. The world is built from `[[set]]` rows (inputs that hold
/// until changed) and an optional `[plant]` (a site that follows what it is sent, through a lag); the
/// checks are `[[expect]]` rows. A failure names the first cycle where an output differs.
struct ScenarioRun {
    struct Failure: CustomStringConvertible {
        var t: Double, cycle: Int, message: String
        var description: String { "t = \(fmt(t)) s (cycle \(cycle)): \(message)" }
    }

    var name: String
    var failures: [Failure] = []
    /// Every cycle's output, for a test that wants to look closer.
    var outputs: [(t: Double, out: CycleOutput)] = []

    static let folder: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scenarios")

    static func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { $0.hasSuffix(".toml") && !$0.hasPrefix("box") }.sorted()
    }

    // MARK: The file

    struct Row { var table: TOMLTable; var line: Int }

    static func load(_ name: String) throws -> ScenarioRun {
        try run(text: String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8), name: name)
    }

    /// A scenario given as text (configs are still looked up in Scenarios/).
    static func run(text: String, name: String) throws -> ScenarioRun {
        let top = try TOML.parse(text)
        var run = ScenarioRun(name: name)
        try run.execute(top)
        return run
    }

    private mutating func execute(_ top: TOMLTable) throws {
        guard case .string(let configName)? = top["config"] else { throw ScenarioError("\(name): needs config = \"box.toml\"") }
        let configText = try String(contentsOf: Self.folder.appendingPathComponent(configName), encoding: .utf8)
        let config: Configuration
        switch Configuration.parse(configText) {
        case .failure(let e): throw ScenarioError("\(name): \(configName) does not load:\n\(e)")
        case .success(let c): config = c
        }
        var cc = config.cycleConfig
        let period = top.number("period_s") ?? cc.periodSeconds
        cc.periodSeconds = period
        let duration = top.number("duration_s") ?? 60
        var cycle = try ControlCycle(cc)

        let sets = top.rows("set").sorted { ($0.table.number("t") ?? 0) < ($1.table.number("t") ?? 0) }
        let expects = top.rows("expect")
        var world = World(plant: top.table("plant").map(Plant.init))
        var nextSet = 0
        var k = 0
        let wallStart: UInt64 = 1_795_000_000 * 1_000_000_000   // 2026-11-18, a fixed wall time
        while true {
            let t = Double(k) * period
            if t > duration + 1e-9 { break }
            let monoNs = UInt64((t + 1) * 1e9)
            while nextSet < sets.count, (sets[nextSet].table.number("t") ?? 0) <= t + 1e-9 {
                if let file = sets[nextSet].table.string("reload") {
                    // SIGHUP with this config: what lmc run does, through the same call.
                    let text = try String(contentsOf: Self.folder.appendingPathComponent(file), encoding: .utf8)
                    switch Configuration.parse(text) {
                    case .failure(let e): throw ScenarioError("\(name): reload \(file) does not load:\n\(e)")
                    case .success(let c):
                        cc = c.cycleConfig
                        cc.periodSeconds = period
                        cycle = try cycle.reloaded(cc)
                    }
                }
                try world.apply(sets[nextSet], at: monoNs, scenario: name)
                nextSet += 1
            }
            let snap = world.snapshot(monoNs: monoNs, wallNs: wallStart &+ UInt64(t * 1e9) &+ UInt64(bitPattern: world.clockStepNs), config: cc)
            let out = cycle.step(snap)
            world.after(out, period: period, config: cc)
            outputs.append((t, out))
            if let trace = ProcessInfo.processInfo.environment["LMC_SCENARIO_TRACE"], name.hasPrefix(trace),
               (t * 10).rounded().truncatingRemainder(dividingBy: 10) == 0 {
                // LMC_SCENARIO_TRACE=<file prefix>: one line a second of the named scenario, to read a failure.
                let sent = out.sites.map { "\($0.site) \(fmt($0.value)) \($0.unit.symbol)" }.joined(separator: ", ")
                let va = world.plant.map { " constraint \(fmt(($0.backgroundVA + $0.siteW) / 1000)) kVA, site \(fmt($0.siteW / 1000)) kW" } ?? ""
                print("\(fmt(t)) s \(out.mode.rawValue) sent [\(sent)]\(va); \(out.status.reason); \(out.status.mps.map { "\($0.id) \($0.state): \($0.reason)" }.joined(separator: "; "))")
            }
            for e in expects where e.applies(at: t, period: period) {
                if let f = e.check(out, t: t, history: outputs, period: period) { failures.append(Failure(t: t, cycle: k + 1, message: "line \(e.line): \(f)")) }
            }
            k += 1
        }
        for e in expects where e.isWindowEvent {
            // "within": an event or breaker command that must have happened somewhere in the window.
            if let f = e.checkWindow(outputs) { failures.append(Failure(t: e.table.number("to") ?? duration, cycle: 0, message: "line \(e.line): \(f)")) }
        }
        failures.sort { $0.t < $1.t }
    }
}

struct ScenarioError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: The world the cycle sees

/// A site that imports min(demand, what it is sent) through a first-order lag, behind a constraint
/// meter that reads background + the site.
struct Plant {
    var site: String
    var meter: String
    var pocMeter: String?
    var backgroundVA: Double
    var demandW: Double
    var lag: Double
    var siteW: Double
    /// The site's power factor as its PoC meter sees it: the meter reads W = VA × this (the charger
    /// limits current, so what it draws in its set point's terms is the VA).
    var powerFactor: Double

    init(_ t: TOMLTable) {
        site = t.string("site") ?? "hub"
        meter = t.string("meter") ?? "trafo_meter"
        pocMeter = t.string("poc_meter")
        backgroundVA = (t.number("background_kva") ?? 300) * 1000
        demandW = (t.number("demand_kw") ?? 250) * 1000
        lag = t.number("lag_s") ?? 5
        siteW = (t.number("site_kw") ?? 150) * 1000
        powerFactor = t.number("power_factor") ?? 1
    }
}

struct World {
    enum Fault: String { case none, timeout, silent, frozen, nan, implausible, busy }
    struct Meter {
        var va: Double?; var w: Double?; var currents: [Double] = []; var voltages: [Double] = []; var fault = Fault.none
        var last: MeterSnapshot?; var lastGoodNs: UInt64?
        /// One bad poll (a busy exception) every this many seconds, the rest good.
        var badEvery: Double?; var lastBadNs: UInt64 = 0
        /// Polled this often (s): between polls the cycle sees the last reading again, with its time.
        var pollEvery: Double?; var lastPollNs: UInt64?
    }
    var meters: [String: Meter] = [:]
    var aux: [String: BreakerRead] = [:]
    /// Breakers whose contact follows the coils (a healthy breaker), unless stuck.
    var auxFollows: [String: Bool] = [:]
    var relayFailing: [String: UInt64] = [:]
    /// The import a CPMS reports over OSCP (W), per site.
    var cpmsImport: [String: Double] = [:]
    /// A standing compliance error from the CPMS, per site.
    var compliance: [String: String] = [:]
    /// Why the upstream Modbus server cannot serve.
    var upstreamFailure: String?
    var dnp3Failure: String?
    var commands: [QueuedCommand] = []
    var remote: [String: RemoteSetPoint] = [:]
    var heartbeatNs: UInt64?
    var heartbeatEvery: Double?
    var clockStepNs: Int64 = 0
    var synchronised = true
    var plant: Plant?

    init(plant: Plant?) { self.plant = plant }

    mutating func apply(_ row: ScenarioRun.Row, at monoNs: UInt64, scenario: String) throws {
        let r = row.table
        func bad(_ m: String) -> ScenarioError { ScenarioError("\(scenario) line \(row.line): \(m)") }
        if let id = r.string("meter") {
            var m = meters[id] ?? Meter()
            if let v = r.number("va") { m.va = v }
            if let v = r.number("kva") { m.va = v * 1000 }
            if let v = r.number("w") { m.w = v }
            if let v = r.number("kw") { m.w = v * 1000 }
            if let v = r.numbers("currents") { m.currents = v }
            if let v = r.numbers("voltages") { m.voltages = v }
            if let e = r.number("bad_every_s") { m.badEvery = e > 0 ? e : nil; m.lastBadNs = monoNs }
            if let e = r.number("poll_s") { m.pollEvery = e > 0 ? e : nil }
            if let f = r.string("fault") { guard let x = Fault(rawValue: f) else { throw bad("fault \"\(f)\": one of none, timeout, silent, frozen, nan, implausible, busy") }; m.fault = x }
            meters[id] = m
        }
        if let site = r.string("site") {
            if let a = r.string("aux") {
                switch a {
                case "closed": aux[site] = .closed; auxFollows[site] = true
                case "open": aux[site] = .open; auxFollows[site] = false
                case "stuck_closed": aux[site] = .closed; auxFollows[site] = false
                case "not_wired": aux[site] = .notWired
                case "unavailable": aux[site] = .unavailable("GPIO read failed (simulated)")
                default: throw bad("aux \"\(a)\": one of closed, open, stuck_closed, not_wired, unavailable")
                }
            }
            if let f = r.bool("relay_failing") { if f { relayFailing[site] = relayFailing[site] ?? monoNs } else { relayFailing[site] = nil } }
            if let kw = r.number("cpms_import_kw") { cpmsImport[site] = kw * 1000 }
            if let c = r.string("compliance_error") { compliance[site] = c.isEmpty ? nil : c }
            if let kw = r.number("remote_kw") {
                remote[site] = RemoteSetPoint(watts: kw * 1000, validitySeconds: r.number("validity_s") ?? 60, receivedAtNs: monoNs)
            }
        }
        if let c = r.string("command") {
            switch ControlRequest.parse(c) {
            case .success(let q): commands.append(QueuedCommand(request: q, line: c, user: r.string("user") ?? "engineer"))
            case .failure(let e): throw bad("command \"\(c)\": \(e)")
            }
        }
        if let s = r.number("clock_step_s") { clockStepNs += Int64(s * 1e9) }
        if let u = r.string("upstream_failure") { upstreamFailure = u.isEmpty ? nil : u }
        if let u = r.string("dnp3_failure") { dnp3Failure = u.isEmpty ? nil : u }
        if let s = r.bool("synchronised") { synchronised = s }
        if let h = r.number("heartbeat_every_s") { heartbeatEvery = h > 0 ? h : nil; if h > 0 { heartbeatNs = monoNs } }
        if let bg = r.number("background_kva") { plant?.backgroundVA = bg * 1000 }
        if let d = r.number("demand_kw") { plant?.demandW = d * 1000 }
    }

    mutating func snapshot(monoNs: UInt64, wallNs: UInt64, config: CycleConfig) -> CycleSnapshot {
        if let p = plant {
            meters[p.meter, default: Meter()].va = p.backgroundVA + p.siteW
            if let poc = p.pocMeter { meters[poc, default: Meter()].w = p.siteW * p.powerFactor; meters[poc, default: Meter()].va = p.siteW }
        }
        if let every = heartbeatEvery, let h = heartbeatNs, Double(monoNs - h) / 1e9 >= every { heartbeatNs = monoNs }
        var snaps: [String: MeterSnapshot] = [:]
        for (id, var m) in meters {
            let s: MeterSnapshot
            if let every = m.pollEvery, let last = m.last, let at = m.lastPollNs, Double(monoNs - at) / 1e9 < every - 1e-6 {
                snaps[id] = last   // no poll this cycle: the bus thread's last reading, unchanged
                continue
            }
            m.lastPollNs = monoNs
            var fault = m.fault
            if fault == .none, let every = m.badEvery, Double(monoNs - m.lastBadNs) / 1e9 >= every - 1e-6 {
                fault = .busy
                m.lastBadNs = monoNs
            }
            switch fault {
            case .none:
                m.lastGoodNs = monoNs
                s = MeterSnapshot(apparentPowerVA: m.va, powerW: m.w, currents: m.currents, voltages: m.voltages, usable: true, readingNs: monoNs, lastGoodNs: monoNs)
            case .silent:
                // The bus thread is stuck: the last reading stays, with its old time.
                s = m.last ?? MeterSnapshot(usable: false, problem: "no reply yet", readingNs: 0, lastGoodNs: nil)
            case .timeout, .frozen, .nan, .implausible, .busy:
                let why = switch fault {
                case .timeout: "timeout"; case .frozen: "frozen for 10 polls"; case .nan: "apparent_power is NaN or infinite"
                case .busy: "Modbus exception 0x6"; default: "implausible step"
                }
                s = MeterSnapshot(apparentPowerVA: m.va, powerW: m.w, usable: false, problem: why, readingNs: monoNs, lastGoodNs: m.lastGoodNs)
            }
            m.last = s
            meters[id] = m
            snaps[id] = s
        }
        var relays: [String: RelaySnapshot] = [:]
        for (site, since) in relayFailing { relays[site] = RelaySnapshot(failingSinceNs: since, lastError: "charger does not answer (simulated)") }
        let cmds = commands
        commands = []
        var oscp: [String: OSCPSnapshot] = [:]
        for (site, w) in cpmsImport { oscp[site] = OSCPSnapshot(group: "\(site)-group", phase: "ready", reportedImportW: w, reportedAtNs: monoNs) }
        for (site, c) in compliance { oscp[site, default: OSCPSnapshot(group: "\(site)-group", phase: "ready")].complianceError = c }
        let local = (Double(wallNs) / 1e9).truncatingRemainder(dividingBy: 86_400)
        var snap = CycleSnapshot(monoNs: monoNs, wallNs: wallNs, clockSynchronised: synchronised, localSecondsOfDay: local, meters: snaps, relays: relays, oscp: oscp,
                                 breakers: config.breakerSites.reduce(into: [:]) { $0[$1] = aux[$1] ?? .notWired }, remote: remote,
                                 upstreamHeartbeatNs: heartbeatNs, upstreamFailure: upstreamFailure, commands: cmds)
        snap.dnp3Failure = dnp3Failure
        return snap
    }

    /// The plant and healthy breakers answer what the cycle did.
    mutating func after(_ out: CycleOutput, period: Double, config: CycleConfig) {
        for (site, command) in out.breaker where auxFollows[site] == true {
            aux[site] = command == .trip ? .open : .closed
        }
        if var p = plant, let sent = out.site(p.site) {
            let open = aux[p.site] == .open
            let target = open ? 0 : min(p.demandW, sent.watts)
            p.siteW += (target - p.siteW) * (p.lag > 0 ? 1 - exp(-period / p.lag) : 1)
            plant = p
        }
    }
}

// MARK: Expectations

extension ScenarioRun.Row {
    /// `t = X`: the cycle at X; `from`/`to`: every cycle in the window; `within` rows (events, breaker
    /// commands) are checked over their window once the run is over.
    func applies(at t: Double, period: Double) -> Bool {
        if isWindowEvent { return false }
        if let x = table.number("t") { return t >= x - 1e-9 && t < x + period - 1e-9 }
        let from = table.number("from") ?? 0, to = table.number("to") ?? .infinity
        return t >= from - 1e-9 && t <= to + 1e-9
    }

    var isWindowEvent: Bool { table.string("event") != nil || table.string("breaker") != nil || table.string("no_breaker") != nil || table.string("no_event") != nil }

    func check(_ out: CycleOutput, t: Double, history: [(t: Double, out: CycleOutput)], period: Double) -> String? {
        let r = table
        if let m = r.string("mode"), out.mode.rawValue != m { return "expected mode \(m), got \(out.mode.rawValue) (\(out.status.reason))" }
        if let m = r.string("not_mode"), out.mode.rawValue == m { return "mode is \(m) (\(out.status.reason))" }
        if let site = r.string("site") ?? (r.number("sent") != nil || r.number("sent_max") != nil || r.number("sent_min") != nil ? "hub" : nil),
           r.number("sent") != nil || r.number("sent_max") != nil || r.number("sent_min") != nil {
            guard let s = out.site(site) else { return "no site \(site) in the output" }
            let unit = s.unit.symbol
            if let v = r.number("sent"), abs(s.value - v) > 1e-6 { return "expected \(fmt(v)) \(unit) at \(site)'s charger, got \(fmt(s.value)) \(unit) (\(out.status.sites.first { $0.id == site }?.reason ?? ""))" }
            if let v = r.number("sent_max"), s.value > v + 1e-6 { return "expected at most \(fmt(v)) \(unit) at \(site)'s charger, got \(fmt(s.value)) \(unit) (\(out.status.sites.first { $0.id == site }?.reason ?? ""))" }
            if let v = r.number("sent_min"), s.value < v - 1e-6 { return "expected at least \(fmt(v)) \(unit) at \(site)'s charger, got \(fmt(s.value)) \(unit) (\(out.status.sites.first { $0.id == site }?.reason ?? ""))" }
        }
        if let a = r.string("alarm"), !out.alarms.contains(where: { $0.description.hasPrefix(a) }) {
            return "expected alarm \"\(a)…\", got \(out.alarms.isEmpty ? "none" : out.alarms.map(\.description).joined(separator: "; "))"
        }
        if let a = r.string("no_alarm"), let x = out.alarms.first(where: { $0.description.hasPrefix(a) }) { return "unexpected alarm: \(x.description)" }
        if let reason = r.string("reason"), !out.status.reason.contains(reason) { return "expected the reason to say \"\(reason)\", it says \"\(out.status.reason)\"" }
        // The clock's state as the samples ring records it (and the half hour folds it).
        if let c = r.bool("sample_clock_synchronised"), out.sample.clockSynchronised != c {
            return "expected the sample to record the clock as \(c ? "" : "not ")synchronised, it records \(out.sample.clockSynchronised.map { "\($0)" } ?? "unknown")"
        }
        // The constraint as measured this cycle (the first MP's raw value, as the samples ring keeps it).
        if let v = r.number("constraint_max_kva"), let first = out.sample.mps.first.map({ Double($0.value) }), first.isFinite, first / 1000 > v + 1e-6 {
            return "constraint at \(fmt(first / 1000)) kVA, above \(fmt(v)) kVA (\(out.status.mps.first?.reason ?? ""))"
        }
        return nil
    }

    func checkWindow(_ outputs: [(t: Double, out: CycleOutput)]) -> String? {
        let r = table
        let from = r.number("from") ?? r.number("t") ?? 0, to = r.number("to") ?? r.number("t") ?? .infinity
        let window = outputs.filter { $0.t >= from - 1e-9 && $0.t <= to + 1e-9 }
        if let e = r.string("event") {
            if !window.contains(where: { $0.out.events.contains { "\($0.kind.name): \($0.text)".contains(e) } }) {
                return "expected an event containing \"\(e)\" between \(fmt(from)) and \(fmt(to)) s; events: \(window.flatMap { w in w.out.events.map { "[\(fmt(w.t))] \($0.kind.name): \($0.text)" } }.prefix(6).joined(separator: " | "))"
            }
        }
        if let e = r.string("no_event"), let hit = window.first(where: { $0.out.events.contains { "\($0.kind.name): \($0.text)".contains(e) } }) {
            return "unexpected event containing \"\(e)\" at \(fmt(hit.t)) s: \(hit.out.events.map { "\($0.kind.name): \($0.text)" }.joined(separator: " | "))"
        }
        if let b = r.string("breaker") {
            let parts = b.split(separator: ":").map(String.init)
            guard parts.count == 2 else { return "breaker = \"SITE:trip\" or \"SITE:close\"" }
            if !window.contains(where: { $0.out.breaker[parts[0]]?.rawValue == parts[1] }) {
                return "expected breaker command \(b) between \(fmt(from)) and \(fmt(to)) s; none was given"
            }
        }
        if let site = r.string("no_breaker"), let hit = window.first(where: { $0.out.breaker[site] != nil }) {
            return "unexpected breaker command \(site):\(hit.out.breaker[site]!.rawValue) at \(fmt(hit.t)) s (\(hit.out.status.reason))"
        }
        return nil
    }
}

extension TOMLTable {
    func number(_ k: String) -> Double? {
        switch self[k] { case .integer(let i)?: Double(i); case .float(let d)?: d; default: nil }
    }
    func string(_ k: String) -> String? { if case .string(let s)? = self[k] { s } else { nil } }
    func bool(_ k: String) -> Bool? { if case .bool(let b)? = self[k] { b } else { nil } }
    func numbers(_ k: String) -> [Double]? {
        guard case .array(let items)? = self[k] else { return nil }
        return items.compactMap { v in switch v { case .integer(let i): Double(i); case .float(let d): d; default: nil } }
    }
    func table(_ k: String) -> TOMLTable? { if case .table(let t)? = self[k] { t } else { nil } }
    func rows(_ k: String) -> [ScenarioRun.Row] {
        guard case .array(let items)? = self[k] else { return [] }
        return items.compactMap { if case .table(let t) = $0 { ScenarioRun.Row(table: t, line: t.entries.first?.line ?? 0) } else { nil } }
    }
}

func fmt(_ v: Double) -> String {
    let r = (v * 100).rounded() / 100
    return r == r.rounded() && abs(r) < 1e12 ? String(Int64(r)) : String(r)
}
