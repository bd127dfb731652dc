import TOMLReader
import ModbusBridge
import CTSensorDriver

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
            // The reads each poll makes, as the bus thread makes them (MeterProfile.controlReads), each
            // with its request, reply, inter-frame silences and the meter's turnaround.
            func seconds(_ m: RuntimeConfig.Meter) -> Double {
                m.profile.controlReads(on: line).reduce(0) { $0 + MeterProfile.readSeconds(count: $1.count, on: line) }
            }
            let load = meters.reduce(0) { $0 + seconds($1) / (Double($1.pollMilliseconds) / 1000) }
            if load > 0.8 {
                let round = meters.reduce(0) { $0 + seconds($1) }
                out.append("bus \(bus.id): \(meters.count) meter\(meters.count == 1 ? "" : "s") at \(line.baud) baud need \(Int((round * 1000).rounded(.up))) ms for one poll each "
                           + "(\(meters.map { m in let n = m.profile.controlReads(on: line).count; return "\(m.id): \(n) read\(n == 1 ? "" : "s")" }.joined(separator: ", "))), "
                           + "\(Int((load * 100).rounded())) % of the line at their poll_ms; polls will come late and a lost meter is seen later — "
                           + "raise poll_ms to at least \(Int((round / 0.8 * 1000).rounded(.up))), raise the baud rate, or use a profile that reads fewer registers")
            }
        }
        for m in rc.meters {
            if let n = m.frozenPollsGiven {
                out.append("meter \(m.id): frozen_polls is deprecated; frozen_polls \(n) × poll_ms \(m.pollMilliseconds) is read as "
                           + "frozen_after_s = \(formatNumber(m.rules.frozenAfterSeconds)) (the \(n)th identical poll) — write frozen_after_s = \(formatNumber(m.rules.frozenAfterSeconds)) instead")
            }
        }
        // A constraint meter's frozen value must be recognised within the blind time.
        let constraintMeters = Set(rc.mpMeter.values).union(rc.mpRedundantMeter.values)
        for m in rc.meters where constraintMeters.contains(m.id) {
            if m.rules.frozenAfterSeconds > blind + 1e-9 {
                out.append("meter \(m.id): a frozen value is recognised after frozen_after_s \(formatNumber(m.rules.frozenAfterSeconds)) s, "
                           + "later than failsafe.blind_time_s \(formatNumber(blind)) s — lower frozen_after_s to \(formatNumber(blind)) or less")
            }
        }
        // Incremental mode without a site's PoC meter: the set point is the base, and a site drawing
        // less than it leaves a gap a cut can be spent in (docs/control.md, a metered base).
        if mode == .incremental {
            for site in sites where rc.sitePocMeter[site.id] == nil {
                out.append("site \(site.id): incremental mode without a poc_meter: nothing shows what the site draws, so a cut taken from a set point "
                           + "it does not use changes nothing, and the constraint can stay above its limit until the cuts reach what it draws "
                           + "(then firm) — name the site's PoC meter (poc_meter = \"ID\") wherever the site can draw less than it is allowed")
            }
        }
        return out
    }
}
