/// Where a site's limit came from; the console and the log show it with the set point.
public enum LimitSource: Sendable, Equatable, CustomStringConvertible {
    /// A measurement point at the constraint (its id).
    case measurementPoint(String)
    /// The site's timed capacity connection profile (half-hourly, from the connection study).
    case tcc
    /// The declared supply capacity (contracted static maximum).
    case dsc
    /// A dispatch schedule window (its name).
    case schedule(String)
    /// An engineer's override, until it expires.
    case override
    /// A set point from upstream (SCADA / central DERMS).
    case remote
    /// The firm floor: nothing above could be granted, the floor is guaranteed.
    case floor
    /// The rated ceiling: nothing restricts.
    case ceiling
    /// The increase ramp is still climbing to what the sources allow.
    case ramp

    public var description: String {
        switch self {
        case .measurementPoint(let id): "mp:\(id)"
        case .tcc: "tcc"
        case .dsc: "dsc"
        case .schedule(let n): "schedule:\(n)"
        case .override: "override"
        case .remote: "remote"
        case .floor: "floor"
        case .ceiling: "ceiling"
        case .ramp: "ramp"
        }
    }
}

/// A half-hourly limit profile for a day (48 values, W), as a TCC connection study gives it.
public struct HalfHourProfile: Sendable, Equatable {
    public var watts: [Double]

    public init(watts: [Double]) throws(ProfileError) {
        guard watts.count == 48 else { throw ProfileError(message: "a half-hourly profile needs 48 values, got \(watts.count)") }
        guard watts.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw ProfileError(message: "profile values must be finite and not negative") }
        self.watts = watts
    }

    /// The lowest half hour: what holds when the time of day cannot be trusted.
    public var minimum: Double { watts.min() ?? 0 }

    /// The value for a time of day in seconds after local midnight.
    public func value(secondsOfDay: Double) -> Double {
        let s = secondsOfDay.truncatingRemainder(dividingBy: 86_400)
        let i = Int((s < 0 ? s + 86_400 : s) / 1800)
        return watts[min(max(i, 0), 47)]
    }
}

public struct ProfileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// A window of a dispatch schedule: from `start` to `end` seconds of the day, at most `watts`.
public struct ScheduleWindow: Sendable, Equatable {
    public var name: String
    public var startSecondsOfDay: Double
    public var endSecondsOfDay: Double
    public var watts: Double

    public init(name: String, startSecondsOfDay: Double, endSecondsOfDay: Double, watts: Double) {
        self.name = name
        self.startSecondsOfDay = startSecondsOfDay
        self.endSecondsOfDay = endSecondsOfDay
        self.watts = watts
    }

    /// Windows may wrap midnight (start after end).
    public func contains(secondsOfDay s: Double) -> Bool {
        startSecondsOfDay <= endSecondsOfDay
            ? s >= startSecondsOfDay && s < endSecondsOfDay
            : s >= startSecondsOfDay || s < endSecondsOfDay
    }
}

/// A limit that holds until a monotonic time: an engineer's override or an upstream set point that
/// must be refreshed (its freshness is its expiry).
public struct Lease: Sendable, Equatable {
    public var watts: Double
    public var expiresAt: Double
    public init(watts: Double, expiresAt: Double) {
        self.watts = watts
        self.expiresAt = expiresAt
    }
}

/// The per-site limit sources besides the MPs.
public struct SiteSources: Sendable, Equatable {
    public var tcc: HalfHourProfile?
    public var dscW: Double?
    public var schedule: [ScheduleWindow]
    public var override: Lease?
    public var remote: Lease?

    public init(tcc: HalfHourProfile? = nil, dscW: Double? = nil, schedule: [ScheduleWindow] = [], override: Lease? = nil, remote: Lease? = nil) {
        self.tcc = tcc
        self.dscW = dscW
        self.schedule = schedule
        self.override = override
        self.remote = remote
    }

    /// Every limit in force now, with its source.
    /// With no trusted time of day (nil), the TCC profile's minimum and every schedule window hold: an
    /// unsynchronised clock never picks a generous half hour.
    func proposals(now: Double, secondsOfDay: Double?) -> [(Double, LimitSource)] {
        var p: [(Double, LimitSource)] = []
        if let tcc { p.append((secondsOfDay.map { tcc.value(secondsOfDay: $0) } ?? tcc.minimum, .tcc)) }
        if let dscW { p.append((dscW, .dsc)) }
        for w in schedule where secondsOfDay.map({ w.contains(secondsOfDay: $0) }) ?? true { p.append((w.watts, .schedule(w.name))) }
        if let o = override, now < o.expiresAt { p.append((o.watts, .override)) }
        if let r = remote, now < r.expiresAt { p.append((r.watts, .remote)) }
        return p
    }
}
