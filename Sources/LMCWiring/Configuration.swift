import ControlCycle
import Headroom
import LMCConfig
import LMCWiring
import TOMLReader

/// `/etc/lmc/lmc.toml`, as far as the control core needs it. Every key is documented in
/// docs/config.md with an example; units are spelt out in the key names and converted to SI here.
public struct Configuration: Sendable {
    public var mode: HeadroomController.Mode
    public var periodMilliseconds: Int
    /// The time zone the TCC half hours and schedules are written in (tz database name).
    public var tccTimezone: String = "Europe/London"
    /// The wall clock picks a half hour only when the kernel says it is synchronised (NTP). False: an
    /// RTC the operator trusts without NTP (documented risk).
    public var requireSynchronisedClock: Bool = true
    public var measurementPoints: [MeasurementPointConfig]
    public var sites: [SiteConfig]
    public var sources: [String: SiteSources]
    /// Per site: how its set point is converted and stepped for what takes it.
    public var shapers: [String: ShaperConfig] = [:]
    /// Buses, meters, chargers and the supervisor, for the daemon.
    public var runtime: RuntimeConfig = .empty

    /// What one control cycle needs of this configuration.
    public var cycleConfig: CycleConfig {
        var c = CycleConfig(mode: mode, periodSeconds: Double(periodMilliseconds) / 1000, measurementPoints: measurementPoints, sites: sites,
                            sources: sources, mpMeter: runtime.mpMeter, sitePocMeter: runtime.sitePocMeter, supervisor: runtime.supervisor,
                            shapers: shapers, breakerSites: Set(runtime.breakers.keys), oscpSites: Set(runtime.oscp?.groups.keys.map { $0 } ?? []))
        c.mpRedundantMeter = runtime.mpRedundantMeter
        c.requireSynchronisedClock = requireSynchronisedClock
        return c
    }

    /// The control cycle built from this configuration.
    public func cycle() throws(ConfigError) -> ControlCycle { try ControlCycle(cycleConfig) }

    /// The control core built from this configuration.
    public func controller() throws(ConfigError) -> HeadroomController {
        try HeadroomController(mode: mode, mps: measurementPoints, sites: sites, sources: sources)
    }

    /// Parses and checks a config file; every problem is reported, each with its line and key path: first
    /// what the reader finds (`ConfigFile`), then what the parts refuse (profiles, endpoints, limits).
    public static func parse(_ text: String) -> Result<Configuration, ConfigErrors> {
        var found: [ConfigIssue] = []
        guard let file = ConfigFile.read(text, issues: &found) else { return .failure(ConfigErrors(issues: found)) }
        let issues = IssueList()
        issues.items = found
        let config = Configuration(wiring: file, issues: issues)
        guard issues.items.isEmpty else { return .failure(ConfigErrors(issues: issues.items)) }
        return .success(config)
    }
}

extension Configuration {
    /// `file` in the control core's and the drivers' types. What they refuse is added to `issues`.
    init(wiring file: ConfigFile, issues: IssueList) {
        let runtime = RuntimeConfig(wiring: file, issues: issues)
        let mps = file.measurementPoints.map(measurementPoint)
        var sites: [SiteConfig] = []
        var sources: [String: SiteSources] = [:]
        var shapers: [String: ShaperConfig] = [:]
        for s in file.sites {
            let charger = runtime.chargers.first { $0.site == s.id }
            sites.append(SiteConfig(id: s.id, floorW: s.firmW, ceilingW: s.ratedW, rampUpWPerSecond: s.rampUpWPerSecond, connectionOrder: s.order))
            var src = SiteSources()
            src.dscW = s.dscW
            if let tcc = s.tccW {
                src.tcc = try? HalfHourProfile(watts: tcc)
                if src.tcc == nil { issues.add(s.tccOrigin.line, s.tccOrigin.path, "values must be finite and not negative") }
            }
            src.schedule = s.schedule.map { ScheduleWindow(name: $0.name, startSecondsOfDay: $0.startSecondsOfDay, endSecondsOfDay: $0.endSecondsOfDay, watts: $0.watts) }
            sources[s.id] = src
            shapers[s.id] = ShaperConfig(unit: setPointUnit(s.setPointUnit), quantum: s.quantum, hysteresis: s.hysteresis,
                                         minimum: charger?.profile.minCurrentA ?? 0, maximum: charger?.maxCurrentA ?? .infinity)
        }
        // Cross-checks the core makes, reported in the same list.
        if issues.items.isEmpty {
            for e in mps.flatMap({ $0.validate() }) + sites.flatMap({ $0.validate() }) {
                issues.add(nil, "measurement_point/site", e)
            }
        }
        self.init(mode: HeadroomController.Mode(rawValue: file.control.mode.rawValue) ?? .direct,
                  periodMilliseconds: file.control.periodMilliseconds, tccTimezone: file.control.tccTimezone,
                  requireSynchronisedClock: file.control.requireSynchronisedClock,
                  measurementPoints: mps, sites: sites, sources: sources, shapers: shapers, runtime: runtime)
    }
}

private func measurementPoint(_ m: ConfigFile.MeasurementPoint) -> MeasurementPointConfig {
    func thresholds(_ t: ConfigFile.Thresholds?) -> MeasurementPointConfig.Thresholds? {
        t.map { .init(trip: $0.trip, tripDelay: $0.tripDelay, limit: $0.limit, releaseZone: $0.releaseZone, releaseTrigger: $0.releaseTrigger) }
    }
    return MeasurementPointConfig(
        id: m.id, kind: MeasurementPointConfig.Kind(rawValue: m.kind.rawValue)!, sensitivity: m.sensitivity,
        upper: thresholds(m.upper), lower: thresholds(m.lower), regulateMargin: m.regulateMargin, rideThrough: m.rideThrough,
        regulateInterval: m.regulateInterval, releaseInterval: m.releaseInterval, rampW: m.rampW,
        filterTimeConstant: m.filterTimeConstant, lowestBelievable: m.lowestBelievable)
}

private func setPointUnit(_ u: ConfigFile.SetPointUnit) -> SetPointUnit {
    switch u {
    case .kW: .kW
    case .kVA(let pf): .kVA(powerFactor: pf)
    case .ampsPerPhase(let phases, let voltage, let pf): .ampsPerPhase(phases: phases, phaseVoltage: voltage, powerFactor: pf)
    }
}
