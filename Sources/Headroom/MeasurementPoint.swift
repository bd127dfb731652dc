/// One measured quantity at the constraint and its thresholds (DESIGN.md §3; Charge Project §6.1.2).
///
/// Pure: time (seconds on the monotonic clock) and values come in as arguments; no clocks, no I/O.
public struct MeasurementPointConfig: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// Phase current in A (per phase: the worst phase governs).
        case current
        /// Apparent power in VA.
        case apparentPower = "apparent_power"
        /// Voltage in V (per phase: the worst phase governs).
        case voltage
    }

    /// Thresholds on one side. For an upper set, in descending order:
    /// trip > upper > releaseZone > releaseTrigger. A lower set mirrors it:
    /// trip < lower < releaseZone < releaseTrigger.
    public struct Thresholds: Sendable, Equatable {
        public var trip: Double?
        public var tripDelay: Double
        public var limit: Double
        public var releaseZone: Double
        public var releaseTrigger: Double

        public init(trip: Double? = nil, tripDelay: Double = 10, limit: Double, releaseZone: Double, releaseTrigger: Double) {
            self.trip = trip
            self.tripDelay = tripDelay
            self.limit = limit
            self.releaseZone = releaseZone
            self.releaseTrigger = releaseTrigger
        }
    }

    public var id: String
    public var kind: Kind
    /// How much the value moves per W of site import, with sign: +1/√3/400 A per W for a phase current
    /// at 400 V, ≈ +1 VA per W for apparent power, negative for a voltage that sags with load.
    public var sensitivity: Double
    public var upper: Thresholds?
    public var lower: Thresholds?
    /// Regulation brings the value back inside the limit by this much (value units).
    public var regulateMargin: Double
    /// A value beyond the limit for less than this is a transient (motor start): no action.
    public var rideThrough: Double
    /// While still beyond the limit, repeat the reduction this often.
    public var regulateInterval: Double
    /// While in the release trigger zone, increase at most this often…
    public var releaseInterval: Double
    /// …by what it measures as room up to the release zone, and at most this much (W of site import)
    /// per step (infinity: no cap beyond the measured room).
    public var rampW: Double
    /// Time constant of the filter the regulate and release decisions see (trip sees the raw value).
    public var filterTimeConstant: Double
    /// A constraint that is never empty: a value below this is not believed (an open CT reads 0).
    public var lowestBelievable: Double?

    public init(id: String, kind: Kind, sensitivity: Double, upper: Thresholds? = nil, lower: Thresholds? = nil,
                regulateMargin: Double, rideThrough: Double = 2, regulateInterval: Double = 5,
                releaseInterval: Double = 10, rampW: Double = 5_000, filterTimeConstant: Double = 2, lowestBelievable: Double? = nil) {
        self.lowestBelievable = lowestBelievable
        self.id = id
        self.kind = kind
        self.sensitivity = sensitivity
        self.upper = upper
        self.lower = lower
        self.regulateMargin = regulateMargin
        self.rideThrough = rideThrough
        self.regulateInterval = regulateInterval
        self.releaseInterval = releaseInterval
        self.rampW = rampW
        self.filterTimeConstant = filterTimeConstant
    }

    /// Errors that make the thresholds meaningless, each naming the field and the fix.
    public func validate() -> [String] {
        var errors: [String] = []
        if upper == nil && lower == nil { errors.append("\(id): needs upper or lower thresholds") }
        if let u = upper {
            if !(u.limit > u.releaseZone && u.releaseZone > u.releaseTrigger) {
                errors.append("\(id).upper: need limit > release_zone > release_trigger, got \(u.limit) > \(u.releaseZone) > \(u.releaseTrigger)")
            }
            if let t = u.trip, t <= u.limit { errors.append("\(id).upper.trip \(t) must be above the limit \(u.limit)") }
            if sensitivity <= 0 { errors.append("\(id).upper: sensitivity \(sensitivity) must be positive (more site import must raise the value)") }
        }
        if let l = lower {
            if !(l.limit < l.releaseZone && l.releaseZone < l.releaseTrigger) {
                errors.append("\(id).lower: need limit < release_zone < release_trigger, got \(l.limit) < \(l.releaseZone) < \(l.releaseTrigger)")
            }
            if let t = l.trip, t >= l.limit { errors.append("\(id).lower.trip \(t) must be below the limit \(l.limit)") }
            if sensitivity >= 0 { errors.append("\(id).lower: sensitivity \(sensitivity) must be negative (more site import must lower the value)") }
        }
        if regulateMargin < 0 { errors.append("\(id).regulate_margin \(regulateMargin) must not be negative") }
        if rampW <= 0 { errors.append("\(id).ramp \(rampW) W must be positive") }
        for (name, v) in [("ride_through", rideThrough), ("regulate_interval", regulateInterval),
                          ("release_interval", releaseInterval), ("filter", filterTimeConstant)] where v < 0 {
            errors.append("\(id).\(name)_s \(v) must not be negative")
        }
        return errors
    }
}

/// What an MP's state machine is doing.
public enum MPState: String, Sendable, Equatable {
    /// Inside the dead band or the release zone without releasing: no request.
    case holding
    /// Beyond the limit, waiting out the ride-through.
    case riding
    /// Beyond the limit: reductions requested.
    case regulating
    /// In the trigger zone (or still in the release zone): increases requested.
    case releasing
    /// No usable value: the MP holds its last limit; FailSafe decides what blindness means.
    case blind
}

/// The state machine of one MP. Its output is a limit on the total import of the sites behind the
/// constraint (W), or nil while it does not restrict.
public struct MeasurementPoint: Sendable {
    public let config: MeasurementPointConfig
    public private(set) var state: MPState = .holding
    /// The MP's current limit on site import (W); nil: not restricting.
    public private(set) var limitW: Double?
    /// The filtered value the decisions used last (worst phase).
    public private(set) var filtered: Double?
    /// True once the raw value has stayed beyond a trip threshold for its delay.
    public private(set) var tripRequested = false
    /// Why the MP is in its state, for the console.
    public private(set) var reason = "no value yet"

    private var lastTime: Double?
    private var beyondSince: Double?
    private var lastRegulate: Double?
    private var lastRelease: Double?
    private var tripSince: Double?
    /// When the last usable value arrived.
    private var lastValidAt: Double?
    /// A gap in the values longer than this (the blind time) starts the ride-through and trip delay
    /// afresh; a shorter one (a busy exception, a CRC error) keeps them running.
    public var maxGap: Double = .infinity

    public init(_ config: MeasurementPointConfig) { self.config = config }

    /// The constraint's trip delay runs again from now, on samples newer than this (after a trip was
    /// confirmed: the next site goes only if the constraint stays beyond its trip threshold that long).
    public mutating func restartTripDelay(now: Double) {
        tripRequested = false
        if tripSince != nil { tripSince = now }
    }

    /// One side mapped to "stress" coordinates, where more stress is worse and more site import
    /// raises stress: the lower set is the upper set seen in a mirror.
    private struct Side {
        var sign: Double
        var t: MeasurementPointConfig.Thresholds
        func stress(_ v: Double) -> Double { sign * v }
        var limit: Double { sign * t.limit }
        var releaseZone: Double { sign * t.releaseZone }
        var releaseTrigger: Double { sign * t.releaseTrigger }
        var trip: Double? { t.trip.map { sign * $0 } }
    }

    private var sides: [Side] {
        var s: [Side] = []
        if let u = config.upper { s.append(Side(sign: 1, t: u)) }
        if let l = config.lower { s.append(Side(sign: -1, t: l)) }
        return s
    }

    /// Advances the state machine.
    /// - Parameters:
    ///   - now: monotonic seconds.
    ///   - phases: the measured values (one per phase, or one), or nil when the sample is not usable.
    ///   - baseW: what a reduction is taken from: the site's metered import in direct mode, the
    ///     current set point (total of the sites) in incremental mode — or less where a site's PoC meter
    ///     shows it draws less.
    ///   - baseMetered: `baseW` is what meters show the sites draw (direct mode, or a PoC meter at every
    ///     site), not set points they may not have reached yet. A release then adds the room to the base
    ///     seen through the same filter as the value (the value less the base is the load beside the
    ///     sites, filtered: a site still rising to its set point is not counted as room), and needs no
    ///     settling time after a hold.
    ///   - ceilingW: the total the sites could ever import: limits at or above it do not restrict.
    public mutating func update(now: Double, phases: [Double]?, baseW: Double, baseMetered: Bool = false, ceilingW: Double) {
        defer { lastTime = now }
        guard let phases, !phases.isEmpty, phases.allSatisfy(\.isFinite) else {
            // A gap: the timers keep running (they reset only on a valid value back inside its
            // threshold, or after a gap longer than maxGap); a latched trip request clears — nothing
            // is known of the constraint now.
            if state != .blind { stateBeforeGap = state }
            state = .blind
            reason = "no usable value"
            tripRequested = false
            return
        }
        if let last = lastValidAt, now - last > maxGap {
            beyondSince = nil
            tripSince = nil
        }
        lastValidAt = now
        if state == .blind { state = stateBeforeGap }
        let sides = self.sides
        let gain = abs(config.sensitivity)

        // Trip: the raw worst value, beyond the trip threshold for the trip delay.
        var beyondTrip = false
        for side in sides {
            if let trip = side.trip, phases.map(side.stress).max()! > trip {
                beyondTrip = true
                if tripSince == nil { tripSince = now }
                if now - tripSince! >= side.t.tripDelay { tripRequested = true }
            }
        }
        if !beyondTrip { tripSince = nil; tripRequested = false }

        // The filtered value, per side in stress coordinates; the worst side governs.
        let raw = sides.map { s in phases.map(s.stress).max()! }
        let alpha: Double
        if let last = lastTime, config.filterTimeConstant > 0 {
            alpha = min(1, max(0, (now - last) / config.filterTimeConstant))
        } else {
            alpha = 1
        }
        var f = [Double](repeating: 0, count: sides.count)
        for i in sides.indices {
            let previous = filteredStress.count == sides.count ? filteredStress[i] : raw[i]
            f[i] = previous + alpha * (raw[i] - previous)
        }
        filteredStress = f
        if let b = filteredBase, baseMetered == filteredBaseMetered {
            filteredBase = b + alpha * (baseW - b)
        } else {
            filteredBase = baseW
            filteredBaseMetered = baseMetered
        }
        // The side with the least room decides.
        let worst = sides.indices.min { (sides[$0].limit - f[$0]) < (sides[$1].limit - f[$1]) }!
        let side = sides[worst]
        let v = f[worst]
        filtered = side.sign * v
        let target = side.limit - config.regulateMargin

        // Beyond the limit is judged on the raw worst value (the ride-through is what filters a motor
        // start), and a reduction takes the measured excess: one step settles a background step.
        let rawWorst = raw[worst]
        let current = limitW ?? ceilingW

        if rawWorst > side.limit {
            if beyondSince == nil { beyondSince = now }
            if now - beyondSince! < config.rideThrough {
                state = .riding
                reason = "beyond the limit \(show(side.t.limit)) for \(fmt(now - beyondSince!)) s, riding through"
                return
            }
            if state != .regulating || lastRegulate == nil || now - lastRegulate! >= config.regulateInterval {
                let excess = max(v, rawWorst) - target
                let before = min(current, baseW)
                var wanted = before - excess / gain
                // Without a meter on the sites the set point is the base, and a site may draw less than
                // it: a cut spent in that gap changes nothing. When the cuts of the last regulate
                // interval have not shown at the constraint (less than half of what they should have
                // taken off), nobody knows what the sites draw: to firm, then up by measured room.
                var unseen: Double? = nil
                if !baseMetered, let p = pendingCut, now - p.at >= config.regulateInterval, now - p.at <= 3 * config.regulateInterval,
                   p.value - v < 0.5 * p.watts * gain {
                    unseen = p.watts
                    wanted = 0
                }
                limitW = max(0, wanted)
                let cut = max(0, before - limitW!)
                if unseen == nil, let p = pendingCut, now - p.at < config.regulateInterval {
                    pendingCut = (p.at, p.value, p.watts + cut)
                } else {
                    pendingCut = cut > 0 && !baseMetered ? (now, v, cut) : nil
                }
                unseenCut = unseen
                lastRegulate = now
                // The first release after a reduction waits a full release interval.
                lastRelease = now
            }
            state = .regulating
            if let u = unseenCut {
                reason = "\(show(side.sign * max(v, rawWorst))) beyond the limit \(show(side.t.limit)): cuts of \(fmtK(u)) did not show, the sites draw less than their set points: to firm"
            } else {
                reason = "\(show(side.sign * max(v, rawWorst))) beyond the limit \(show(side.t.limit)): regulating to \(show(side.sign * target))"
            }
            return
        }
        beyondSince = nil

        let inTrigger = v <= side.releaseTrigger
        let inReleaseZone = v <= side.releaseZone
        if inReleaseZone { pendingCut = nil; unseenCut = nil }   // the cuts showed
        if limitW != nil && (inTrigger || (state == .releasing && inReleaseZone)) {
            let settled = baseMetered || heldSince.map { now - $0 >= config.releaseInterval } ?? true
            if settled && (lastRelease == nil || now - lastRelease! >= config.releaseInterval) {
                // What the MP measures as room, up to the release zone, above what the sites have now
                // (their set points, or their metered import in direct mode); at most ramp_kw a step.
                let room = max(0, (side.releaseZone - v) / gain)
                let base = baseMetered ? filteredBase! : baseW
                let next = min(max(current, base + room), current + config.rampW)
                limitW = next >= ceilingW ? nil : next
                pendingCut = nil
                lastRelease = now
                heldSince = nil
            }
            state = .releasing
            if !settled, let h = heldSince {
                reason = "\(show(filtered!)) in the release zone: holding \(fmt(config.releaseInterval - (now - h))) s more for the sites to settle"
            } else {
                let next = lastRelease.map { config.releaseInterval - (now - $0) } ?? 0
                reason = limitW == nil ? "released fully"
                    : next > 0 && lastRelease != now ? "\(show(filtered!)) in the release zone: at \(fmtK(limitW!)), the next release in \(fmt(next)) s"
                    : "\(show(filtered!)) in the release zone: releasing to \(fmtK(limitW!))"
            }
            return
        }
        if state == .regulating || state == .riding { lastRelease = now }
        state = .holding
        reason = limitW == nil ? "not restricting" : "\(show(filtered!)) in the dead band: holding"
    }

    /// While the supervisor holds the sites below what this MP allows (start-up, fail-safe, a trip), the
    /// MP's limit follows what they really have: on recovery the set point rises only by the room
    /// measured, not by a ramp towards an old limit. The hold began at `since` (monotonic s): its set
    /// points may be above what the sites drew before (a start with the chargers idle), and the value
    /// measured does not show that rise until they have followed it. So the first release after a hold
    /// waits until a release interval has passed since the hold began, as any release waits after the
    /// one before it; a hold longer than that releases at once on recovery.
    public mutating func hold(atTotal w: Double, since: Double) {
        if limitW.map({ w < $0 }) ?? true { limitW = w }
        lastRelease = nil
        heldSince = since
        pendingCut = nil
    }
    /// Cuts taken from an unmetered base within one regulate interval: when the first was taken, the
    /// filtered value then (stress coordinates) and the W they took off the set points.
    private var pendingCut: (at: Double, value: Double, watts: Double)?
    /// The cuts that did not show, when the last regulation went to firm for it (for the reason).
    private var unseenCut: Double?
    /// When the last hold began; cleared by the first release after it.
    private var heldSince: Double?
    private var filteredStress: [Double] = []
    /// The metered base through the value's filter (a release's base when the base is metered).
    private var filteredBase: Double?
    private var filteredBaseMetered = false
    /// The state before a gap, resumed when values return within maxGap.
    private var stateBeforeGap: MPState = .holding

    /// A value in the units an engineer reads it in (kVA, A, V).
    func show(_ v: Double) -> String {
        switch config.kind {
        case .apparentPower: "\(fmt(v / 1000)) kVA"
        case .current: "\(fmt(v)) A"
        case .voltage: "\(fmt(v)) V"
        }
    }

    /// Engineer reset (e.g. after a config change): forget limits and timers.
    public mutating func reset() { let g = maxGap; self = MeasurementPoint(config); maxGap = g }
}

/// Total: any Double, finite or not, prints (3.4e38 once trapped in Int()).
func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
}
