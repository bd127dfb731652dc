/// One UTC minute (the minutes ring, docs/ringlog.md): between the 10 Hz samples, kept for days, and the
/// half hours, kept for years. Self-describing — names travel with each record — so an export needs no
/// config of its time.
public struct MinuteRecord: Sendable, Equatable {
    public struct MP: Sendable, Equatable {
        public var name: String
        /// 0 A, 1 VA, 2 V (as the half hours).
        public var unit: UInt8
        /// Over the usable values (quality good or estimated); NaN when there was none.
        public var min: Float, mean: Float, max: Float
        public init(name: String, unit: UInt8, min: Float, mean: Float, max: Float) {
            self.name = name; self.unit = unit; self.min = min; self.mean = mean; self.max = max
        }
        /// The unit as CSV column names carry it.
        public var unitName: String { ["a", "va", "v"].indices.contains(Int(unit)) ? ["a", "va", "v"][Int(unit)] : "value" }
    }
    public struct Site: Sendable, Equatable {
        public var name: String
        /// Time-weighted means; import NaN when not metered.
        public var setPointW: Float, importW: Float
        public init(name: String, setPointW: Float, importW: Float) { self.name = name; self.setPointW = setPointW; self.importW = importW }
    }
    public static let recordSize = 512
    public static let maxMPs = 8, maxSites = 8

    /// UTC seconds, a multiple of 60.
    public var minuteStart: UInt32
    public var secondsCovered: Double
    /// The wall clock was synchronised in every cycle of the minute.
    public var clockSynchronised: Bool
    public var clockJumped: Bool
    /// The mode at the minute's last cycle (ModeCodes), and the seconds spent in any mode but NORMAL.
    public var mode: UInt8
    public var secondsNotNormal: Double
    public var mps: [MP]
    public var sites: [Site]

    public init(minuteStart: UInt32, secondsCovered: Double, clockSynchronised: Bool, clockJumped: Bool, mode: UInt8, secondsNotNormal: Double,
                mps: [MP], sites: [Site]) {
        self.minuteStart = minuteStart; self.secondsCovered = secondsCovered; self.clockSynchronised = clockSynchronised
        self.clockJumped = clockJumped; self.mode = mode; self.secondsNotNormal = secondsNotNormal; self.mps = mps; self.sites = sites
    }

    public func encode() -> [UInt8] {
        var b = Bytes()
        b.u32(minuteStart); b.ds(secondsCovered)
        b.u8((clockSynchronised ? 1 : 0) | (clockJumped ? 2 : 0))
        b.u8(mode); b.ds(secondsNotNormal)
        b.u8(UInt8(Swift.min(mps.count, Self.maxMPs)))
        for m in mps.prefix(Self.maxMPs) { b.name(m.name, 16); b.u8(m.unit); b.f32(m.min); b.f32(m.mean); b.f32(m.max) }
        b.u8(UInt8(Swift.min(sites.count, Self.maxSites)))
        for s in sites.prefix(Self.maxSites) { b.name(s.name, 16); b.f32(s.setPointW); b.f32(s.importW) }
        return b.bytes
    }

    public static func decode(_ bytes: [UInt8]) -> MinuteRecord? {
        var r = Reader(bytes)
        guard let start = r.u32(), let covered = r.ds(), let flags = r.u8(), let mode = r.u8(), let notNormal = r.ds(), let nmp = r.u8(),
              nmp <= maxMPs else { return nil }
        var mps: [MP] = []
        for _ in 0..<nmp {
            guard let n = r.name(16), let unit = r.u8(), let lo = r.f32(), let mean = r.f32(), let hi = r.f32() else { return nil }
            mps.append(MP(name: n, unit: unit, min: lo, mean: mean, max: hi))
        }
        guard let nsite = r.u8(), nsite <= maxSites else { return nil }
        var sites: [Site] = []
        for _ in 0..<nsite {
            guard let n = r.name(16), let sp = r.f32(), let imp = r.f32() else { return nil }
            sites.append(Site(name: n, setPointW: sp, importW: imp))
        }
        return MinuteRecord(minuteStart: start, secondsCovered: covered, clockSynchronised: flags & 1 != 0, clockJumped: flags & 2 != 0,
                            mode: mode, secondsNotNormal: notNormal, mps: mps, sites: sites)
    }
}

/// Folds the control cycle's samples into minute records. Pure: the shell feeds it every cycle with the
/// names of the points and sites, and writes what it returns.
public struct MinuteAccumulator {
    public var maxCycleSeconds: Double = 5
    private struct MPSum { var min = Double.infinity, max = -Double.infinity, weighted = 0.0, seconds = 0.0 }
    private struct SiteSum { var spWeighted = 0.0, seconds = 0.0, importWeighted = 0.0, importSeconds = 0.0 }
    private var minute: UInt32?
    private var names: (mps: [String], sites: [String]) = ([], [])
    private var units: [UInt8] = []
    private var covered = 0.0, notNormal = 0.0
    private var synchronised = true, jumped = false
    private var mode: UInt8 = 0
    private var mpSums: [MPSum] = []
    private var siteSums: [SiteSum] = []
    private var last: (wallNs: UInt64, monoNs: UInt64)?

    public init() {}

    /// Adds one cycle; returns the minute this cycle closed (it crossed into the next, or the names changed).
    public mutating func add(_ sample: SampleRecord, mpNames: [String], mpUnits: [UInt8] = [], siteNames: [String], wallNs: UInt64, monoNs: UInt64,
                             clockSynchronised: Bool) -> MinuteRecord? {
        var dt = 0.0
        var jump = false
        if let l = last {
            dt = Swift.max(0, Double(Int64(bitPattern: monoNs &- l.monoNs)) / 1e9)
            jump = abs(Double(Int64(bitPattern: wallNs &- l.wallNs)) / 1e9 - dt) > 2
            dt = Swift.min(dt, maxCycleSeconds)
        }
        last = (wallNs, monoNs)
        let s = wallNs / 1_000_000_000
        let m = UInt32(truncatingIfNeeded: s - s % 60)
        var closed: MinuteRecord?
        if minute != m || names.mps != mpNames || names.sites != siteNames || units != mpUnits {
            if jump { jumped = true }
            closed = finish()
            minute = m
            names = (mpNames, siteNames)
            units = mpUnits
            mpSums = Array(repeating: MPSum(), count: Swift.min(mpNames.count, MinuteRecord.maxMPs))
            siteSums = Array(repeating: SiteSum(), count: Swift.min(siteNames.count, MinuteRecord.maxSites))
        }
        if jump { jumped = true }
        if !clockSynchronised { synchronised = false }
        covered += dt
        mode = sample.mode
        if sample.mode != 0 { notNormal += dt }
        for i in mpSums.indices where i < sample.mps.count {
            let v = sample.mps[i]
            guard v.quality < 2, v.value.isFinite else { continue }
            let x = Double(v.value)
            mpSums[i].min = Swift.min(mpSums[i].min, x)
            mpSums[i].max = Swift.max(mpSums[i].max, x)
            mpSums[i].weighted += x * dt
            mpSums[i].seconds += dt
        }
        for j in siteSums.indices where j < sample.sites.count {
            let site = sample.sites[j]
            siteSums[j].spWeighted += Double(site.setPointW) * dt
            siteSums[j].seconds += dt
            if site.importW.isFinite { siteSums[j].importWeighted += Double(site.importW) * dt; siteSums[j].importSeconds += dt }
        }
        return closed
    }

    /// Closes the open minute (at stop, before a reload).
    public mutating func finish() -> MinuteRecord? {
        defer { minute = nil; covered = 0; notNormal = 0; synchronised = true; jumped = false }
        guard let start = minute else { return nil }
        let mps = zip(names.mps, mpSums).enumerated().map { i, x in
            let (n, s) = x
            return MinuteRecord.MP(name: n, unit: i < units.count ? units[i] : 255, min: s.min.isFinite ? Float(s.min) : .nan,
                            mean: s.seconds > 0 ? Float(s.weighted / s.seconds) : (s.min.isFinite ? Float(s.min) : .nan),
                            max: s.max.isFinite ? Float(s.max) : .nan)
        }
        let sites = zip(names.sites, siteSums).map { n, s in
            MinuteRecord.Site(name: n, setPointW: s.seconds > 0 ? Float(s.spWeighted / s.seconds) : .nan,
                              importW: s.importSeconds > 0 ? Float(s.importWeighted / s.importSeconds) : .nan)
        }
        return MinuteRecord(minuteStart: start, secondsCovered: (covered * 10).rounded() / 10, clockSynchronised: synchronised, clockJumped: jumped,
                            mode: mode, secondsNotNormal: (notNormal * 10).rounded() / 10, mps: mps, sites: sites)
    }
}
