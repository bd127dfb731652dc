import ArgumentParser
import ControlCycle
import Headroom
import LMCConfig
import LMCWiring
import RingLog
import TOMLReader

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `lmc simulate`: replays a load profile through the real control core at virtual time.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Replay a load profile through the control core with a plant model and report overload and energy.",
        discussion: """
        The scenario is a CSV with time_s, background_kva and ev_demand_kva
        (lines starting with # are comments), given by name or as a path. The
        background is interpolated and gets uniform noise and optional step
        loads; the site imports min(demand, set point) through a first-order
        lag. The constraint is the first measurement point, which must be
        kind = "apparent_power"; the config must have one site. The replay runs
        lmc run's own control cycle: limits, the fail-safe supervisor (start-up,
        its delay and ramp) and the set-point shaper. Without --config, the
        Charge Project example site is used (hw/examples/lmc.toml).

        Reported: seconds above the limit and above limit + tolerance, the
        largest overshoot, energy delivered against a perfect-knowledge oracle,
        min(demand, limit − background), and against a firm connection,
        min(demand, firm); set-point changes and reversals per hour (a change
        followed within 60 s by a change the other way). --window also gives
        the share of the oracle inside a time-of-day window, e.g. the example
        day's constrained evening: --window 15:00-20:30.

        With --log-dir the run is also written as the daemon would write it —
        samples, half-hours and events rings, timed from --start — so lmc log
        audit and lmc log plot show what the DNO would see.

        Examples:
          lmc simulate --scenario seed-example-day --trace day.csv
          lmc simulate --scenario seed-example-day --log-dir /tmp/day \\
              --start 2026-11-20
          lmc log audit --dir /tmp/day --day 2026-11-20
          lmc simulate --scenario ./my-feeder.csv
          lmc simulate --scenario seed-example-day --window 15:00-20:30

        """
            + "\n" + ScenarioFiles.helpText()
    )

    @Option(help: ArgumentHelp("Config file (TOML); default: the built-in example site.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Scenario: a name (seed-example-day, semiurban-january, …) or a path to a CSV.", valueName: "name|csv"),
            completion: .custom { _, _, prefix in ScenarioFiles.available().map(\.name).filter { $0.hasPrefix(prefix) } })
    var scenario: String

    @Option(help: ArgumentHelp("Write every step to this CSV.", valueName: "file"))
    var trace: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(name: .customLong("log-dir"), help: ArgumentHelp("Also write the run as ring logs into this directory (created; existing rings there are appended to).", valueName: "dir"))
    var logDir: String?

    @Option(help: ArgumentHelp("UTC date or time the scenario starts at, for --log-dir.", valueName: "time"))
    var start: String = "2026-01-01"

    @Option(name: .customLong("lag-s"), help: "Site response time constant in seconds.")
    var lag: Double = 5

    @Option(name: .customLong("noise-pct"), help: "Background noise, ± percent, a new value every second.")
    var noisePercent: Double = 2

    @Option(help: "Seed of the noise, so a replay repeats exactly.")
    var seed: UInt64 = 1

    @Option(name: .customLong("period-s"), help: "Control period in virtual seconds.")
    var period: Double = 1

    @Option(name: .customLong("tolerance-pct"), help: "Tolerance above the limit that counts as a violation.")
    var tolerancePercent: Double = 2

    @Option(name: .customLong("step"), help: ArgumentHelp("A step load on the background: START_S:KVA:DURATION_S (repeatable).", valueName: "t:kva:s"))
    var steps: [String] = []

    @Option(help: ArgumentHelp("Also report the share of the oracle inside this time of day, HH:MM-HH:MM.", valueName: "from-to"))
    var window: String?

    func validate() throws {
        guard lag >= 0 else { throw ValidationError("--lag-s \(lag) must not be negative") }
        guard (0...50).contains(noisePercent) else { throw ValidationError("--noise-pct \(noisePercent) is outside 0–50") }
        guard period > 0 && period <= 60 else { throw ValidationError("--period-s \(period) is outside (0, 60]") }
        guard (0...50).contains(tolerancePercent) else { throw ValidationError("--tolerance-pct \(tolerancePercent) is outside 0–50") }
        guard parseUTC(start) != nil else { throw ValidationError("--start '\(start)' is not a UTC date or time (2026-11-20 or 2026-11-20T06:00:00)") }
        try validateWindow(window)
        for s in steps where parseStep(s) == nil {
            throw ValidationError("--step '\(s)' is not START_S:KVA:DURATION_S (e.g. 43200:40:600)")
        }
    }

    /// "HH:MM-HH:MM" → seconds of the day, start before end.
    func parseStep(_ s: String) -> PlantModel.StepLoad? {
        let p = s.split(separator: ":").compactMap { Double($0) }
        guard p.count == 3, p[2] > 0 else { return nil }
        return .init(start: p[0], va: p[1] * 1000, duration: p[2])
    }

    func run() throws {
        var cycle: ControlCycle
        if let config {
            let text = try readFile(config, what: "config")
            switch Configuration.parse(text) {
            case .failure(let e):
                printError("\(config):\n\(e)")
                throw ExitCode(2)
            case .success(let c):
                cycle = try c.cycle()
            }
        } else {
            cycle = ExampleSite.cycle()
        }
        let cc = cycle.config
        guard let mp = cc.measurementPoints.first, mp.kind == .apparentPower, let upper = mp.upper else {
            throw ValidationError("lmc simulate models the constraint as apparent power: the first [[measurement_point]] must have kind = \"apparent_power\" and an upper limit")
        }
        guard cc.sites.count == 1 else {
            throw ValidationError("lmc simulate drives one site; the config has \(cc.sites.count)")
        }
        let path: String
        switch ScenarioFiles.resolve(scenario) {
        case .found(let p): path = p
        case .notFound(let searched):
            let names = ScenarioFiles.available(searchPath: searched).map(\.name)
            printError("no scenario '\(scenario)' in \(searched.joined(separator: ", "))"
                       + (names.isEmpty ? " (none there; set LMC_SCENARIOS to a folder of CSVs, or give a path)" : "; there are: \(names.joined(separator: ", "))"))
            throw ExitCode(2)
        }
        let csv = try readFile(path, what: "scenario")
        let s: Scenario
        do { s = try Scenario.parse(csv: csv) } catch {
            printError("\(path): \(error)")
            throw ExitCode(2)
        }
        let plant = PlantModel(limitVA: upper.limit, tolerance: tolerancePercent / 100, responseLag: lag,
                               noiseFraction: noisePercent / 100, steps: steps.compactMap(parseStep), seed: seed)
        var out: UnsafeMutablePointer<FILE>?
        if let trace {
            // Non-optional for fputs: Swift 6.2's Glibc module declares its FILE * non-null.
            guard let file = fopen(trace, "w") else {
                printError("cannot write trace \(trace): \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            fputs("t_s,background_kva,constraint_kva,site_kva,demand_kva,setpoint_kw,sent,bound_by\n", file)
            out = file
        }
        let rings = try logDir.map { try SimulationRings(directory: $0, startUTC: parseUTC(start)!, durationS: s.duration, periodS: period,
                                                          mps: cc.measurementPoints, sites: cc.sites, scenario: path) }
        let r = simulate(s, cycle: &cycle, mpID: mp.id, plant: plant, period: period, startWallNs: UInt64(parseUTC(start)!) * 1_000_000_000,
                     window: window.flatMap(parseWindow)) { row in
            rings?.add(row)
            guard let out else { return }
            fputs("\(row.t),\(k(row.backgroundVA)),\(k(row.constraintVA)),\(k(row.siteVA)),\(k(row.demandVA)),\(k(row.setPointW)),\(row.sent),\(row.boundBy)\n", out)
        }
        if let out { fclose(out) }
        try rings?.close()
        if json {
            print(JSON.render(.object([
                ("scenario", .string(path)), ("hours", .number(r.hours)), ("mode", .string(cc.mode.rawValue)),
                ("limit_kva", .number(upper.limit / 1000)), ("tolerance_pct", .number(tolerancePercent)),
                ("seconds_above_limit", .number(r.secondsAboveLimit)), ("seconds_above_tolerance", .number(r.secondsAboveTolerance)),
                ("largest_overshoot_kva", .number(r.largestOvershootVA / 1000)),
                ("delivered_kwh", .number(r.deliveredKWh)), ("oracle_kwh", .number(r.oracleKWh)), ("firm_kwh", .number(r.firmKWh)),
                ("share_of_oracle", .number(r.shareOfOracle)), ("share_of_firm", .number(r.shareOfFirm)),
                ("changes_per_hour", .number(r.changesPerHour)), ("reversals_per_hour", .number(r.reversalsPerHour)),
            ] + (window.map { [("window", .string($0)), ("window_delivered_kwh", .number(r.windowDeliveredKWh)),
                               ("window_oracle_kwh", .number(r.windowOracleKWh)), ("window_share_of_oracle", .number(r.windowShareOfOracle))] } ?? []))))
            return
        }
        let limit = upper.limit / 1000
        print("scenario   \(path): \(f1(r.hours)) h, period \(period) s, lag \(lag) s, noise ±\(noisePercent) %, seed \(seed)")
        print("control    \(cc.mode.rawValue), limit \(f1(limit)) kVA, +\(tolerancePercent) % = \(f1(limit * (1 + tolerancePercent / 100))) kVA")
        print("above limit               \(right(f1(r.secondsAboveLimit), 10)) s")
        print("above limit + tolerance   \(right(f1(r.secondsAboveTolerance), 10)) s")
        print("largest overshoot         \(right(f1(r.largestOvershootVA / 1000), 10)) kVA")
        print("energy delivered          \(right(f1(r.deliveredKWh), 10)) kWh")
        print("  share of oracle         \(right(f1(100 * r.shareOfOracle), 10)) %   (oracle \(f1(r.oracleKWh)) kWh)")
        if let window {
            let label = "  share in \(window)"
            print(label + String(repeating: " ", count: max(1, 26 - label.count)) + "\(right(f1(100 * r.windowShareOfOracle), 10)) %   (\(f1(r.windowDeliveredKWh)) of \(f1(r.windowOracleKWh)) kWh)")
        }
        print("  share of firm           \(right(f1(100 * r.shareOfFirm), 10)) %   (firm \(f1(r.firmKWh)) kWh)")
        print("set-point changes         \(right(f1(r.changesPerHour), 10)) /h")
        print("reversals within 60 s     \(right(f1(r.reversalsPerHour), 10)) /h")
    }
}

private func k(_ w: Double) -> String { f1(w / 1000) }
private func f1(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e15 ? "\(Int64(r)).0" : "\(r)"
}
private func right(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }

/// Reads a whole text file; errors name the file and the reason.
func readFile(_ path: String, what: String) throws -> String {
    guard let text = readText(path) else {
        printError("cannot read \(what) \(path): \(String(cString: strerror(errno)))")
        throw ExitCode(2)
    }
    return text
}

/// The rings `lmc simulate --log-dir` writes: wall time = --start + virtual time, monotonic = virtual time.
final class SimulationRings {
    let store: LogStore
    let startNs: UInt64
    var halfHours: HalfHourAccumulator
    var lastMonoNs: UInt64 = 0
    var minutes = MinuteAccumulator()
    let names: (mps: [String], sites: [String])
    let units: [UInt8]

    init(directory: String, startUTC: Int, durationS: Double, periodS: Double, mps: [MeasurementPointConfig], sites: [SiteConfig], scenario: String) throws {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            printError("cannot create --log-dir \(directory): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        // Big enough for the whole run (at most 256 MB of samples: a coarser --period-s for longer runs).
        let samplesMB = min(256, (durationS / periodS + 100) * Double(LogStore.recordSize) / 1_048_576)
        let halfHoursMB = (durationS / 1800 + 100) * Double(HalfHourRecord.recordSize) / 1_048_576
        let minutesMB = (durationS / 60 + 100) * Double(MinuteRecord.recordSize) / 1_048_576
        do {
            store = try LogStore(directory: directory, boxID: "simulate", samplesMB: samplesMB, eventsMB: 0.1, halfHoursMB: halfHoursMB,
                                 tripsMB: 0.5, minutesMB: minutesMB,
                                 syncIntervalSeconds: 60)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        startNs = UInt64(startUTC) * 1_000_000_000
        halfHours = HalfHourAccumulator(mps: mps, sites: sites)
        names = (mps.map(\.id), sites.map(\.id))
        try? store.noteLayout(.of(mps: mps, sites: sites))
        units = mps.map { switch $0.kind { case .current: 0; case .apparentPower: 1; case .voltage: 2 } }
        try? store.event(EventRecord(kind: .start, text: "lmc simulate \(scenario)"), wallNs: startNs, monoNs: 0)
    }

    /// What the daemon would write for this cycle: its sample, and a half hour when one closed.
    func add(_ row: TraceRow) {
        let mono = UInt64(max(0, row.t) * 1e9)
        lastMonoNs = mono
        try? store.record(row.output.sample, wallNs: startNs + mono, monoNs: mono)
        if let h = halfHours.add(row.output.sample, wallNs: startNs + mono, monoNs: mono) { try? store.record(h, wallNs: startNs + mono, monoNs: mono) }
        if let m = minutes.add(row.output.sample, mpNames: names.mps, mpUnits: units, siteNames: names.sites, wallNs: startNs + mono, monoNs: mono, clockSynchronised: true) {
            try? store.record(m, wallNs: startNs + mono, monoNs: mono)
        }
        for e in row.output.events { try? store.event(EventRecord(kind: e.kind, text: e.text), wallNs: startNs + mono, monoNs: mono) }
    }

    func close() throws {
        if let h = halfHours.finish() { try? store.record(h, wallNs: startNs + lastMonoNs, monoNs: lastMonoNs) }
        if let m = minutes.finish() { try? store.record(m, wallNs: startNs + lastMonoNs, monoNs: lastMonoNs) }
        try? store.event(EventRecord(kind: .stop, text: "simulation ended"), wallNs: startNs + lastMonoNs, monoNs: lastMonoNs)
        do { try store.flush(monoNs: lastMonoNs) } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// A time-of-day window "HH:MM-HH:MM" (start first) as seconds of the day; nil when it is not one.
/// `lmc simulate --window` and `lmc demo --window`.
func parseWindow(_ s: String) -> Range<Double>? {
    let ends = s.split(separator: "-", omittingEmptySubsequences: false).map { part -> Double? in
        let hm = part.split(separator: ":", omittingEmptySubsequences: false)
        guard hm.count == 2, hm.allSatisfy({ $0.count == 2 }), let h = Int(hm[0]), let m = Int(hm[1]),
              (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else { return nil }
        return Double(h * 3600 + m * 60)
    }
    guard ends.count == 2, let from = ends[0], let to = ends[1], from < to else { return nil }
    return from..<to
}

/// `--window`'s check, for `lmc simulate` and `lmc demo`: nil or a window `parseWindow` reads.
func validateWindow(_ window: String?) throws {
    if let window, parseWindow(window) == nil {
        throw ValidationError("--window '\(window)' is not a time-of-day window HH:MM-HH:MM with the start first (e.g. 15:00-20:30)")
    }
}
