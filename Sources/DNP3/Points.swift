/// The point map: every DNP3 point lmc offers, declared once as data (docs/dnp3-map.md lists it and a
/// test keeps the two in step). Indices are fixed blocks per measurement point and site, like the
/// Modbus map, so adding an MP never moves another point.

public enum PointType: String, Sendable, Equatable, CaseIterable {
    case binaryInput = "binary input"
    case analogInput = "analog input"
    case counter = "counter"
    case analogOutput = "analog output"
    case binaryOutput = "binary output"

    /// Group and variation of the static object and of the event object this type is reported with.
    public var staticGV: (UInt8, UInt8) {
        switch self {
        case .binaryInput: return (1, 2)
        case .analogInput: return (30, 5)
        case .counter: return (20, 1)
        case .analogOutput: return (40, 3)
        case .binaryOutput: return (10, 2)
        }
    }
    public var eventGV: (UInt8, UInt8)? {
        switch self {
        case .binaryInput: return (2, 2)
        case .analogInput: return (32, 7)
        case .counter: return (22, 1)
        case .analogOutput, .binaryOutput: return nil
        }
    }
}

public struct PointSpec: Sendable, Equatable {
    public var type: PointType
    public var index: Int
    /// What the point is, as the map documents it ("mp[0].value").
    public var name: String
    public var unit: String
    /// DNP3 value = value in `unit`'s SI base × scale.
    public var scale: Double
    /// 0: static only (no events); 1, 2 or 3: the event class.
    public var eventClass: UInt8
    /// An analog or counter event when the value moved more than this (DNP3 units) since the last one.
    public var deadband: Double
    public var description: String
    /// The point group whose class and deadband `[dnp3]` sets (nil: fixed, e.g. `cycles` and the outputs).
    public var group: PointGroup? = nil
}

/// The groups of points whose event class (and, for analogs and counters, deadband) `[dnp3]` sets:
/// `class_GROUP` and `deadband_GROUP` (docs/config.md). Declared here once with their defaults; the
/// config keys of the same names are declared in LMCConfig's Keys.swift (a test keeps the two in step).
public enum PointGroup: String, Sendable, Equatable, CaseIterable {
    case alarms, modes, status, mp_value, mp_limit, codes, site_set_point, site_import, halfhour, trips, overruns, energy

    /// The class the map gives the group's points unless `[dnp3] class_GROUP` says otherwise.
    public var defaultClass: UInt8 {
        switch self {
        case .mp_value, .site_set_point, .site_import: return 2
        case .halfhour, .overruns, .energy: return 3
        default: return 1
        }
    }
    /// Groups with a deadband `[dnp3] deadband_GROUP` sets, in the points' unit (nil: none — binaries,
    /// codes, half-hour records, trips and overruns report every change). `mp_value`'s default depends
    /// on the MP's unit (1000 VA, 5 A, 2 V).
    public var defaultDeadband: Double? {
        switch self {
        case .mp_value: return 1000
        case .mp_limit: return 100
        case .site_set_point: return 500
        case .site_import: return 1000
        case .energy: return 0
        default: return nil
        }
    }
}

/// `[dnp3]`'s choices for the point groups: a class and a deadband per group (absent: the map's default).
public struct PointGroupSettings: Sendable, Equatable {
    public var classes: [PointGroup: UInt8]
    public var deadbands: [PointGroup: Double]
    public init(classes: [PointGroup: UInt8] = [:], deadbands: [PointGroup: Double] = [:]) {
        self.classes = classes; self.deadbands = deadbands
    }
}

public struct PointMap: Sendable, Equatable {
    public static let maxMeasurementPoints = 8
    public static let maxSites = 8
    public static let alarmNames = ["METER_LOST", "RELAY_FAILING", "TRIP_FAILED", "LOCKOUT", "CLOSE_FAILED", "BLIND", "DEAF"]
    public static let modeNames = ["normal", "degraded", "startup", "failsafe", "non-response", "tripped", "lockout"]

    public var binaries: [PointSpec]
    public var analogs: [PointSpec]
    public var counters: [PointSpec]
    public var outputs: [PointSpec]
    /// Binary outputs (g12 CROB; g10 reads back the last control).
    public var binaryOutputs: [PointSpec] = []

    public func points(_ t: PointType) -> [PointSpec] {
        switch t {
        case .binaryInput: return binaries
        case .analogInput: return analogs
        case .counter: return counters
        case .analogOutput: return outputs
        case .binaryOutput: return binaryOutputs
        }
    }

    /// Analog input indices.
    public enum AI {
        public static func mpValue(_ i: Int) -> Int { 3 * i }
        public static func mpLimit(_ i: Int) -> Int { 3 * i + 1 }
        public static func mpState(_ i: Int) -> Int { 3 * i + 2 }
        public static func siteSetPoint(_ j: Int) -> Int { 24 + 3 * j }
        public static func siteImport(_ j: Int) -> Int { 24 + 3 * j + 1 }
        public static func siteBoundBy(_ j: Int) -> Int { 24 + 3 * j + 2 }
        public static let mode = 48
        /// The closed half hour's record (class 3, an event at each half hour's end, stamped with it).
        public static func mpHalfHourMean(_ i: Int) -> Int { 49 + 2 * i }
        public static func mpHalfHourMax(_ i: Int) -> Int { 50 + 2 * i }
        public static func siteHalfHourImport(_ j: Int) -> Int { 65 + 2 * j }
        public static func siteHalfHourCurtailed(_ j: Int) -> Int { 66 + 2 * j }
    }
    /// Binary input indices.
    public enum BI {
        public static func alarm(_ k: Int) -> Int { k }
        public static func mode(_ k: Int) -> Int { 7 + k }
        public static func relayOK(_ j: Int) -> Int { 14 + j }
        /// The site's breaker by its auxiliary contact: 1 closed, 0 open; no value (COMM_LOST) when the
        /// contact could not be read, is not wired, or the site has no breaker.
        public static func breakerClosed(_ j: Int) -> Int { 22 + j }
        /// The MP has no believable value this cycle (its meter lost, stale, implausible).
        public static func mpBlind(_ i: Int) -> Int { 30 + i }
        /// The site's charger relay or OSCP relay fails (writes or read-back failing, the FP lost).
        public static func siteDeaf(_ j: Int) -> Int { 38 + j }
    }
    /// Analog output indices.
    public enum AO {
        public static func remoteSetPoint(_ j: Int) -> Int { j }
        /// The upstream heartbeat: any accepted operate is a heartbeat, like a write of the Modbus map's
        /// register 1100 (`[failsafe] upstream_heartbeat_timeout_s` supervises it).
        public static let heartbeat = 8
    }
    /// Binary output (CROB) indices.
    public enum BO {
        /// The upstream heartbeat as a CROB: any accepted PULSE or LATCH is a heartbeat, as an operate
        /// of analog output 8 is.
        public static let heartbeat = 0
    }
    /// Counter indices.
    public enum CI {
        public static let trips = 0
        public static let cycles = 1
        public static let overruns = 2
        /// Energy summed from the half-hour records since lmc started (Wh; they move at each half hour's end).
        public static func siteEnergyImported(_ j: Int) -> Int { 3 + 2 * j }
        public static func siteEnergyCurtailed(_ j: Int) -> Int { 4 + 2 * j }
    }

    /// The unit of a measurement point's value, which sets its `mp[i].value` point's unit and deadband.
    public enum MPUnit: String, Sendable { case amps = "A", voltAmps = "VA", volts = "V" }

    /// The standard map with each MP's value in its own unit: deadband 1 kVA, 5 A or 2 V; then the
    /// classes and deadbands `[dnp3]` sets per point group.
    public static func standard(mpUnits: [MPUnit], groups: PointGroupSettings = .init()) -> PointMap {
        var m = standard
        for (i, u) in mpUnits.prefix(maxMeasurementPoints).enumerated() {
            m.analogs[AI.mpValue(i)].unit = u.rawValue
            m.analogs[AI.mpHalfHourMean(i)].unit = u.rawValue
            m.analogs[AI.mpHalfHourMax(i)].unit = u.rawValue
            m.analogs[AI.mpValue(i)].deadband = u == .voltAmps ? 1000 : u == .amps ? 5 : 2
        }
        m.apply(groups)
        return m
    }

    /// Sets the class and deadband of every point of each group named in `g`.
    public mutating func apply(_ g: PointGroupSettings) {
        func set(_ list: inout [PointSpec]) {
            for k in list.indices {
                guard let group = list[k].group else { continue }
                if let c = g.classes[group] { list[k].eventClass = c }
                if let d = g.deadbands[group], group.defaultDeadband != nil { list[k].deadband = d }
            }
        }
        set(&binaries); set(&analogs); set(&counters)
    }

    /// The map lmc serves (every MP as apparent power; lmc run uses ``standard(mpUnits:)``).
    public static let standard: PointMap = {
        var a: [PointSpec] = []
        for i in 0..<maxMeasurementPoints {
            a.append(.init(type: .analogInput, index: AI.mpValue(i), name: "mp[\(i)].value", unit: "VA", scale: 1, eventClass: 2, deadband: 1000,
                           description: "measurement point \(i): the value control uses, worst phase (VA; A or V for a current or voltage MP, with deadband 5 A or 2 V: see above)", group: .mp_value))
            a.append(.init(type: .analogInput, index: AI.mpLimit(i), name: "mp[\(i)].limit", unit: "W", scale: 1, eventClass: 1, deadband: 100,
                           description: "measurement point \(i): the limit it imposes on its sites (no value while it holds)", group: .mp_limit))
            a.append(.init(type: .analogInput, index: AI.mpState(i), name: "mp[\(i)].state", unit: "code", scale: 1, eventClass: 1, deadband: 0,
                           description: "measurement point \(i): state 0 holding, 1 riding, 2 regulating, 3 releasing, 4 blind", group: .codes))
        }
        for j in 0..<maxSites {
            a.append(.init(type: .analogInput, index: AI.siteSetPoint(j), name: "site[\(j)].set_point", unit: "W", scale: 1, eventClass: 2, deadband: 500,
                           description: "site \(j): the set point sent to its chargers", group: .site_set_point))
            a.append(.init(type: .analogInput, index: AI.siteImport(j), name: "site[\(j)].import", unit: "W", scale: 1, eventClass: 2, deadband: 1000,
                           description: "site \(j): import at its point of connection", group: .site_import))
            a.append(.init(type: .analogInput, index: AI.siteBoundBy(j), name: "site[\(j)].bound_by", unit: "code", scale: 1, eventClass: 1, deadband: 0,
                           description: "site \(j): what bounds the set point (0 ceiling, 1 mp, 2 tcc, 3 dsc, 4 schedule, 5 override, 6 remote, 7 floor, 8 ramp, 9 fail-safe)", group: .codes))
        }
        a.append(.init(type: .analogInput, index: AI.mode, name: "mode", unit: "code", scale: 1, eventClass: 1, deadband: 0,
                       description: "mode 0 normal, 1 degraded, 2 startup, 3 failsafe, 4 non-response, 5 tripped, 6 lockout", group: .modes))
        for i in 0..<maxMeasurementPoints {
            a.append(.init(type: .analogInput, index: AI.mpHalfHourMean(i), name: "mp[\(i)].halfhour_mean", unit: "VA", scale: 1, eventClass: 3, deadband: 0,
                           description: "measurement point \(i): mean of the last closed UTC half hour, in the MP's unit; an event at each half hour's end", group: .halfhour))
            a.append(.init(type: .analogInput, index: AI.mpHalfHourMax(i), name: "mp[\(i)].halfhour_max", unit: "VA", scale: 1, eventClass: 3, deadband: 0,
                           description: "measurement point \(i): maximum of the last closed UTC half hour, in the MP's unit; an event at each half hour's end", group: .halfhour))
        }
        for j in 0..<maxSites {
            a.append(.init(type: .analogInput, index: AI.siteHalfHourImport(j), name: "site[\(j)].halfhour_import", unit: "kWh", scale: 1, eventClass: 3, deadband: 0,
                           description: "site \(j): energy imported in the last closed UTC half hour (no value when not metered); an event at each half hour's end", group: .halfhour))
            a.append(.init(type: .analogInput, index: AI.siteHalfHourCurtailed(j), name: "site[\(j)].halfhour_curtailed", unit: "kWh", scale: 1, eventClass: 3, deadband: 0,
                           description: "site \(j): energy curtailed in the last closed UTC half hour; an event at each half hour's end", group: .halfhour))
        }
        var b: [PointSpec] = []
        // Every binary input is class 1, without unit, scale or deadband.
        func binary(_ index: Int, _ name: String, _ description: String, _ group: PointGroup) {
            b.append(.init(type: .binaryInput, index: index, name: name, unit: "", scale: 1, eventClass: 1, deadband: 0,
                           description: description, group: group))
        }
        for (k, n) in alarmNames.enumerated() { binary(BI.alarm(k), "alarm.\(n)", "alarm \(n) is raised", .alarms) }
        for (k, n) in modeNames.enumerated() { binary(BI.mode(k), "mode.\(n)", "the mode is \(n)", .modes) }
        for j in 0..<maxSites {
            binary(BI.relayOK(j), "site[\(j)].relay_ok",
                   "site \(j): its charger relay or OSCP relay takes the set point (not site[j].deaf; COMM_LOST for a site with neither)", .status)
        }
        for j in 0..<maxSites {
            binary(BI.breakerClosed(j), "site[\(j)].breaker_closed",
                   "site \(j): its breaker's auxiliary contact reads closed (0 open; COMM_LOST when it could not be read, is not wired or there is no breaker)", .status)
        }
        for i in 0..<maxMeasurementPoints {
            binary(BI.mpBlind(i), "mp[\(i)].blind", "measurement point \(i): no believable value this cycle (meter lost, stale or implausible)", .status)
        }
        for j in 0..<maxSites {
            binary(BI.siteDeaf(j), "site[\(j)].deaf", "site \(j): its charger relay or OSCP relay fails (the set point may not reach it)", .status)
        }
        var c: [PointSpec] = [
            .init(type: .counter, index: CI.trips, name: "trips", unit: "", scale: 1, eventClass: 1, deadband: 0, description: "breaker trips since the controller started", group: .trips),
            .init(type: .counter, index: CI.cycles, name: "cycles", unit: "", scale: 1, eventClass: 0, deadband: 0, description: "control cycles since start (static only)"),
            .init(type: .counter, index: CI.overruns, name: "overruns", unit: "", scale: 1, eventClass: 3, deadband: 0, description: "control cycles that overran their period", group: .overruns),
        ]
        for j in 0..<maxSites {
            c.append(.init(type: .counter, index: CI.siteEnergyImported(j), name: "site[\(j)].energy_imported", unit: "Wh", scale: 1, eventClass: 3, deadband: 0,
                           description: "site \(j): energy imported since lmc started, summed from the half-hour records (moves at each half hour's end)", group: .energy))
            c.append(.init(type: .counter, index: CI.siteEnergyCurtailed(j), name: "site[\(j)].energy_curtailed", unit: "Wh", scale: 1, eventClass: 3, deadband: 0,
                           description: "site \(j): energy curtailed since lmc started, summed from the half-hour records", group: .energy))
        }
        var o: [PointSpec] = (0..<maxSites).map { j in
            .init(type: .analogOutput, index: AO.remoteSetPoint(j), name: "site[\(j)].remote_set_point", unit: "W", scale: 1, eventClass: 0, deadband: 0,
                  description: "site \(j): a remote set point (g41; g40 reads back the last value operated)")
        }
        o.append(.init(type: .analogOutput, index: AO.heartbeat, name: "upstream.heartbeat", unit: "", scale: 1, eventClass: 0, deadband: 0,
                       description: "the upstream heartbeat: any operate (a value ≥ 0) is a heartbeat, like a write of the Modbus map's register 1100; supervised by [failsafe] upstream_heartbeat_timeout_s"))
        var m = PointMap(binaries: b, analogs: a, counters: c, outputs: o)
        m.binaryOutputs = [.init(type: .binaryOutput, index: BO.heartbeat, name: "upstream.heartbeat", unit: "", scale: 1, eventClass: 0, deadband: 0,
                                 description: "the upstream heartbeat as a CROB (g12v1): any PULSE_ON/OFF or LATCH_ON/OFF is a heartbeat, as an operate of analog output 8 is; g10v2 reads back 1 after LATCH_ON or PULSE_ON")]
        return m
    }()
}

/// One published picture of every point, in the map's SI units (the outstation applies scale). nil: no
/// value (reported offline, with value 0).
public struct PointValues: Sendable, Equatable {
    public var binaries: [Bool?]
    public var analogs: [Double?]
    public var counters: [UInt32?]

    public init(binaries: [Bool?], analogs: [Double?], counters: [UInt32?]) {
        self.binaries = binaries; self.analogs = analogs; self.counters = counters
    }

    /// Every point without a value.
    public init(map: PointMap) {
        binaries = Array(repeating: nil, count: map.binaries.count)
        analogs = Array(repeating: nil, count: map.analogs.count)
        counters = Array(repeating: nil, count: map.counters.count)
    }
}
