import Headroom

/// How a site's set point is turned into what its charger or CPMS takes — the one place a set point is
/// converted, stepped and held against flapping. Relays and OSCP send exactly the value they are given.
public struct ShaperConfig: Sendable, Equatable {
    /// The unit the receiver takes: kW, kVA, or amps per phase.
    public var unit: SetPointUnit
    /// Steps of the value in `unit` (1 for whole-amp chargers), 0 for none. Values round down.
    public var quantum: Double
    /// An increase is passed on only once it clears the next step by this fraction of a quantum.
    public var hysteresis: Double
    /// The lowest value the receiver can honour (a charger's minimum current); below it: 0 (stop).
    public var minimum: Double
    /// The highest value to send (a hub's site limit in A).
    public var maximum: Double

    public init(unit: SetPointUnit, quantum: Double = 0, hysteresis: Double = 0.5, minimum: Double = 0, maximum: Double = .infinity) {
        self.unit = unit
        self.quantum = quantum
        self.hysteresis = hysteresis
        self.minimum = minimum
        self.maximum = maximum
    }

    /// The value for a power (W) rounded down to the step and bounded, with no memory: what the
    /// charger's own fallback (safe current) is programmed with.
    public func stepped(watts: Double) -> Double {
        bound(stepDown(unit.fromWatts(max(0, watts))))
    }

    func stepDown(_ v: Double) -> Double {
        guard v.isFinite else { return 0 }
        return quantum > 0 ? ((v / quantum) + 1e-9).rounded(.down) * quantum : v
    }

    func bound(_ v: Double) -> Double {
        if v < minimum { return 0 }
        return min(v, maximum)
    }
}

/// A site's shaper with its memory (the value last passed on, and whether it last went down).
public struct Shaper: Sendable, Equatable {
    public let config: ShaperConfig
    public private(set) var output: Double?
    private var lastWentDown = false

    public init(_ config: ShaperConfig) { self.config = config }

    /// The value to send for a set point (W): decreases at once (rounded down). An increase right
    /// after a decrease is passed on only when it clears the next step by the hysteresis, so a value
    /// hovering at a step boundary changes the output at most once; a steady rise passes every step,
    /// up to the top one (rated 250 kW = 362.3 A reaches 362 A).
    public mutating func shape(watts: Double) -> Double {
        let raw = config.unit.fromWatts(max(0, watts))
        let down = config.stepDown(raw)
        var next = down
        if let current = output {
            if down < current {
                lastWentDown = true
            } else if down > current {
                if config.quantum > 0, lastWentDown, raw < current + config.quantum * (1 + config.hysteresis) {
                    next = current
                } else {
                    lastWentDown = false
                }
            }
        }
        output = next
        return config.bound(next)
    }
}
