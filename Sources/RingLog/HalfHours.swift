/// The half-hours ring: one record per UTC half hour (settlement period) — what the DNO audits, kept
/// for years. Records are self-describing: each carries the names, units and thresholds it was judged
/// against, so a record read in five years needs no config of that time.
public struct HalfHourRecord: Sendable, Equatable {
    public static let recordSize = 1024
    public static let periodSeconds: UInt32 = 1800
    public static let maxMPs = 8, maxSites = 8

    public struct MP: Sendable, Equatable {
        public var name: String
        /// 0 current (A), 1 apparent power (VA), 2 voltage (V).
        public var unit: UInt8
        /// True when the limit is a lower one (a voltage that must not sag below it).
        public var lowerLimit: Bool
        public var limit: Float
        /// NaN: no trip threshold.
        public var trip: Float
        /// NaN when no usable value was measured in the period.
        public var min: Float
        public var mean: Float
        public var max: Float
        /// Seconds beyond the limit (above an upper one, below a lower one) and beyond the trip threshold.
        public var secondsBeyondLimit: Double
        public var secondsBeyondTrip: Double
        /// Seconds without a usable value (meter bad or lost).
        public var secondsBad: Double

        public init(name: String, unit: UInt8, lowerLimit: Bool, limit: Float, trip: Float, min: Float, mean: Float, max: Float,
                    secondsBeyondLimit: Double, secondsBeyondTrip: Double, secondsBad: Double) {
            self.name = name; self.unit = unit; self.lowerLimit = lowerLimit; self.limit = limit; self.trip = trip
            self.min = min; self.mean = mean; self.max = max
            self.secondsBeyondLimit = secondsBeyondLimit; self.secondsBeyondTrip = secondsBeyondTrip; self.secondsBad = secondsBad
        }
    }

    public struct Site: Sendable, Equatable {
        public var name: String
        public var ceilingW: Float
        public var setPointMinW: Float
        public var setPointMeanW: Float
        /// kWh imported at the point of connection; NaN when the site's import is not metered.
        public var importedKWh: Float
        /// kWh the site was denied: ∫ (ceiling − set point) dt over the time it was restricted and drawing
        /// at least 95 % of its set point. When the import is not metered, over all restricted time — an
        /// upper bound (`importMetered` false).
        public var curtailedKWh: Float
        /// Seconds the set point was below the ceiling.
        public var secondsRestricted: Double
        public var importMetered: Bool

        public init(name: String, ceilingW: Float, setPointMinW: Float, setPointMeanW: Float, importedKWh: Float, curtailedKWh: Float,
                    secondsRestricted: Double, importMetered: Bool) {
            self.name = name; self.ceilingW = ceilingW; self.setPointMinW = setPointMinW; self.setPointMeanW = setPointMeanW
            self.importedKWh = importedKWh; self.curtailedKWh = curtailedKWh; self.secondsRestricted = secondsRestricted
            self.importMetered = importMetered
        }
    }

    /// UTC seconds at the start of the half hour.
    public var periodStart: UInt32
    /// Seconds of control cycles the record covers (less than 1800 when the box started, stopped or
    /// was down in the period; a period split by a restart has two records).
    public var secondsCovered: Double
    /// The wall clock jumped in this period (seconds are counted on the monotonic clock regardless).
    public var clockJumped: Bool
    /// The wall clock was synchronised in every cycle of the half hour (as the minutes have it); false
    /// when it was not in some cycle; nil when not recorded — a half hour written before the flag existed
    /// (0.1.0 rings), or folded from samples that did not say.
    public var clockSynchronised: Bool?
    /// Seconds in each mode, indexed like `ModeCodes.names`.
    public var secondsInMode: [Double]
    public var mps: [MP]
    public var sites: [Site]

    public init(periodStart: UInt32, secondsCovered: Double, clockJumped: Bool, secondsInMode: [Double], mps: [MP], sites: [Site],
                clockSynchronised: Bool? = nil) {
        self.periodStart = periodStart; self.secondsCovered = secondsCovered; self.clockJumped = clockJumped
        self.secondsInMode = secondsInMode; self.mps = mps; self.sites = sites; self.clockSynchronised = clockSynchronised
    }

    static let nameBytes = 16

    public func encode() -> [UInt8] {
        var b = Bytes()
        b.u32(periodStart); b.ds(secondsCovered); b.u8(clockJumped ? 1 : 0)
        b.u8(UInt8(ModeCodes.names.count))
        for i in ModeCodes.names.indices { b.ds(i < secondsInMode.count ? secondsInMode[i] : 0) }
        b.u8(UInt8(Swift.min(mps.count, Self.maxMPs)))
        for m in mps.prefix(Self.maxMPs) {
            b.name(m.name, Self.nameBytes); b.u8(m.unit); b.u8(m.lowerLimit ? 1 : 0)
            for f in [m.limit, m.trip, m.min, m.mean, m.max] { b.f32(f) }
            b.ds(m.secondsBeyondLimit); b.ds(m.secondsBeyondTrip); b.ds(m.secondsBad)
        }
        b.u8(UInt8(Swift.min(sites.count, Self.maxSites)))
        for s in sites.prefix(Self.maxSites) {
            b.name(s.name, Self.nameBytes)
            for f in [s.ceilingW, s.setPointMinW, s.setPointMeanW, s.importedKWh, s.curtailedKWh] { b.f32(f) }
            b.ds(s.secondsRestricted); b.u8(s.importMetered ? 1 : 0)
        }
        b.clock(clockSynchronised)
        return b.bytes
    }

    public static func decode(_ bytes: [UInt8]) -> HalfHourRecord? {
        var r = Reader(bytes)
        guard let start = r.u32(), let covered = r.ds(), let flags = r.u8(), let modes = r.u8() else { return nil }
        var inMode: [Double] = []
        for _ in 0..<modes { guard let s = r.ds() else { return nil }; inMode.append(s) }
        guard let nmp = r.u8(), nmp <= maxMPs else { return nil }
        var mps: [MP] = []
        for _ in 0..<nmp {
            guard let name = r.name(nameBytes), let unit = r.u8(), let lower = r.u8(), let limit = r.f32(), let trip = r.f32(),
                  let mn = r.f32(), let mean = r.f32(), let mx = r.f32(), let bl = r.ds(), let bt = r.ds(), let bad = r.ds() else { return nil }
            mps.append(MP(name: name, unit: unit, lowerLimit: lower != 0, limit: limit, trip: trip, min: mn, mean: mean, max: mx,
                          secondsBeyondLimit: bl, secondsBeyondTrip: bt, secondsBad: bad))
        }
        guard let nsite = r.u8(), nsite <= maxSites else { return nil }
        var sites: [Site] = []
        for _ in 0..<nsite {
            guard let name = r.name(nameBytes), let ceiling = r.f32(), let spMin = r.f32(), let spMean = r.f32(), let imp = r.f32(),
                  let curt = r.f32(), let restricted = r.ds(), let metered = r.u8() else { return nil }
            sites.append(Site(name: name, ceilingW: ceiling, setPointMinW: spMin, setPointMeanW: spMean, importedKWh: imp, curtailedKWh: curt,
                              secondsRestricted: restricted, importMetered: metered != 0))
        }
        return HalfHourRecord(periodStart: start, secondsCovered: covered, clockJumped: flags & 1 != 0, secondsInMode: inMode, mps: mps, sites: sites,
                              clockSynchronised: r.clock())
    }

    public static let unitNames = ["A", "VA", "V"]
}

/// Folds control-cycle samples into half-hour records. Pure: times come in as arguments.
///
/// Each sample stands for the monotonic time since the one before it (at most `maxCycleSeconds`, so a
/// stall is not credited to whatever the box saw last) and belongs to the UTC half hour its wall time
/// falls in. A sample in another half hour than the open record closes that record.
public struct HalfHourAccumulator: Sendable {
    public struct MPSpec: Sendable {
        public var name: String
        public var unit: UInt8
        public var lowerLimit: Bool
        public var limit: Double
        public var trip: Double?
        public init(name: String, unit: UInt8, lowerLimit: Bool, limit: Double, trip: Double?) {
            self.name = name; self.unit = unit; self.lowerLimit = lowerLimit; self.limit = limit; self.trip = trip
        }
    }
    public struct SiteSpec: Sendable {
        public var name: String
        public var ceilingW: Double
        public init(name: String, ceilingW: Double) { self.name = name; self.ceilingW = ceilingW }
    }

    public let mpSpecs: [MPSpec]
    public let siteSpecs: [SiteSpec]
    public var maxCycleSeconds: Double = 5

    private struct MPSum { var min = Double.infinity, max = -Double.infinity, weighted = 0.0, seconds = 0.0, beyondLimit = 0.0, beyondTrip = 0.0, bad = 0.0 }
    private struct SiteSum { var spMin = Double.infinity, spWeighted = 0.0, seconds = 0.0, importedWs = 0.0, metered = false, unmetered = false, curtailedWs = 0.0, restricted = 0.0 }

    private var period: UInt32?
    private var covered = 0.0
    private var clockJumped = false
    /// Some cycle's clock was not synchronised; some cycle's state was not known.
    private var unsynchronised = false, syncUnknown = false
    private var inMode = [Double](repeating: 0, count: ModeCodes.names.count)
    private var mpSums: [MPSum] = []
    private var siteSums: [SiteSum] = []
    private var last: (wallNs: UInt64, monoNs: UInt64)?

    public init(mps: [MPSpec], sites: [SiteSpec]) {
        mpSpecs = Array(mps.prefix(HalfHourRecord.maxMPs))
        siteSpecs = Array(sites.prefix(HalfHourRecord.maxSites))
        mpSums = Array(repeating: MPSum(), count: mpSpecs.count)
        siteSums = Array(repeating: SiteSum(), count: siteSpecs.count)
    }

    public static func periodStart(wallNs: UInt64) -> UInt32 {
        let s = wallNs / 1_000_000_000
        return UInt32(truncatingIfNeeded: s - s % UInt64(HalfHourRecord.periodSeconds))
    }

    /// Adds one cycle's sample; returns the record of a half hour this sample closed, if any.
    public mutating func add(_ sample: SampleRecord, wallNs: UInt64, monoNs: UInt64) -> HalfHourRecord? {
        var dt = 0.0
        var jumped = false
        if let l = last {
            dt = Swift.max(0, Double(Int64(bitPattern: monoNs &- l.monoNs)) / 1e9)
            let wallDt = Double(Int64(bitPattern: wallNs &- l.wallNs)) / 1e9
            jumped = abs(wallDt - dt) > 2
            dt = Swift.min(dt, maxCycleSeconds)
        }
        last = (wallNs, monoNs)
        let p = Self.periodStart(wallNs: wallNs)
        var closed: HalfHourRecord?
        if period != p {
            // A step of the wall clock that leaves the half hour closes it: both halves carry the flag.
            if jumped { clockJumped = true }
            closed = finish()
            period = p
        }
        if jumped { clockJumped = true }
        switch sample.clockSynchronised {
        case false?: unsynchronised = true
        case nil: syncUnknown = true
        case true?: break
        }
        covered += dt
        if Int(sample.mode) < inMode.count { inMode[Int(sample.mode)] += dt }
        for (i, spec) in mpSpecs.enumerated() {
            guard i < sample.mps.count else { mpSums[i].bad += dt; continue }
            let m = sample.mps[i]
            guard m.quality < 2, m.value.isFinite else { mpSums[i].bad += dt; continue }
            let v = Double(m.value)
            mpSums[i].min = Swift.min(mpSums[i].min, v)
            mpSums[i].max = Swift.max(mpSums[i].max, v)
            mpSums[i].weighted += v * dt
            mpSums[i].seconds += dt
            let beyond = { (t: Double) in spec.lowerLimit ? v < t : v > t }
            if beyond(spec.limit) { mpSums[i].beyondLimit += dt }
            if let t = spec.trip, beyond(t) { mpSums[i].beyondTrip += dt }
        }
        for (j, spec) in siteSpecs.enumerated() where j < sample.sites.count {
            let s = sample.sites[j]
            let sp = Double(s.setPointW)
            siteSums[j].spMin = Swift.min(siteSums[j].spMin, sp)
            siteSums[j].spWeighted += sp * dt
            siteSums[j].seconds += dt
            let imp = Double(s.importW)
            if imp.isFinite { siteSums[j].importedWs += imp * dt; siteSums[j].metered = true } else { siteSums[j].unmetered = true }
            if sp < spec.ceilingW - 1 {
                siteSums[j].restricted += dt
                if !imp.isFinite || imp >= 0.95 * sp { siteSums[j].curtailedWs += (spec.ceilingW - sp) * dt }
            }
        }
        return closed
    }

    /// Closes the open half hour (at stop, or when a sample crosses into the next one).
    public mutating func finish() -> HalfHourRecord? {
        defer {
            period = nil
            covered = 0
            clockJumped = false
            unsynchronised = false
            syncUnknown = false
            inMode = [Double](repeating: 0, count: ModeCodes.names.count)
            mpSums = Array(repeating: MPSum(), count: mpSpecs.count)
            siteSums = Array(repeating: SiteSum(), count: siteSpecs.count)
        }
        guard let p = period else { return nil }
        func sec(_ s: Double) -> Double { (s * 10).rounded() / 10 }
        let mps = zip(mpSpecs, mpSums).map { spec, s in
            HalfHourRecord.MP(name: spec.name, unit: spec.unit, lowerLimit: spec.lowerLimit, limit: Float(spec.limit), trip: Float(spec.trip ?? .nan),
                              min: s.min.isFinite ? Float(s.min) : .nan, mean: s.seconds > 0 ? Float(s.weighted / s.seconds) : (s.min.isFinite ? Float(s.min) : .nan),
                              max: s.max.isFinite ? Float(s.max) : .nan,
                              secondsBeyondLimit: sec(s.beyondLimit), secondsBeyondTrip: sec(s.beyondTrip), secondsBad: sec(s.bad))
        }
        let sites = zip(siteSpecs, siteSums).map { spec, s in
            HalfHourRecord.Site(name: spec.name, ceilingW: Float(spec.ceilingW), setPointMinW: s.spMin.isFinite ? Float(s.spMin) : .nan,
                                setPointMeanW: s.seconds > 0 ? Float(s.spWeighted / s.seconds) : (s.spMin.isFinite ? Float(s.spMin) : .nan),
                                importedKWh: s.metered ? Float(s.importedWs / 3.6e6) : .nan, curtailedKWh: Float(s.curtailedWs / 3.6e6),
                                secondsRestricted: sec(s.restricted), importMetered: s.metered && !s.unmetered)
        }
        return HalfHourRecord(periodStart: p, secondsCovered: sec(covered), clockJumped: clockJumped, secondsInMode: inMode.map(sec), mps: mps, sites: sites,
                              clockSynchronised: unsynchronised ? false : syncUnknown ? nil : true)
    }
}

/// Merges records of the same half hour (a restart splits one into two) for the audit.
extension HalfHourRecord {
    public func merged(with o: HalfHourRecord) -> HalfHourRecord {
        let a = Double(secondsCovered), b = Double(o.secondsCovered)
        func wmean(_ x: Float, _ y: Float) -> Float {
            if !x.isFinite { return y }
            if !y.isFinite { return x }
            return a + b > 0 ? Float((Double(x) * a + Double(y) * b) / (a + b)) : x
        }
        func fmin(_ x: Float, _ y: Float) -> Float { x.isFinite ? (y.isFinite ? Swift.min(x, y) : x) : y }
        func fmax(_ x: Float, _ y: Float) -> Float { x.isFinite ? (y.isFinite ? Swift.max(x, y) : x) : y }
        func fsum(_ x: Float, _ y: Float) -> Float { x.isFinite ? (y.isFinite ? x + y : x) : y }
        func add(_ x: Double, _ y: Double) -> Double { x + y }
        var r = self
        r.secondsCovered = add(secondsCovered, o.secondsCovered)
        r.clockJumped = clockJumped || o.clockJumped
        // Not synchronised in either part wins; then unknown; synchronised only if both were.
        r.clockSynchronised = clockSynchronised == false || o.clockSynchronised == false ? false
            : clockSynchronised == nil || o.clockSynchronised == nil ? nil : true
        r.secondsInMode = (0..<Swift.max(secondsInMode.count, o.secondsInMode.count)).map {
            add($0 < secondsInMode.count ? secondsInMode[$0] : 0, $0 < o.secondsInMode.count ? o.secondsInMode[$0] : 0)
        }
        for m in o.mps {
            guard let k = r.mps.firstIndex(where: { $0.name == m.name }) else { r.mps.append(m); continue }
            r.mps[k].min = fmin(r.mps[k].min, m.min)
            r.mps[k].max = fmax(r.mps[k].max, m.max)
            r.mps[k].mean = wmean(r.mps[k].mean, m.mean)
            r.mps[k].secondsBeyondLimit = add(r.mps[k].secondsBeyondLimit, m.secondsBeyondLimit)
            r.mps[k].secondsBeyondTrip = add(r.mps[k].secondsBeyondTrip, m.secondsBeyondTrip)
            r.mps[k].secondsBad = add(r.mps[k].secondsBad, m.secondsBad)
        }
        for s in o.sites {
            guard let k = r.sites.firstIndex(where: { $0.name == s.name }) else { r.sites.append(s); continue }
            r.sites[k].setPointMinW = fmin(r.sites[k].setPointMinW, s.setPointMinW)
            r.sites[k].setPointMeanW = wmean(r.sites[k].setPointMeanW, s.setPointMeanW)
            r.sites[k].importedKWh = fsum(r.sites[k].importedKWh, s.importedKWh)
            r.sites[k].curtailedKWh = fsum(r.sites[k].curtailedKWh, s.curtailedKWh)
            r.sites[k].secondsRestricted = add(r.sites[k].secondsRestricted, s.secondsRestricted)
            r.sites[k].importMetered = r.sites[k].importMetered && s.importMetered
        }
        return r
    }
}

// Little-endian byte building and reading for the record payloads (samples and half hours).
struct Bytes {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    /// Seconds as tenths in 16 bits (at most 6553.5 s: a half hour fits with room).
    mutating func ds(_ seconds: Double) { u16(UInt16(Swift.max(0, Swift.min(65_535, (seconds * 10).rounded())))) }
    /// The clock byte that ends a sample or half-hour payload: 1 synchronised, 0 not, 2 not known.
    /// Payloads written before it existed end before it, and read as not known.
    mutating func clock(_ synchronised: Bool?) { u8(synchronised.map { $0 ? 1 : 0 } ?? 2) }
    mutating func name(_ s: String, _ n: Int) {
        var b = Array(s.utf8.prefix(n))
        while let last = b.last, last & 0xC0 == 0x80 { b.removeLast() }
        if let last = b.last, last >= 0xC0 { b.removeLast() }
        bytes += b + [UInt8](repeating: 0, count: n - b.count)
    }
}

struct Reader {
    let b: [UInt8]
    var i = 0
    init(_ b: [UInt8]) { self.b = b }
    mutating func u8() -> UInt8? { guard i < b.count else { return nil }; defer { i += 1 }; return b[i] }
    mutating func u16() -> UInt16? { guard i + 2 <= b.count else { return nil }; defer { i += 2 }; return UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    mutating func u32() -> UInt32? {
        guard i + 4 <= b.count else { return nil }
        defer { i += 4 }
        return (0..<4).reduce(0) { $0 | UInt32(b[i + $1]) << (8 * $1) }
    }
    mutating func f32() -> Float? { u32().map { Float(bitPattern: $0) } }
    /// The clock byte (`Bytes.clock`): nil when absent (an older record) or not known.
    mutating func clock() -> Bool? {
        switch u8() {
        case 1?: true
        case 0?: false
        default: nil
        }
    }
    mutating func ds() -> Double? { u16().map { Double($0) / 10 } }
    mutating func name(_ n: Int) -> String? {
        guard i + n <= b.count else { return nil }
        defer { i += n }
        return String(decoding: b[i..<(i + n)].prefix { $0 != 0 }, as: UTF8.self)
    }
}
