#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Headroom

/// Scenario replay at virtual time (`lmc simulate`, the replay tests): the daemon's own control cycle —
/// limits, supervisor, shaper — against a plant model. Pure: the scenario text and a seed come in,
/// numbers come out.

/// A load profile (scenarios/README.md): time_s, background_kva, ev_demand_kva.
public struct Scenario: Sendable {
    public var times: [Double]
    public var backgroundVA: [Double]
    public var demandVA: [Double]

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses the CSV; `#` lines are comments; the header names the columns.
    public static func parse(csv: String) throws(ParseError) -> Scenario {
        var header: [Substring]?
        var s = Scenario(times: [], backgroundVA: [], demandVA: [])
        for (n, raw) in csv.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let cols = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters() }
            guard let h = header else {
                header = cols.map { Substring($0) }
                for need in ["time_s", "background_kva", "ev_demand_kva"] where !cols.contains(need) {
                    throw ParseError(line: n + 1, message: "header lacks column '\(need)' (expected time_s,background_kva,ev_demand_kva)")
                }
                continue
            }
            guard cols.count == h.count else { throw ParseError(line: n + 1, message: "\(cols.count) columns, header has \(h.count)") }
            func value(_ name: String) throws(ParseError) -> Double {
                let text = cols[h.firstIndex(of: Substring(name))!]
                guard let v = Double(text), v.isFinite else { throw ParseError(line: n + 1, message: "\(name) '\(text)' is not a number") }
                return v
            }
            let t = try value("time_s")
            if let last = s.times.last, t <= last { throw ParseError(line: n + 1, message: "time_s \(t) does not increase (previous \(last))") }
            s.times.append(t)
            s.backgroundVA.append(try value("background_kva") * 1000)
            s.demandVA.append(try value("ev_demand_kva") * 1000)
        }
        guard s.times.count >= 2 else { throw ParseError(line: 0, message: "needs at least two rows") }
        return s
    }

    public var duration: Double { times.last! - times.first! }

    /// Linear interpolation between rows.
    public func at(_ t: Double, cursor: inout Int) -> (background: Double, demand: Double) {
        while cursor + 1 < times.count - 1 && times[cursor + 1] <= t { cursor += 1 }
        let t0 = times[cursor], t1 = times[cursor + 1]
        let f = min(1, max(0, (t - t0) / (t1 - t0)))
        return (backgroundVA[cursor] + f * (backgroundVA[cursor + 1] - backgroundVA[cursor]),
                demandVA[cursor] + f * (demandVA[cursor + 1] - demandVA[cursor]))
    }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\r" || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\r" || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// The physical side: what the feeder and the site do.
public struct PlantModel: Sendable, Equatable {
    /// Constraint rating (VA): overload is measured against it.
    public var limitVA: Double
    /// Tolerance above the rating that must never be exceeded (fraction, 0.02 = 2 %).
    public var tolerance: Double
    /// Site import follows min(demand, set point) through a first-order lag with this time constant.
    public var responseLag: Double
    /// Background noise: uniform ± this fraction of the background, a new value every `noisePeriod` s.
    public var noiseFraction: Double
    public var noisePeriod: Double
    /// Step loads on the background: (start s, VA, duration s).
    public var steps: [StepLoad]
    public var seed: UInt64

    public struct StepLoad: Sendable, Equatable {
        public var start: Double, va: Double, duration: Double
        public init(start: Double, va: Double, duration: Double) {
            self.start = start
            self.va = va
            self.duration = duration
        }
    }

    public init(limitVA: Double = 500_000, tolerance: Double = 0.02, responseLag: Double = 5, noiseFraction: Double = 0.02,
                noisePeriod: Double = 1, steps: [StepLoad] = [], seed: UInt64 = 1) {
        self.limitVA = limitVA
        self.tolerance = tolerance
        self.responseLag = responseLag
        self.noiseFraction = noiseFraction
        self.noisePeriod = noisePeriod
        self.steps = steps
        self.seed = seed
    }
}

public struct SimulationResult: Sendable, Equatable {
    public var hours: Double
    public var secondsAboveLimit: Double
    public var secondsAboveTolerance: Double
    public var largestOvershootVA: Double
    public var deliveredKWh: Double
    public var oracleKWh: Double
    public var firmKWh: Double
    public var changes: Int
    public var reversals: Int
    /// Energy delivered and the oracle's inside the window asked for (seconds of the scenario's day), if any.
    public var windowDeliveredKWh = 0.0
    public var windowOracleKWh = 0.0

    public var shareOfOracle: Double { oracleKWh > 0 ? deliveredKWh / oracleKWh : 1 }
    public var windowShareOfOracle: Double { windowOracleKWh > 0 ? windowDeliveredKWh / windowOracleKWh : 1 }
    public var shareOfFirm: Double { firmKWh > 0 ? deliveredKWh / firmKWh : 1 }
    public var changesPerHour: Double { Double(changes) / hours }
    public var reversalsPerHour: Double { Double(reversals) / hours }
}

/// One row of the trace.
public struct TraceRow: Sendable {
    public var t: Double, backgroundVA: Double, constraintVA: Double, siteVA: Double, demandVA: Double
    /// The set point as sent (W), the value in the charger's unit, and what bound it.
    public var setPointW: Double, sent: Double, boundBy: String
    public var output: CycleOutput
}

/// SplitMix64: a small, seeded, portable generator, so a replay is the same on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Replays `scenario` through `cycle` (one site, one apparent-power MP `mpID`) every `period` seconds of
/// virtual time: the constraint meter reads background + site, the site's PoC meter (if the config has
/// one) reads the site, and the site imports min(demand, what it was sent) through a lag. The cycle's
/// supervisor runs as on a box: start-up, its delay and ramp count. A reversal is a set-point change
/// followed within 60 s by a change the other way. `window` (seconds of the day, e.g. the constrained
/// evening 15:00–20:30) also accounts energy and the oracle's inside it.
public func simulate(_ scenario: Scenario, cycle: inout ControlCycle, mpID: String, plant: PlantModel,
                     period: Double = 1, startWallNs: UInt64 = 0, window: Range<Double>? = nil,
                     trace: ((TraceRow) -> Void)? = nil) -> SimulationResult {
    precondition(cycle.config.sites.count == 1, "the replay drives one site")
    let site = cycle.config.sites[0]
    let mpMeter = cycle.config.mpMeter[mpID] ?? mpID
    let pocMeter = cycle.config.sitePocMeter[site.id]
    var rng = SeededGenerator(seed: plant.seed)
    var cursor = 0
    var siteVA = min(site.floorW, scenario.demandVA[0])
    var noise = 0.0
    var nextNoise = scenario.times[0]
    var r = SimulationResult(hours: scenario.duration / 3600, secondsAboveLimit: 0, secondsAboveTolerance: 0,
                             largestOvershootVA: 0, deliveredKWh: 0, oracleKWh: 0, firmKWh: 0, changes: 0, reversals: 0)
    var lastSent: Double?
    var lastChange: (t: Double, up: Bool)?
    var t = scenario.times[0]
    let t0 = t
    let end = scenario.times.last!
    let lagFactor = plant.responseLag > 0 ? 1 - exp(-period / plant.responseLag) : 1
    while t < end {
        let (bgClean, demand) = scenario.at(t, cursor: &cursor)
        if t >= nextNoise {
            noise = plant.noiseFraction > 0 ? Double.random(in: -plant.noiseFraction...plant.noiseFraction, using: &rng) : 0
            nextNoise += plant.noisePeriod
        }
        var bg = bgClean * (1 + noise)
        for s in plant.steps where t >= s.start && t < s.start + s.duration { bg += s.va }
        let load = bg + siteVA

        let mono = UInt64((t - t0 + 1) * 1e9)
        var meters = [mpMeter: MeterSnapshot.good(va: load, at: mono)]
        if let pocMeter { meters[pocMeter] = .good(va: siteVA, w: siteVA, at: mono) }
        let out = cycle.step(CycleSnapshot(monoNs: mono, wallNs: startWallNs &+ UInt64((t - t0) * 1e9), clockSynchronised: true,
                                           localSecondsOfDay: t.truncatingRemainder(dividingBy: 86_400), meters: meters))
        let sd = out.sites[0]
        if let prev = lastSent, sd.value != prev {
            let up = sd.value > prev
            if let lc = lastChange, lc.up != up, t - lc.t <= 60 { r.reversals += 1 }
            lastChange = (t, up)
            r.changes += 1
        }
        lastSent = sd.value
        trace?(TraceRow(t: t, backgroundVA: bg, constraintVA: load, siteVA: siteVA, demandVA: demand,
                        setPointW: sd.watts, sent: sd.value, boundBy: out.status.sites[0].boundBy, output: out))

        // Account this period, then let the plant move.
        if load > plant.limitVA { r.secondsAboveLimit += period }
        if load > plant.limitVA * (1 + plant.tolerance) { r.secondsAboveTolerance += period }
        r.largestOvershootVA = max(r.largestOvershootVA, load - plant.limitVA)
        let oracleKWh = min(demand, max(0, plant.limitVA - bgClean)) * period / 3_600_000
        r.deliveredKWh += siteVA * period / 3_600_000
        r.oracleKWh += oracleKWh
        if let window, window.contains(t.truncatingRemainder(dividingBy: 86_400)) {
            r.windowDeliveredKWh += siteVA * period / 3_600_000
            r.windowOracleKWh += oracleKWh
        }
        r.firmKWh += min(demand, site.floorW) * period / 3_600_000

        siteVA += (min(demand, sd.watts) - siteVA) * lagFactor
        t += period
    }
    return r
}
