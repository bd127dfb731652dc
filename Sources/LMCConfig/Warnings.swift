import ModbusBridge

/// What a valid configuration may still get wrong on a real bus: said by `lmc config check` and logged
/// by `lmc run` at start, each naming the bus or meter, the figures and the fix.
extension Configuration {
    public var warnings: [String] {
        var out: [String] = []
        let rc = runtime
        let blind = rc.supervisor.blindTime
        for bus in rc.buses {
            guard case .rtu(let line) = bus.endpoint else { continue }
            let meters = rc.meters.filter { $0.bus == bus.id }
            guard !meters.isEmpty else { continue }
            // One request and its reply per read: 8 bytes out, 5 + 2 per register back, each framed by
            // 3.5 characters of silence, at 1 start + 8 data + parity + stop bits a character, plus about
            // 10 ms for the meter to answer.
            let bitsPerChar = Double(1 + line.dataBits + (line.parity == .none ? 0 : 1) + line.stopBits)
            let char = bitsPerChar / Double(line.baud)
            func seconds(_ m: RuntimeConfig.Meter) -> Double {
                m.profile.reads.reduce(0) { $0 + (8 + 3.5 + 5 + 2 * Double($1.count) + 3.5) * char + 0.010 }
            }
            let load = meters.reduce(0) { $0 + seconds($1) / (Double($1.pollMilliseconds) / 1000) }
            if load > 0.8 {
                let round = meters.reduce(0) { $0 + seconds($1) }
                out.append("bus \(bus.id): \(meters.count) meter\(meters.count == 1 ? "" : "s") at \(line.baud) baud need \(Int((round * 1000).rounded(.up))) ms for one poll each "
                           + "(\(meters.map { "\($0.id): \($0.profile.reads.count) read\($0.profile.reads.count == 1 ? "" : "s")" }.joined(separator: ", "))), "
                           + "\(Int((load * 100).rounded())) % of the line at their poll_ms; polls will come late and a lost meter is seen later — "
                           + "raise poll_ms to at least \(Int((round / 0.8 * 1000).rounded(.up))), raise the baud rate, or use a profile that reads fewer registers")
            }
        }
        // A constraint meter's frozen value must be recognised within the blind time.
        let constraintMeters = Set(rc.mpMeter.values).union(rc.mpRedundantMeter.values)
        for m in rc.meters where constraintMeters.contains(m.id) {
            let frozen = Double(m.rules.frozenPolls) * Double(m.pollMilliseconds) / 1000
            if frozen > blind {
                out.append("meter \(m.id): a frozen value is recognised after frozen_polls \(m.rules.frozenPolls) × poll_ms \(m.pollMilliseconds) = \(frozen) s, "
                           + "later than failsafe.blind_time_s \(blind) s — lower frozen_polls to \(max(2, Int(blind * 1000) / m.pollMilliseconds)) or poll faster")
            }
        }
        return out
    }
}
