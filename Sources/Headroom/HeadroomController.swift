/// The control core: time and measurements in, set points and reasons out (DESIGN.md §3). Pure: it
/// owns no clock, thread or I/O, so every behaviour is a table-driven, replayable test.
public struct HeadroomController: Sendable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Reductions are taken from the current set point (no site meter needed).
        case incremental
        /// Reductions are taken from the site's metered import (PoC meter): headroom = limit − margin
        /// − (constraint − site).
        case direct
    }

    /// Everything measured this tick.
    public struct Inputs: Sendable, Equatable {
        /// Per MP id: the values (one per phase, or one), or nil when the sample is not usable.
        public var mp: [String: [Double]?]
        /// Per site id: the metered import (W) in direct mode; nil if unknown.
        public var siteImportW: [String: Double]
        /// Seconds after local midnight, for TCC profiles and schedules; nil while the wall clock is not
        /// known to be synchronised: then the profile's minimum and every schedule window hold.
        public var secondsOfDay: Double?

        public init(mp: [String: [Double]?], siteImportW: [String: Double] = [:], secondsOfDay: Double? = 0) {
            self.mp = mp
            self.siteImportW = siteImportW
            self.secondsOfDay = secondsOfDay
        }
    }

    /// One site's decision.
    public struct SiteDecision: Sendable, Equatable {
        public var site: String
        /// The set point (W); the cycle's shaper turns it into what the charger takes.
        public var setPointW: Double
        public var boundBy: LimitSource
        public var reason: String
    }

    public struct Decision: Sendable, Equatable {
        public var sites: [SiteDecision]
        /// MP ids that request a trip (FailSafe decides what to do).
        public var tripRequests: [String]
        /// MP ids without a usable value.
        public var blind: [String]
    }

    public let mode: Mode
    public let siteConfigs: [SiteConfig]
    public private(set) var mps: [MeasurementPoint]
    public var sources: [String: SiteSources]
    private var sent: [String: Double] = [:]
    private var lastTick: Double?

    /// - Parameter maxGap: a gap in an MP's values longer than this (the blind time) restarts its
    ///   ride-through and trip delay; shorter gaps keep them running.
    public init(mode: Mode, mps: [MeasurementPointConfig], sites: [SiteConfig], sources: [String: SiteSources] = [:],
                maxGap: Double = .infinity) throws(ConfigError) {
        var errors = mps.flatMap { $0.validate() } + sites.flatMap { $0.validate() }
        if sites.isEmpty { errors.append("at least one site is needed") }
        if Set(mps.map(\.id)).count != mps.count { errors.append("measurement point ids must be unique") }
        if Set(sites.map(\.id)).count != sites.count { errors.append("site ids must be unique") }
        guard errors.isEmpty else { throw ConfigError(errors: errors) }
        self.mode = mode
        self.mps = mps.map { c in var m = MeasurementPoint(c); m.maxGap = maxGap; return m }
        self.siteConfigs = sites.sorted { $0.connectionOrder < $1.connectionOrder }
        self.sources = sources
    }

    /// The set points last decided (W), per site; the floor before the first tick.
    public func setPoint(_ site: String) -> Double {
        sent[site] ?? siteConfigs.first { $0.id == site }!.floorW
    }

    public mutating func tick(now: Double, _ inputs: Inputs) -> Decision {
        let dt = lastTick.map { max(0, now - $0) } ?? 0
        lastTick = now
        let totalCeiling = siteConfigs.reduce(0) { $0 + $1.ceilingW }
        let metered = siteConfigs.compactMap { inputs.siteImportW[$0.id] }
        // Incremental: a reduction is taken from the set points, or from less where a site's PoC meter shows
        // it draws less — a cut spent above what a site draws changes nothing at the constraint.
        let base = mode == .direct && metered.count == siteConfigs.count
            ? metered.reduce(0, +)
            : siteConfigs.reduce(0) { $0 + min(setPoint($1.id), inputs.siteImportW[$1.id] ?? .infinity) }

        // Each MP proposes a limit on the group's total import.
        var groupLimit: (Double, LimitSource)? = nil
        var trips: [String] = []
        var blind: [String] = []
        for i in mps.indices {
            let id = mps[i].config.id
            let value = inputs.mp[id] ?? nil
            mps[i].update(now: now, phases: value, baseW: base, baseMetered: metered.count == siteConfigs.count, ceilingW: totalCeiling)
            if mps[i].state == .blind { blind.append(id) }
            if mps[i].tripRequested { trips.append(id) }
            if let l = mps[i].limitW, l < (groupLimit?.0 ?? .infinity) { groupLimit = (l, .measurementPoint(id)) }
        }

        // LIFO: floors first, then what the constraint allows goes to the earliest connections.
        var remaining = (groupLimit?.0 ?? .infinity) - siteConfigs.reduce(0) { $0 + $1.floorW }
        var decisions: [SiteDecision] = []
        for site in siteConfigs {
            var proposals = (sources[site.id] ?? SiteSources()).proposals(now: now, secondsOfDay: inputs.secondsOfDay)
            if let (_, src) = groupLimit {
                // Below the floor when even the floors do not fit: clamped below, with the reason kept.
                proposals.append((site.floorW + min(site.ceilingW - site.floorW, remaining), src))
            }
            var target = site.ceilingW
            var bound = LimitSource.ceiling
            var why = "nothing restricts: rated \(fmtK(site.ceilingW))"
            for (w, src) in proposals where w < target {
                target = w
                bound = src
                why = "\(src) allows \(fmtK(w))"
            }
            if target < site.floorW {
                target = site.floorW
                bound = .floor
                why = "held at firm \(fmtK(site.floorW)) (\(why))"
            }
            if groupLimit != nil { remaining -= max(0, min(site.ceilingW, target) - site.floorW) }

            // Drop fast, rise slowly.
            let previous = sent[site.id] ?? site.floorW
            var sp = target
            if target > previous {
                let capped = previous + site.rampUpWPerSecond * dt
                if capped < target {
                    sp = capped
                    bound = .ramp
                    why = "ramping up to \(fmtK(target)) (\(why))"
                }
            }
            sent[site.id] = sp
            decisions.append(SiteDecision(site: site.id, setPointW: sp, boundBy: bound, reason: why))
        }
        return Decision(sites: decisions, tripRequests: trips, blind: blind)
    }

    public func mp(_ id: String) -> MeasurementPoint? { mps.first { $0.config.id == id } }

    /// After a reload that changed no site: what was decided so far carries over — the set points sent,
    /// the state of every MP whose configuration is unchanged, the overrides and remote leases.
    public mutating func carryOver(from old: HeadroomController) {
        for i in mps.indices {
            if let o = old.mps.first(where: { $0.config == mps[i].config }) {
                var m = o
                m.maxGap = mps[i].maxGap
                mps[i] = m
            }
        }
        for site in siteConfigs {
            if let w = old.sent[site.id] { sent[site.id] = w }
            let was = old.sources[site.id]
            sources[site.id, default: SiteSources()].override = was?.override
            sources[site.id, default: SiteSources()].remote = was?.remote
        }
        lastTick = old.lastTick
    }

    /// The supervisor holds the sites at `totalW` (below what the MPs allow), since the monotonic time
    /// `since`: every MP's limit follows, and releases wait for the sites to settle (MeasurementPoint.hold).
    public mutating func hold(atTotal totalW: Double, since: Double) {
        for i in mps.indices { mps[i].hold(atTotal: totalW, since: since) }
    }

    /// After a confirmed trip: every MP's trip delay runs again on newer samples (no cascade).
    public mutating func restartTripDelays(now: Double) {
        for i in mps.indices { mps[i].restartTripDelay(now: now) }
    }

    /// What the site was actually given, after the supervisor (fail-safe, its recovery ramp, a trip).
    /// When that is below what this controller decided, it becomes the controller's base: increases are
    /// ramped from it, and in incremental mode a reduction is taken from it — not from a set point the
    /// site never had (the soak found regulation steps spent on such a phantom after a fail-safe).
    public mutating func noteApplied(site: String, watts: Double) {
        if let s = sent[site], watts < s { sent[site] = watts }
    }
}

public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var errors: [String]
    public var description: String { errors.joined(separator: "\n") }
}

func fmtK(_ w: Double) -> String { "\(fmt(w / 1000)) kW" }
