import ControlCycle
import FailSafe
import Headroom
import LMCConfig
import LMCWiring
import RingLog

extension TripRecorder {
    /// Feeds one performed cycle to the recorder: its sample, the trips it commanded with the reason the
    /// cycle gave (its breaker event), what each breaker read and the alarms standing.
    mutating func cycle(_ snap: CycleSnapshot, _ out: CycleOutput, config: Configuration) -> [TripRecord] {
        let trips = out.breaker.filter { $0.value == .trip }.keys.sorted().map { site -> (site: String, reason: String) in
            let prefix = "\(site): \(BreakerCommand.trip.rawValue) commanded "
            let text = out.events.first { $0.kind == .breaker && $0.text.hasPrefix(prefix) }?.text
            var reason = text.map { String($0.dropFirst(prefix.count)) } ?? "trip commanded"
            if reason.hasPrefix("("), reason.hasSuffix(")") { reason = String(reason.dropFirst().dropLast()) }
            return (site, reason)
        }
        let breakers = snap.breakers.mapValues { read -> TripBreakerRead in
            switch read {
            case .open: .open
            case .closed: .closed
            case .notWired: .notWired
            case .unavailable(let why): .unavailable(why)
            }
        }
        return cycle(sample: out.sample, wallNs: snap.wallNs, monoNs: snap.monoNs, clockSynchronised: snap.clockSynchronised,
                     trips: trips, breakers: breakers, alarms: out.alarms.map { ($0.code, $0.subject, $0.message) },
                     mpNames: config.measurementPoints.map(\.id), siteNames: config.sites.map(\.id))
    }
}

extension MinuteAccumulator {
    /// Feeds one performed cycle: its sample, with the names of the config in force and the clock's state.
    mutating func add(_ snap: CycleSnapshot, _ out: CycleOutput, config: Configuration) -> MinuteRecord? {
        add(out.sample, mpNames: config.measurementPoints.map(\.id),
            mpUnits: config.measurementPoints.map { switch $0.kind { case .current: 0; case .apparentPower: 1; case .voltage: 2 } }, siteNames: config.sites.map(\.id), wallNs: snap.wallNs, monoNs: snap.monoNs,
            clockSynchronised: snap.clockSynchronised)
    }
}

extension Configuration {
    /// The samples' column names under this config: points with their unit (trafo_va), sites.
    var sampleLayout: SampleLayout { .of(mps: measurementPoints, sites: sites) }
}

extension SampleLayout {
    static func of(mps: [MeasurementPointConfig], sites: [SiteConfig]) -> SampleLayout {
        SampleLayout(mps: mps.map { (mp: MeasurementPointConfig) -> String in
                         let unit = switch mp.kind { case .current: "a"; case .apparentPower: "va"; case .voltage: "v" }
                         return "\(mp.id)_\(unit)"
                     },
                     sites: sites.map { $0.id })
    }
}
