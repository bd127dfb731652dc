/// Average power from an S0 pulse output (IEC 62053-31): each pulse is a fixed energy. Pure: edge
/// times in, an estimate out. Always flagged estimated — a pulse count is an average over a window.
///
/// A broken wire and zero load both give silence; physics only lets us tell them apart when the load
/// never drops below a known minimum: then a gap longer than one pulse at that minimum means no pulses
/// are arriving at all (the wire). Without a minimum, silence reads as an upper bound that decays.
public struct PulseMeter: Sendable {
    public var impulsesPerKWh: Double
    /// The smallest load the circuit ever carries (W); nil if it can be zero.
    public var minimumLoadW: Double?
    /// Pulses older than this (s) no longer count.
    public var windowSeconds: Double
    private var edges: [Double] = []

    public init(impulsesPerKWh: Double, minimumLoadW: Double? = nil, windowSeconds: Double = 60) {
        self.impulsesPerKWh = impulsesPerKWh
        self.minimumLoadW = minimumLoadW
        self.windowSeconds = windowSeconds
    }

    /// Energy of one pulse, J.
    public var joulesPerPulse: Double { 3_600_000 / impulsesPerKWh }

    /// Records a pulse (its rising edge, monotonic seconds).
    public mutating func pulse(at t: Double) {
        edges.append(t)
        edges.removeAll { t - $0 > windowSeconds }
    }

    /// The power estimate now (W) and its quality.
    public func estimate(now: Double) -> (watts: Double?, quality: Quality) {
        let silence = edges.last.map { now - $0 } ?? .infinity
        if let minW = minimumLoadW, silence > joulesPerPulse / minW * 1.5 {
            return (nil, .bad(.disconnected))
        }
        guard edges.count >= 2, let first = edges.first, let last = edges.last, last > first else {
            if let last = edges.last {
                // One pulse: all we know is that the power is at most one pulse per silence.
                return (joulesPerPulse / max(now - last, 1e-3), .estimated("upper bound from one pulse"))
            }
            return (nil, .bad(.stale))
        }
        let average = Double(edges.count - 1) * joulesPerPulse / (last - first)
        // If the silence since the last pulse is longer than the average interval, the load has
        // fallen: the bound from the silence is the better estimate.
        let bound = joulesPerPulse / max(silence, 1e-3)
        return (min(average, bound), .estimated("S0 average over \(fmt(last - first)) s"))
    }
}

/// Two sources for one measurement point (substation CTs and the site's PoC meter, or two CT sets).
public struct RedundantPair: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Both good and agreeing: the primary's value.
        case agreeing
        /// Both good but further apart than the tolerance: the primary's value, alarm.
        case diverging(String)
        /// One lost: the other's value, alarm.
        case degraded(String)
        /// Neither usable.
        case lost
    }

    /// Allowed difference as a fraction of the larger value.
    public var tolerance: Double
    public init(tolerance: Double = 0.05) { self.tolerance = tolerance }

    public func combine(primary: (name: String, value: Double?, quality: Quality),
                        secondary: (name: String, value: Double?, quality: Quality)) -> (value: Double?, state: State) {
        let p = primary.quality.isUsable ? primary.value : nil
        let s = secondary.quality.isUsable ? secondary.value : nil
        switch (p, s) {
        case let (a?, b?):
            let scale = max(abs(a), abs(b), 1e-9)
            if abs(a - b) / scale > tolerance {
                return (a, .diverging("\(primary.name) \(fmt(a)) and \(secondary.name) \(fmt(b)) differ by \(fmt(100 * abs(a - b) / scale)) %"))
            }
            return (a, .agreeing)
        case let (a?, nil):
            return (a, .degraded("\(secondary.name) lost (\(secondary.quality)); using \(primary.name)"))
        case let (nil, b?):
            return (b, .degraded("\(primary.name) lost (\(primary.quality)); using \(secondary.name)"))
        case (nil, nil):
            return (nil, .lost)
        }
    }
}
