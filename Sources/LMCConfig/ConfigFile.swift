import TOMLReader

/// Where a value came from in lmc.toml, so that a later check (a profile that will not load, an endpoint
/// the Modbus layer refuses, a limit the control core rejects) names its line and key like the reader does.
public struct Origin: Sendable, Equatable {
    public var line: Int?
    public var path: String
    public init(line: Int?, path: String) { self.line = line; self.path = path }
}

/// lmc.toml as plain data: every key read, checked against its declaration (`ConfigKeys`), converted to SI
/// units, with nothing of the parts that will use it. `LMCWiring` turns it into the control core's and the
/// drivers' own types (loading the meter and charger profiles, asking each part to validate).
public struct ConfigFile: Sendable {
    public enum Mode: String, Sendable, CaseIterable { case incremental, direct }

    public struct Control: Sendable {
        public var mode: Mode
        public var periodMilliseconds: Int
        public var tccTimezone: String
        public var requireSynchronisedClock: Bool
    }

    public struct Box: Sendable, Equatable {
        public var id: String
        public var socket: String
        public var hardwareWatchdog: String?
    }

    /// A Modbus device: TCP "HOST:PORT" as written (the Modbus layer parses it), or an RS-485 line.
    public enum Endpoint: Sendable, Equatable {
        case tcp(String, Origin)
        case rtu(device: String, baud: Int, parity: String)
    }

    public struct Bus: Sendable, Equatable {
        public var id: String
        public var endpoint: Endpoint
        public var timeoutMilliseconds: Int
    }

    public struct Meter: Sendable, Equatable {
        public var id: String
        public var bus: String
        public var unit: UInt8
        public var profile: String
        public var profileOrigin: Origin
        public var pollMilliseconds: Int
        public var ctRatingA: Double?
        public var nominalVoltage: Double
        public var frozenAfterSeconds: Double
        /// The deprecated `frozen_polls` that `frozenAfterSeconds` was derived from, for a warning.
        public var frozenPollsGiven: Int?
    }

    /// An S0 pulse output on a GPIO input (IEC 62053-31): the average active power over a window.
    public struct PulseMeter: Sendable, Equatable {
        public var id: String
        public var chip: String
        public var line: Int
        public var activeLow: Bool
        public var impulsesPerKWh: Double
        public var minimumLoadW: Double?
        public var windowSeconds: Double
    }

    public enum Kind: String, Sendable, CaseIterable {
        case current
        case apparentPower = "apparent_power"
        case voltage

        /// The suffix of this kind's keys in lmc.toml and its scale to SI.
        public var unit: (suffix: String, scale: Double) {
            switch self {
            case .current: ("a", 1)
            case .apparentPower: ("kva", 1000)
            case .voltage: ("v", 1)
            }
        }
    }

    /// A limit set, in SI units (A, VA, V).
    public struct Thresholds: Sendable, Equatable {
        public var trip: Double?
        public var tripDelay: Double
        public var limit: Double
        public var releaseZone: Double
        public var releaseTrigger: Double
    }

    public struct MeasurementPoint: Sendable, Equatable {
        public var id: String
        public var kind: Kind
        /// Change of the value (SI) per W of site import.
        public var sensitivity: Double
        public var upper: Thresholds?
        public var lower: Thresholds?
        public var regulateMargin: Double
        public var rideThrough: Double
        public var regulateInterval: Double
        public var releaseInterval: Double
        public var rampW: Double
        public var filterTimeConstant: Double
        public var lowestBelievable: Double?
        public var meter: String?
        public var redundantMeter: String?
    }

    public enum SetPointUnit: Sendable, Equatable {
        case kW
        case kVA(powerFactor: Double)
        case ampsPerPhase(phases: Int, phaseVoltage: Double, powerFactor: Double)
    }

    public struct ScheduleWindow: Sendable, Equatable {
        public var name: String
        public var startSecondsOfDay: Double
        public var endSecondsOfDay: Double
        public var watts: Double
    }

    public struct Breaker: Sendable, Equatable {
        public var chip: String
        public var tripLine: Int
        public var tripActiveLow: Bool
        public var closeLine: Int?
        public var closeActiveLow: Bool
        public var auxLine: Int?
        public var auxActiveLow: Bool
        public var pulseMilliseconds: Int
    }

    public struct Charger: Sendable, Equatable {
        public var profile: String
        public var profileOrigin: Origin
        /// nil when the endpoint was refused (the reason is among the issues).
        public var endpoint: Endpoint?
        public var unit: UInt8?
        public var maxCurrentA: Double?
        public var timeoutMilliseconds: Int
    }

    public struct Site: Sendable, Equatable {
        public var id: String
        /// 1 for the first [[site]]: the order of connection (LIFO).
        public var order: Int
        public var firmW: Double
        public var ratedW: Double
        public var rampUpWPerSecond: Double
        public var setPointUnit: SetPointUnit
        public var quantum: Double
        public var hysteresis: Double
        public var dscW: Double?
        /// 48 half-hour limits from 00:00, W.
        public var tccW: [Double]?
        public var tccOrigin: Origin
        public var schedule: [ScheduleWindow]
        public var pocMeter: String?
        public var oscpGroup: String?
        public var breaker: Breaker?
        public var charger: Charger?
    }

    /// `[failsafe]`, every field from the declarations (no default of the supervisor's own leaks in).
    public struct FailSafe: Sendable, Equatable {
        public var blindTime: Double
        public var goodSamples: Int
        public var startupDelayWindow: ClosedRange<Double>
        public var recoveryRampWPerSecond: Double
        public var upstreamHeartbeatTimeout: Double?
        public var nonResponseToleranceW: Double
        public var responseTime: Double
        public var breakerConfirmTime: Double
        public var autoCloseDelay: Double?
        public var maxTrips: Int
        public var tripWindow: Double
        public var relayAlarmAfter: Double
    }

    /// The ring log: where, and how big each ring is.
    public struct Log: Sendable, Equatable {
        public var directory: String
        public var samplesMB: Double
        public var eventsMB: Double
        public var halfHoursMB: Double
        public var syncIntervalSeconds: Double
        /// The trips ring (a record per trip, 60 s either side).
        public var tripsMB: Double = 16
        /// The minutes ring (512 B a minute: 72 MB hold about 102 days).
        public var minutesMB: Double = 72

        public init(directory: String, samplesMB: Double, eventsMB: Double, halfHoursMB: Double, syncIntervalSeconds: Double,
                    tripsMB: Double = 16, minutesMB: Double = 72) {
            (self.directory, self.samplesMB, self.eventsMB, self.halfHoursMB) = (directory, samplesMB, eventsMB, halfHoursMB)
            (self.syncIntervalSeconds, self.tripsMB, self.minutesMB) = (syncIntervalSeconds, tripsMB, minutesMB)
        }
    }

    /// The upstream Modbus TCP server (docs/modbus-map.md).
    public struct Upstream: Sendable, Equatable {
        public var listen: String
        public var port: Int
        public var allowedWriters: Set<String>
        public var maxClients: Int
        public var maxClientsPerAddress: Int
        public var idleTimeoutMilliseconds: Int
        public var frameDeadlineMilliseconds: Int
        public var sendDeadlineMilliseconds: Int
    }

    /// `[oscp]`, with the tokens read from its credentials file.
    public struct OSCP: Sendable, Equatable {
        public var listen: String
        public var port: Int
        public var ourBaseURL: String
        public var fpBaseURL: String
        public var fpBaseURLOrigin: Origin
        public var token: String
        public var fpToken: String
        public var heartbeatIntervalS: Int
        public var ownHeartbeatDefaultS: Int
        public var forecastMinutes: Double
        public var refreshS: Double
        public var certificate: String?
        public var key: String?
        public var caFile: String?
        public var clientCAFile: String?
        public var allowPlainHTTP: Bool
        public var allowedFPBaseURLs: [String]
        public var maxConnections: Int
        public var requestDeadlineSeconds: Double
        /// Site id → OSCP group (from each site's `oscp_group`).
        public var groups: [String: String]
    }

    /// The DNP3 outstation (`[dnp3]`, docs/dnp3.md).
    public struct DNP3: Sendable, Equatable {
        public var listen = "127.0.0.1"
        public var port = 20000
        public var outstationAddress = 1024
        public var masterAddress = 1
        public var allowedIPs: Set<String> = ["127.0.0.1"]
        public var eventBuffer = 100
        public var selectTimeoutSeconds = 5.0
        public var remoteValiditySeconds = 300.0
        public var unsolicited = true
        public var unsolicitedRetries = 3
        public var unsolicitedConfirmTimeoutSeconds = 5.0
        /// Event buffer capacity of classes 1, 2 and 3 (`event_buffer_classN`, else `event_buffer`).
        public var eventBuffers = [100, 100, 100]
        /// Point group name → class (0–3) and deadband (in the points' unit), as set in `[dnp3]`
        /// (`class_GROUP`, `deadband_GROUP`); a group not named keeps the map's default.
        public var classes: [String: Int] = [:]
        public var deadbands: [String: Double] = [:]
        public init() {}
    }

    public var control: Control
    public var box: Box
    public var buses: [Bus] = []
    public var meters: [Meter] = []
    public var pulseMeters: [PulseMeter] = []
    public var measurementPoints: [MeasurementPoint] = []
    public var sites: [Site] = []
    public var failsafe: FailSafe
    public var log: Log
    public var upstream: Upstream?
    public var oscp: OSCP?
    public var dnp3: DNP3?

    /// Reads and checks lmc.toml. nil only for a TOML syntax error; otherwise the model of what could be
    /// read, and every problem found (each with its line and key path) in `issues`.
    public static func read(_ text: String, issues out: inout [ConfigIssue]) -> ConfigFile? {
        switch Section.root(of: text, schema: "", declarations: ConfigKeys.schema) {
        case .failure(let e):
            out = e.issues
            return nil
        case .success(let top):
            let file = ConfigReader(top: top).read()
            out = top.issues.items
            return file
        }
    }
}

/// The reading itself, one table at a time, in the order of docs/config.md.
private struct ConfigReader {
    let top: Section
    var issues: IssueList { top.issues }

    func read() -> ConfigFile {
        let control = readControl()
        let mpSections = top.tables("measurement_point")
        if mpSections.isEmpty { issues.add(nil, "measurement_point", "at least one [[measurement_point]] is needed") }
        let siteSections = top.tables("site")
        if siteSections.isEmpty { issues.add(nil, "site", "at least one [[site]] is needed") }
        let box = readBox()
        let buses = top.tables("bus").compactMap(readBus)
        let meters = top.tables("meter").compactMap { readMeter($0, buses: buses) }
        var pulseMeters: [ConfigFile.PulseMeter] = []
        for p in top.tables("pulse_meter") {
            if let pm = readPulseMeter(p) {
                if meters.contains(where: { $0.id == pm.id }) || pulseMeters.contains(where: { $0.id == pm.id }) {
                    issues.add(p.table.line(of: "id"), "\(p.path).id", "= \"\(pm.id)\": another [[meter]] or [[pulse_meter]] has this id")
                }
                pulseMeters.append(pm)
            }
        }
        let meterIDs = Set(meters.map(\.id)), pulseIDs = Set(pulseMeters.map(\.id))
        let mps = mpSections.compactMap { readMP($0, meterIDs: meterIDs, pulseIDs: pulseIDs) }
        let sites = siteSections.enumerated().compactMap { i, s in readSite(s, order: i + 1, meterIDs: meterIDs, pulseIDs: pulseIDs) }
        let failsafe = readFailSafe()
        let log = readLog()
        let upstream = top.table("upstream").map(readUpstream)
        let dnp3 = top.table("dnp3").map(readDNP3)
        let groups = Dictionary(sites.compactMap { s in s.oscpGroup.map { (s.id, $0) } }, uniquingKeysWith: { a, _ in a })
        var oscp: ConfigFile.OSCP?
        if let o = top.table("oscp") {
            oscp = readOSCP(o, groups: groups)
        } else if !groups.isEmpty {
            issues.add(nil, "site.oscp_group", "is set but there is no [oscp] section: add one (docs/config.md)")
        }
        top.rejectUnknownKeys()
        for dup in duplicates(mps.map(\.id)) { issues.add(nil, "measurement_point", "id \"\(dup)\" is used twice") }
        for dup in duplicates(sites.map(\.id)) { issues.add(nil, "site", "id \"\(dup)\" is used twice") }
        return ConfigFile(control: control, box: box, buses: buses, meters: meters, pulseMeters: pulseMeters, measurementPoints: mps,
                          sites: sites, failsafe: failsafe, log: log, upstream: upstream, oscp: oscp, dnp3: dnp3)
    }

    func readControl() -> ConfigFile.Control {
        let control = top.tableOrEmpty("control")
        let mode = control.string("mode")!
        let period = control.number("period_ms")!
        let zone = control.string("tcc_timezone")!
        if zone.isEmpty || zone.hasPrefix("/") || zone.contains("..") || !zone.allSatisfy({ $0.isLetter || $0.isNumber || "/_+-".contains($0) }) {
            issues.add(control.table.line(of: "tcc_timezone"), "control.tcc_timezone", "= \"\(zone)\": expected a time zone name such as \"Europe/London\" or \"UTC\"")
        }
        let requireSync = control.bool("require_synchronised_clock")
        control.rejectUnknownKeys()
        // The choice was checked against the declaration: an unknown mode is an issue already.
        return .init(mode: ConfigFile.Mode(rawValue: mode) ?? .direct, periodMilliseconds: Int(period), tccTimezone: zone,
                     requireSynchronisedClock: requireSync)
    }

    func readBox() -> ConfigFile.Box {
        // Tables that may be left out are read as empty ones: their defaults are the declared ones either way.
        let box = top.tableOrEmpty("box")
        var out = ConfigFile.Box(id: box.string("id")!, socket: box.string("socket")!, hardwareWatchdog: nil)
        if let wd = box.string("hardware_watchdog"), !wd.isEmpty {
            if !wd.hasPrefix("/") { issues.add(box.table.line(of: "hardware_watchdog"), "box.hardware_watchdog", "= \"\(wd)\": expected an absolute path such as \"/dev/watchdog0\"") }
            out.hardwareWatchdog = wd
        }
        box.rejectUnknownKeys()
        return out
    }

    func readEndpoint(_ s: Section) -> ConfigFile.Endpoint? {
        let tcp = s.string("tcp", default: "")!
        let rtu = s.string("rtu", default: "")!
        let baud = s.number("baud")!
        let parity = s.string("parity")!
        if tcp.isEmpty == rtu.isEmpty {
            issues.add(s.line, s.path, "give exactly one of tcp = \"HOST:PORT\" or rtu = \"/dev/…\"")
            return nil
        }
        if !tcp.isEmpty { return .tcp(tcp, Origin(line: s.table.line(of: "tcp"), path: "\(s.path).tcp")) }
        return .rtu(device: rtu, baud: Int(baud), parity: parity)
    }

    func readBus(_ b: Section) -> ConfigFile.Bus? {
        let id = b.string("id") ?? "?"
        let endpoint = readEndpoint(b)
        let timeout = b.number("timeout_ms")!
        b.rejectUnknownKeys()
        return endpoint.map { ConfigFile.Bus(id: id, endpoint: $0, timeoutMilliseconds: Int(timeout)) }
    }

    func readMeter(_ m: Section, buses: [ConfigFile.Bus]) -> ConfigFile.Meter? {
        let id = m.string("id") ?? "?"
        let bus = m.string("bus") ?? "?"
        if !buses.contains(where: { $0.id == bus }) {
            issues.add(m.table.line(of: "bus"), "\(m.path).bus", "= \"\(bus)\": no [[bus]] has this id (have: \(buses.map(\.id).joined(separator: ", ")))")
        }
        let unit = m.number("unit")!
        let profile = m.string("profile") ?? "generic"
        let poll = m.number("poll_ms")!
        var frozenAfter = m.number("frozen_after_s")!
        let frozenPolls = m.number("frozen_polls").map { Int($0) }
        if let frozenPolls {
            if m.has("frozen_after_s") {
                issues.add(m.table.line(of: "frozen_polls"), "\(m.path).frozen_polls",
                           "= \(frozenPolls) with frozen_after_s: frozen_polls is deprecated, delete it and keep frozen_after_s")
            } else {
                frozenAfter = Double(frozenPolls - 1) * poll / 1000
            }
        }
        let meter = ConfigFile.Meter(id: id, bus: bus, unit: UInt8(unit), profile: profile,
                                     profileOrigin: Origin(line: m.table.line(of: "profile"), path: "\(m.path).profile"),
                                     pollMilliseconds: Int(poll), ctRatingA: m.number("ct_rating_a"), nominalVoltage: m.number("nominal_v")!,
                                     frozenAfterSeconds: frozenAfter, frozenPollsGiven: m.has("frozen_after_s") ? nil : frozenPolls)
        m.rejectUnknownKeys()
        return meter
    }

    func readPulseMeter(_ p: Section) -> ConfigFile.PulseMeter? {
        let id = p.string("id") ?? "?"
        let line = p.number("line")
        let constant = p.number("impulses_per_kwh")
        let pm = ConfigFile.PulseMeter(id: id, chip: p.string("chip")!, line: Int(line ?? 0), activeLow: p.bool("active_low"),
                                       impulsesPerKWh: constant ?? 1000, minimumLoadW: p.number("minimum_load_w"), windowSeconds: p.number("window_s")!)
        p.rejectUnknownKeys()
        return line != nil && constant != nil ? pm : nil
    }

    func readMP(_ s: Section, meterIDs: Set<String>, pulseIDs: Set<String>) -> ConfigFile.MeasurementPoint? {
        let id = s.string("id") ?? "?"
        // The meters first: they are checked whatever else is wrong with the point.
        var meter: String?, redundant: String?
        if let m = s.string("meter"), !m.isEmpty {
            if pulseIDs.contains(m) {
                issues.add(s.table.line(of: "meter"), "\(s.path).meter",
                           "= \"\(m)\": a [[pulse_meter]] gives an average over a minute, too slow to see a constraint; name a [[meter]] here and use the pulse meter as a site's poc_meter")
            } else {
                if !meterIDs.contains(m) { issues.add(s.table.line(of: "meter"), "\(s.path).meter", "= \"\(m)\": no [[meter]] has this id") }
                meter = m
            }
        }
        if let second = s.string("redundant_meter"), !second.isEmpty {
            if !meterIDs.contains(second) { issues.add(s.table.line(of: "redundant_meter"), "\(s.path).redundant_meter", "= \"\(second)\": no [[meter]] has this id") }
            if second == meter { issues.add(s.table.line(of: "redundant_meter"), "\(s.path).redundant_meter", "= \"\(second)\": the same meter as meter; a redundant pair needs a second one") }
            if meter == nil { issues.add(s.table.line(of: "redundant_meter"), "\(s.path).redundant_meter", "needs meter = \"…\" first") }
            redundant = second
        }
        guard let kindName = s.string("kind"), let kind = ConfigFile.Kind(rawValue: kindName) else { s.rejectUnknownKeys(); return nil }
        let (u, scale) = kind.unit
        // Keys in another kind's unit are a classic slip (limit_kva on a current MP): say so.
        func checkUnits(_ t: TOMLTable, _ path: String) {
            for other in ["a", "kva", "v"] where other != u {
                for e in t.entries where e.key.hasSuffix("_\(other)") {
                    s.issues.add(e.line, "\(path).\(e.key)", "a \(kindName) point takes values in \(u): use \(e.key.dropLast(other.count))\(u)")
                }
            }
        }
        checkUnits(s.table, s.path)
        for side in ["upper", "lower"] { if case .table(let t)? = s.table[side] { checkUnits(t, "\(s.path).\(side)") } }
        let sensitivity = s.number("sensitivity_per_kw").map { $0 * scale / 1000 }
        func thresholds(_ name: String) -> ConfigFile.Thresholds? {
            guard let t = s.table(name) else { return nil }
            defer { t.rejectUnknownKeys() }
            guard let limit = t.number("limit_\(u)"), let zone = t.number("release_zone_\(u)"),
                  let trigger = t.number("release_trigger_\(u)") else { return nil }
            return .init(trip: t.number("trip_\(u)").map { $0 * scale }, tripDelay: t.number("trip_delay_s")!,
                         limit: limit * scale, releaseZone: zone * scale, releaseTrigger: trigger * scale)
        }
        let upper = thresholds("upper")
        let lower = thresholds("lower")
        if !s.has("upper") && !s.has("lower") { s.issues.add(s.line, s.path, "needs an [\(s.path).upper] or [\(s.path).lower] table") }
        let mp = ConfigFile.MeasurementPoint(
            id: id, kind: kind, sensitivity: sensitivity ?? 1, upper: upper, lower: lower,
            regulateMargin: (s.number("regulate_margin_\(u)") ?? 0) * scale,
            rideThrough: s.number("ride_through_s")!,
            regulateInterval: s.number("regulate_interval_s")!,
            releaseInterval: s.number("release_interval_s")!,
            rampW: (s.number("ramp_kw") ?? .infinity) * 1000,
            filterTimeConstant: s.number("filter_s")!,
            lowestBelievable: s.number("lowest_believable_\(u)").map { $0 * scale },
            meter: meter, redundantMeter: redundant)
        s.rejectUnknownKeys()
        return mp
    }

    func readSite(_ s: Section, order: Int, meterIDs: Set<String>, pulseIDs: Set<String>) -> ConfigFile.Site? {
        let id = s.string("id") ?? "?"
        let firm = s.number("firm_kw")
        let rated = s.number("rated_kw")
        let oscpGroup = s.string("oscp_group").flatMap { $0.isEmpty ? nil : $0 }
        var poc: String?
        if let p = s.string("poc_meter"), !p.isEmpty {
            if !meterIDs.contains(p) && !pulseIDs.contains(p) {
                issues.add(s.table.line(of: "poc_meter"), "\(s.path).poc_meter", "= \"\(p)\": no [[meter]] or [[pulse_meter]] has this id")
            }
            poc = p
        }
        let breaker = s.table("breaker").flatMap(readBreaker)
        let charger = s.table("charger").flatMap(readCharger)
        // A Modbus charger takes amps per phase; a CPMS over OSCP takes kW.
        let hasCharger = s.has("charger")
        let unitName = s.string("setpoint_unit", default: hasCharger ? "a" : "kw")!
        if hasCharger && unitName != "a" {
            s.issues.add(s.table.line(of: "setpoint_unit"), "\(s.path).setpoint_unit",
                         "= \"\(unitName)\": the site's [site.charger] takes amps per phase; write setpoint_unit = \"a\" (with phases, phase_voltage_v and power_factor) or leave it out")
        }
        let pf = s.number("power_factor")!
        let phases = s.number("phases")!
        let voltage = s.number("phase_voltage_v")!
        let unit: ConfigFile.SetPointUnit = switch unitName {
        case "kva": .kVA(powerFactor: pf)
        case "a": .ampsPerPhase(phases: Int(phases), phaseVoltage: voltage, powerFactor: pf)
        default: .kW
        }
        let quantum = s.number("quantum", default: unitName == "a" ? 1 : 0)!
        let hysteresis = s.number("hysteresis")!
        let ramp = s.number("ramp_up_kw_per_s")!
        let dsc = s.number("dsc_kw").map { $0 * 1000 }
        let tcc = s.numbers("tcc_kw").map { $0.map { $0 * 1000 } }
        var schedule: [ConfigFile.ScheduleWindow] = []
        for w in s.tables("schedule") {
            let name = w.string("name")!
            let from = w.string("from").flatMap { parseClock($0, w, "from") }
            let to = w.string("to").flatMap { parseClock($0, w, "to") }
            let limit = w.number("limit_kw")
            w.rejectUnknownKeys()
            if let from, let to, let limit {
                schedule.append(.init(name: name, startSecondsOfDay: from, endSecondsOfDay: to, watts: limit * 1000))
            }
        }
        s.rejectUnknownKeys()
        guard let firm, let rated else { return nil }
        return ConfigFile.Site(id: id, order: order, firmW: firm * 1000, ratedW: rated * 1000, rampUpWPerSecond: ramp * 1000,
                               setPointUnit: unit, quantum: quantum, hysteresis: hysteresis, dscW: dsc, tccW: tcc,
                               tccOrigin: Origin(line: s.table.line(of: "tcc_kw"), path: "\(s.path).tcc_kw"), schedule: schedule,
                               pocMeter: poc, oscpGroup: oscpGroup, breaker: breaker, charger: charger)
    }

    func readBreaker(_ b: Section) -> ConfigFile.Breaker? {
        let trip = b.number("trip_line")
        let out = ConfigFile.Breaker(chip: b.string("chip")!, tripLine: Int(trip ?? 0), tripActiveLow: b.bool("trip_active_low"),
                                     closeLine: b.number("close_line").map { Int($0) }, closeActiveLow: b.bool("close_active_low"),
                                     auxLine: b.number("aux_line").map { Int($0) }, auxActiveLow: b.bool("aux_active_low"),
                                     pulseMilliseconds: Int(b.number("pulse_ms")!))
        b.rejectUnknownKeys()
        return trip == nil ? nil : out
    }

    func readCharger(_ c: Section) -> ConfigFile.Charger? {
        let endpoint = readEndpoint(c)
        let profile = c.string("profile") ?? "generic"
        let unit = c.number("unit")
        let maxA = c.number("max_current_a")
        let timeout = c.number("timeout_ms")!
        // The set point's conversion is the site's (one shaper per site): these keys moved there.
        for (old, new) in [("phases", "phases"), ("phase_voltage_v", "phase_voltage_v"), ("power_factor", "power_factor"), ("step_a", "quantum")]
        where c.table[old] != nil {
            c.markUsed(old)
            issues.add(c.table.line(of: old), "\(c.path).\(old)", "moved to the site: the set point is converted once, for whatever takes it; write \(new) = … in [[site]] (with setpoint_unit = \"a\") and remove it here")
        }
        c.rejectUnknownKeys()
        return ConfigFile.Charger(profile: profile, profileOrigin: Origin(line: c.table.line(of: "profile"), path: "\(c.path).profile"),
                                  endpoint: endpoint, unit: unit.map { UInt8($0) }, maxCurrentA: maxA, timeoutMilliseconds: Int(timeout))
    }

    func readFailSafe() -> ConfigFile.FailSafe {
        let f = top.tableOrEmpty("failsafe")
        let lo = f.number("startup_delay_min_s")!
        let hi = f.number("startup_delay_max_s")!
        if hi < lo { issues.add(f.table.line(of: "startup_delay_max_s"), "failsafe.startup_delay_max_s", "= \(hi): below startup_delay_min_s \(lo)") }
        let out = ConfigFile.FailSafe(
            blindTime: f.number("blind_time_s")!, goodSamples: Int(f.number("good_samples")!),
            startupDelayWindow: lo...max(lo, hi), recoveryRampWPerSecond: f.number("recovery_ramp_kw_per_s")! * 1000,
            upstreamHeartbeatTimeout: f.number("upstream_heartbeat_timeout_s"),
            nonResponseToleranceW: f.number("non_response_tolerance_kw")! * 1000, responseTime: f.number("response_time_s")!,
            breakerConfirmTime: f.number("breaker_confirm_s")!, autoCloseDelay: f.number("auto_close_delay_s"),
            maxTrips: Int(f.number("max_trips")!), tripWindow: f.number("trip_window_s")!, relayAlarmAfter: f.number("relay_alarm_after_s")!)
        f.rejectUnknownKeys()
        return out
    }

    func readLog() -> ConfigFile.Log {
        let l = top.tableOrEmpty("log")
        let out = ConfigFile.Log(directory: l.string("directory")!, samplesMB: l.number("samples_mb")!, eventsMB: l.number("events_mb")!,
                                 halfHoursMB: l.number("halfhours_mb")!, syncIntervalSeconds: l.number("sync_interval_s")!,
                                 tripsMB: l.number("trips_mb")!, minutesMB: l.number("minutes_mb")!)
        l.rejectUnknownKeys()
        return out
    }

    /// An array of strings; an item that is not a string, or not `valid`, is an issue (`itemError`, or
    /// "expected WHAT in quotes") and left out.
    func strings(_ s: Section, _ key: String, what: String, itemError: String? = nil, valid: (String) -> Bool = { _ in true }) -> [String] {
        var out: [String] = []
        if let v = s.table[key] {
            if case .array(let items) = v {
                for item in items {
                    if case .string(let a) = item, valid(a) { out.append(a) } else {
                        issues.add(s.table.line(of: key), "\(s.path).\(key)", itemError ?? "expected \(what) in quotes")
                    }
                }
            } else {
                issues.add(s.table.line(of: key), "\(s.path).\(key)", "is \(v.typeName), expected an array of \(what)")
            }
        }
        s.claim(key)
        return out
    }

    func readUpstream(_ u: Section) -> ConfigFile.Upstream {
        // Loopback unless the config names the address SCADA reaches; port 1502: the service has
        // no capabilities, so it cannot bind 502 (docs/config.md says how to allow that).
        let listen = u.string("listen")!
        if !isNumericIP(listen) {
            issues.add(u.table.line(of: "listen"), "upstream.listen", "= \"\(listen)\": not a numeric IPv4 or IPv6 address")
        }
        let out = ConfigFile.Upstream(
            listen: listen, port: Int(u.number("port")!), allowedWriters: Set(strings(u, "allowed_writers", what: "IP addresses")),
            maxClients: Int(u.number("max_clients")!), maxClientsPerAddress: Int(u.number("max_clients_per_address")!),
            idleTimeoutMilliseconds: Int(u.number("idle_timeout_s")! * 1000), frameDeadlineMilliseconds: Int(u.number("frame_deadline_ms")!),
            sendDeadlineMilliseconds: Int(u.number("send_deadline_ms")!))
        u.rejectUnknownKeys()
        return out
    }

    func readDNP3(_ d: Section) -> ConfigFile.DNP3 {
        var c = ConfigFile.DNP3()
        c.listen = d.string("listen")!
        if !isNumericIP(c.listen) {
            issues.add(d.table.line(of: "listen"), "dnp3.listen", "= \"\(c.listen)\": not a numeric IPv4 or IPv6 address")
        }
        c.port = Int(d.number("port")!)
        c.outstationAddress = Int(d.number("outstation_address")!)
        c.masterAddress = Int(d.number("master_address")!)
        if c.outstationAddress == c.masterAddress {
            issues.add(d.table.line(of: "master_address"), "dnp3.master_address",
                       "= \(c.masterAddress) is also the outstation_address: give the master and this box different link addresses")
        }
        c.eventBuffer = Int(d.number("event_buffer")!)
        c.selectTimeoutSeconds = d.number("select_timeout_s")!
        c.remoteValiditySeconds = d.number("remote_validity_s")!
        c.unsolicited = d.bool("unsolicited")
        c.unsolicitedRetries = Int(d.number("unsolicited_retries")!)
        c.unsolicitedConfirmTimeoutSeconds = d.number("unsolicited_confirm_timeout_s")!
        c.eventBuffers = (1...3).map { k in Int(d.number("event_buffer_class\(k)", default: Double(c.eventBuffer))!) }
        for g in ConfigKeys.dnp3PointGroups {
            let k = "class_\(g.name)"
            let v = d.number(k)!
            if v != v.rounded() {
                issues.add(d.table.line(of: k), "dnp3.\(k)", "= \(v): a class is 0, 1, 2 or 3 (0: static only, no events); write for example \(k) = \(g.defaultClass)")
            } else if d.has(k) {
                c.classes[g.name] = Int(v)
            }
            if let db = g.deadband {
                let k = g.deadbandKey
                // Contextual (mp_value's depends on the MP's unit): -1 stands for "the map's".
                if let v = db.value == nil ? d.number(k, default: -1) : d.number(k), d.has(k), v >= 0 { c.deadbands[g.name] = v }
            }
        }
        let ips = strings(d, "allowed_ips", what: "IP addresses", itemError: "expected numeric IP addresses in quotes, like [\"10.20.0.5\"]",
                          valid: isNumericIP)
        if d.has("allowed_ips") { c.allowedIPs = Set(ips) }
        d.rejectUnknownKeys()
        return c
    }

    func readOSCP(_ o: Section, groups: [String: String]) -> ConfigFile.OSCP {
        let listen = o.string("listen")!
        let port = o.number("port")!
        let ours = o.string("our_base_url") ?? ""
        let fp = o.string("fp_base_url") ?? ""
        // The tokens only from a credentials file readable by root and the service (or systemd's
        // LoadCredential=): lmc.toml is group-readable (group lmc, every console reader), so a token
        // there is refused, with where it goes instead. The error never repeats the token.
        let credentials = o.string("credentials_file", default: "")!
        var fpToken = "", token = ""
        o.claim("token")
        o.claim("fp_token")
        for k in ["token", "fp_token"] where o.table[k] != nil {
            issues.add(o.table.line(of: k), "oscp.\(k)", "a token in lmc.toml is not accepted: group lmc can read this file. "
                       + "Move it to a credentials file readable by root only, e.g. /etc/lmc/oscp.credentials (chmod 600) holding "
                       + "token = \"…\" and fp_token = \"…\", delete \(k) here and set credentials_file = \"/etc/lmc/oscp.credentials\" "
                       + "(or LoadCredential=oscp:/etc/lmc/oscp.credentials and credentials_file = \"oscp\"; docs/config.md)")
        }
        if credentials.isEmpty {
            issues.add(o.table.line(of: "credentials_file") ?? o.line, "oscp.credentials_file",
                       (o.table["credentials_file"] == nil ? "is required" : "is empty") + ": the OSCP tokens are read from it "
                       + "(a file readable by root only, chmod 600, holding token = \"…\" and fp_token = \"…\"; docs/config.md)")
        } else {
            switch OSCPCredentials.load(credentials) {
            case .success(let c): (token, fpToken) = (c.token, c.fpToken)
            case .failure(let why): issues.add(o.table.line(of: "credentials_file"), "oscp.credentials_file", why.description)
            }
        }
        let cert = o.string("tls_certificate") ?? ""
        let key = o.string("tls_key") ?? ""
        let ca = o.string("ca_file", default: "")!
        let clientCA = o.string("client_ca_file") ?? ""
        let out = ConfigFile.OSCP(
            listen: listen, port: Int(port), ourBaseURL: ours, fpBaseURL: fp,
            fpBaseURLOrigin: Origin(line: o.table.line(of: "fp_base_url"), path: "oscp"), token: token, fpToken: fpToken,
            heartbeatIntervalS: Int(o.number("heartbeat_interval_s")!), ownHeartbeatDefaultS: Int(o.number("own_heartbeat_default_s")!),
            forecastMinutes: o.number("forecast_minutes")!, refreshS: o.number("refresh_s")!,
            certificate: cert.isEmpty ? nil : cert, key: key.isEmpty ? nil : key, caFile: ca.isEmpty ? nil : ca,
            clientCAFile: clientCA.isEmpty ? nil : clientCA, allowPlainHTTP: o.bool("allow_plain_http"),
            allowedFPBaseURLs: strings(o, "fp_allowed_base_urls", what: "URLs"),
            maxConnections: Int(o.number("max_connections")!), requestDeadlineSeconds: o.number("request_deadline_s")!, groups: groups)
        o.rejectUnknownKeys()
        // An empty string is never a value here: a required key left "" is refused, not skipped.
        for (k, v) in [("our_base_url", ours), ("fp_base_url", fp)] where v.isEmpty {
            issues.add(o.table.line(of: k) ?? o.line, "oscp.\(k)", "is required and may not be empty")
        }
        for (k, v) in [("listen", listen), ("tls_certificate", cert), ("tls_key", key), ("ca_file", ca), ("client_ca_file", clientCA)]
            where o.table[k] != nil && v.isEmpty {
            issues.add(o.table.line(of: k), "oscp.\(k)", "is empty: give a value or remove the key")
        }
        return out
    }
}

private func duplicates(_ ids: [String]) -> [String] {
    var seen = Set<String>(), dup: [String] = []
    for id in ids { if !seen.insert(id).inserted { dup.append(id) } }
    return dup
}

/// "HH:MM" → seconds after midnight.
private func parseClock(_ text: String, _ s: Section, _ key: String) -> Double? {
    let parts = text.split(separator: ":")
    if parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 {
        return Double(h * 3600 + m * 60)
    }
    s.issues.add(s.table.line(of: key), "\(s.path).\(key)", "= \"\(text)\": expected a time of day \"HH:MM\" (e.g. \"08:30\")")
    return nil
}
