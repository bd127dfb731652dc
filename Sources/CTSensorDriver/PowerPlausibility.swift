/// Power that cannot be (issue 16, item 3), judged after the per-value checks:
/// - apparent power is never negative;
/// - |active power| is never more than apparent power (2 % and 100 W of meter rounding allowed);
/// - neither is above what the CTs and the voltage range can carry: 3 phases × 2 × the CT rating ×
///   1.5 × the nominal voltage (the same bounds as the per-phase checks);
/// - the apparent power agrees with Σ V·I of the phases within 20 % (a meter that totals VA as a vector
///   sum reads a little below the arithmetic sum under unbalance), or 2 % of the CTs' full scale at
///   light load. An open CT or a shorting link left in reads 0 VA while the currents say otherwise.
extension QualityRules {
    static let apparentPowerTolerance = 0.2

    func powerProblem(_ v: [Quantity: Double]) -> String? {
        let s = v[.apparentPowerTotal]
        let p = v[.powerTotal]
        if let s, s < 0 { return "apparent_power_total \(fmt(s)) VA is negative" }
        if let rating = ctRatingA {
            let most = 3 * 2 * rating * 1.5 * nominalVoltage
            if let s, s > most {
                return "apparent_power_total \(fmt(s)) VA is above \(fmt(most)) VA (3 × 2 × the \(fmt(rating)) A CT rating × 1.5 × \(fmt(nominalVoltage)) V)"
            }
            if let p, abs(p) > most {
                return "power_total \(fmt(p)) W is above \(fmt(most)) W (3 × 2 × the \(fmt(rating)) A CT rating × 1.5 × \(fmt(nominalVoltage)) V)"
            }
        }
        guard let s else { return nil }
        if let p, abs(p) > s * 1.02 + 100 {
            return "power_total \(fmt(p)) W is more than apparent_power_total \(fmt(s)) VA"
        }
        let pairs: [(Quantity, Quantity)] = [(.currentL1, .voltageL1), (.currentL2, .voltageL2), (.currentL3, .voltageL3)]
        let products = pairs.compactMap { i, u -> Double? in
            guard let current = v[i], let volts = v[u] else { return nil }
            return abs(current) * volts
        }
        guard products.count == 3 else { return nil }
        let sum = products.reduce(0, +)
        let floor = 0.02 * 3 * (ctRatingA ?? 100) * nominalVoltage
        if abs(s - sum) > max(Self.apparentPowerTolerance * max(s, sum), floor) {
            return "apparent_power_total \(fmt(s)) VA disagrees with Σ V·I = \(fmt(sum)) VA by more than 20 % (an open or shorted CT, or a wrong register?)"
        }
        return nil
    }
}
