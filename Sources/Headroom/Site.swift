/// The unit a site's set point is sent in.
public enum SetPointUnit: Sendable, Equatable {
    case kW
    /// kVA, converted from W with the site's power factor.
    case kVA(powerFactor: Double)
    /// Amps per phase, from W with phases, line-to-neutral voltage and power factor.
    case ampsPerPhase(phases: Int, phaseVoltage: Double, powerFactor: Double)

    /// Unit value for a power in W.
    public func fromWatts(_ w: Double) -> Double {
        switch self {
        case .kW: w / 1000
        case .kVA(let pf): w / 1000 / pf
        case let .ampsPerPhase(n, v, pf): w / (Double(n) * v * pf)
        }
    }

    /// Power in W for a unit value.
    public func toWatts(_ u: Double) -> Double {
        switch self {
        case .kW: u * 1000
        case .kVA(let pf): u * 1000 * pf
        case let .ampsPerPhase(n, v, pf): u * Double(n) * v * pf
        }
    }

    public var symbol: String {
        switch self {
        case .kW: "kW"
        case .kVA: "kVA"
        case .ampsPerPhase: "A"
        }
    }
}

/// One EV charging site behind the constraint.
public struct SiteConfig: Sendable, Equatable {
    public var id: String
    /// Firm capacity: guaranteed by planning, the set point never goes below it here (FailSafe may).
    public var floorW: Double
    /// Rated capacity: the site's installed maximum.
    public var ceilingW: Double
    /// Increases of the sent set point are limited to this rate (W/s); decreases act at once.
    public var rampUpWPerSecond: Double
    /// LIFO: the site connected last (highest number) is curtailed first.
    public var connectionOrder: Int

    public init(id: String, floorW: Double, ceilingW: Double, rampUpWPerSecond: Double = 2_000, connectionOrder: Int = 0) {
        self.id = id
        self.floorW = floorW
        self.ceilingW = ceilingW
        self.rampUpWPerSecond = rampUpWPerSecond
        self.connectionOrder = connectionOrder
    }

    public func validate() -> [String] {
        var e: [String] = []
        if floorW < 0 { e.append("site \(id): firm \(floorW) W must not be negative") }
        if ceilingW < floorW { e.append("site \(id): rated \(ceilingW) W is below firm \(floorW) W") }
        if rampUpWPerSecond <= 0 { e.append("site \(id): ramp up \(rampUpWPerSecond) W/s must be positive") }
        return e
    }
}
