/// Plausibility rules for one meter. Defaults suit a 400/230 V LV board with CTs.
public struct QualityRules: Sendable, Equatable {
    /// CT primary rating (A): a current above `2 ×` this is out of range; nil: no check.
    public var ctRatingA: Double?
    /// Nominal phase voltage: a voltage outside 0.5–1.5 × this is out of range. Also used to estimate
    /// apparent power on CT-only meters.
    public var nominalVoltage: Double
    /// A current that moves by more than this fraction of the CT rating in one poll is implausible.
    public var maxCurrentStepFraction: Double
    /// Bit-identical registers for this long (s, from the first poll of the run) while the current is
    /// not zero: frozen.
    public var frozenAfterSeconds: Double
    /// Below this current (A) a constant reading is believable (no load): not frozen.
    public var zeroLoadCurrentA: Double

    public init(ctRatingA: Double? = nil, nominalVoltage: Double = 230, maxCurrentStepFraction: Double = 1.5,
                frozenAfterSeconds: Double = 1, zeroLoadCurrentA: Double = 0.5) {
        self.ctRatingA = ctRatingA
        self.nominalVoltage = nominalVoltage
        self.maxCurrentStepFraction = maxCurrentStepFraction
        self.frozenAfterSeconds = frozenAfterSeconds
        self.zeroLoadCurrentA = zeroLoadCurrentA
    }
}

/// Judges each decoded poll. Pure: values, raw registers and time in; quality out.
public struct QualityJudge: Sendable {
    public let rules: QualityRules
    private var lastRaw: [UInt16]?
    private var identicalPolls = 0
    /// Monotonic ns of the first poll of the current run of identical registers.
    private var runStartNs: UInt64 = 0
    private var lastGood: [Quantity: Double]?

    public init(_ rules: QualityRules) { self.rules = rules }

    /// `nowNs`: monotonic time of the reply; the frozen rule counts time from it, never the clock.
    public mutating func judge(values: [Quantity: Double], raw: [UInt16], atNs nowNs: UInt64) -> Quality {
        // Frozen: the device answers, but with bit-identical registers while current flows.
        if raw == lastRaw { identicalPolls += 1 } else { identicalPolls = 0; runStartNs = nowNs }
        lastRaw = raw
        for (q, v) in values.sorted(by: { $0.key < $1.key }) where !v.isFinite {
            return .bad(.notFinite(q.rawValue))
        }
        for (q, v) in values.sorted(by: { $0.key < $1.key }) {
            if q.isCurrent, let rating = rules.ctRatingA, abs(v) > 2 * rating {
                return .bad(.outOfRange("\(q.rawValue) \(fmt(v)) A is above 2 × the \(fmt(rating)) A CT rating"))
            }
            if q.isVoltage, v < 0.5 * rules.nominalVoltage || v > 1.5 * rules.nominalVoltage {
                return .bad(.outOfRange("\(q.rawValue) \(fmt(v)) V is outside 0.5–1.5 × \(fmt(rules.nominalVoltage)) V"))
            }
        }
        if let why = rules.powerProblem(values) { return .bad(.outOfRange(why)) }
        let loaded = values.contains { $0.key.isCurrent && abs($0.value) > rules.zeroLoadCurrentA }
            || values[.powerTotal].map { abs($0) > rules.zeroLoadCurrentA * rules.nominalVoltage } == true
        let stuckSeconds = Double(nowNs &- runStartNs) / 1e9
        if identicalPolls > 0 && stuckSeconds >= rules.frozenAfterSeconds - 1e-9 && loaded {
            return .bad(.frozen(polls: identicalPolls + 1))
        }
        if let rating = rules.ctRatingA, let previous = lastGood {
            for (q, v) in values where q.isCurrent {
                if let p = previous[q], abs(v - p) > rules.maxCurrentStepFraction * rating {
                    // Judged once: the next poll compares against this value, so a real step is
                    // believed after one poll, a one-poll spike is not.
                    lastGood = values
                    return .bad(.implausibleStep("\(q.rawValue) moved \(fmt(v - p)) A in one poll"))
                }
            }
        }
        lastGood = values
        return .good
    }
}

func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
}
