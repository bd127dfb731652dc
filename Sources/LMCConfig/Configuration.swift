import ControlCycle
import Headroom
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

    /// Parses and checks a config file; every problem is reported, each with its line and key path.
    public static func parse(_ text: String) -> Result<Configuration, ConfigErrors> {
        let top: Section
        switch Section.root(of: text, schema: "", declarations: ConfigKeys.schema) {
        case .failure(let e): return .failure(e)
        case .success(let s): top = s
        }
        let issues = top.issues

        let control = top.tableOrEmpty("control")
        let mode = control.string("mode")!
        let period = control.number("period_ms")!
        let zone = control.string("tcc_timezone")!
        if zone.isEmpty || zone.hasPrefix("/") || zone.contains("..") || !zone.allSatisfy({ $0.isLetter || $0.isNumber || "/_+-".contains($0) }) {
            issues.add(control.table.line(of: "tcc_timezone"), "control.tcc_timezone", "= \"\(zone)\": expected a time zone name such as \"Europe/London\" or \"UTC\"")
        }
        let requireSync = control.bool("require_synchronised_clock")
        control.rejectUnknownKeys()

        let mpSections = top.tables("measurement_point")
        if mpSections.isEmpty { issues.add(nil, "measurement_point", "at least one [[measurement_point]] is needed") }
        let siteSections = top.tables("site")
        if siteSections.isEmpty { issues.add(nil, "site", "at least one [[site]] is needed") }
        // The daemon's sections first: they claim their keys inside [[measurement_point]] and [[site]].
        let runtime = RuntimeConfig.read(top, mps: mpSections, sites: siteSections, issues: issues)
        let mps = mpSections.compactMap(readMP)

        var sites: [SiteConfig] = []
        var sources: [String: SiteSources] = [:]
        var shapers: [String: ShaperConfig] = [:]
        for (i, s) in siteSections.enumerated() {
            let id = s.table["id"].flatMap { if case .string(let x) = $0 { x } else { nil } } ?? "?"
            if let (site, src, shaper) = readSite(s, order: i + 1, charger: runtime.chargers.first { $0.site == id }) {
                sites.append(site)
                sources[site.id] = src
                shapers[site.id] = shaper
            }
        }
        top.rejectUnknownKeys()

        // Cross-checks the core makes, reported in the same list.
        if issues.items.isEmpty {
            for e in mps.flatMap({ $0.validate() }) + sites.flatMap({ $0.validate() }) {
                issues.add(nil, "measurement_point/site", e)
            }
            for dup in duplicates(mps.map(\.id)) { issues.add(nil, "measurement_point", "id \"\(dup)\" is used twice") }
            for dup in duplicates(sites.map(\.id)) { issues.add(nil, "site", "id \"\(dup)\" is used twice") }
        }
        guard issues.items.isEmpty else { return .failure(ConfigErrors(issues: issues.items)) }
        return .success(Configuration(mode: HeadroomController.Mode(rawValue: mode)!, periodMilliseconds: Int(period),
                                      tccTimezone: zone, requireSynchronisedClock: requireSync,
                                      measurementPoints: mps, sites: sites, sources: sources, shapers: shapers, runtime: runtime))
    }
}


private func duplicates(_ ids: [String]) -> [String] {
    var seen = Set<String>(), dup: [String] = []
    for id in ids { if !seen.insert(id).inserted { dup.append(id) } }
    return dup
}

/// Unit suffix and scale to SI of an MP kind's values in the config.
private func unit(of kind: MeasurementPointConfig.Kind) -> (suffix: String, scale: Double) {
    switch kind {
    case .current: ("a", 1)
    case .apparentPower: ("kva", 1000)
    case .voltage: ("v", 1)
    }
}

private func readMP(_ s: Section) -> MeasurementPointConfig? {
    let id = s.string("id") ?? "?"
    guard let kindName = s.string("kind"),
          let kind = MeasurementPointConfig.Kind(rawValue: kindName) else { s.rejectUnknownKeys(); return nil }
    let (u, scale) = unit(of: kind)
    // Keys in another kind's unit are a classic slip (limit_kva on a current MP): say so.
    func checkUnits(_ t: TOMLTable, _ path: String) {
        for other in ["a", "kva", "v"] where other != u {
            for e in t.entries where e.key.hasSuffix("_\(other)") {
                s.issues.add(e.line, "\(path).\(e.key)", "a \(kindName) point takes values in \(u): use \(e.key.dropLast(other.count))\(u)")
            }
        }
    }
    checkUnits(s.table, s.path)
    for side in ["upper", "lower"] { if case .table(let t)? = s.table[side] { checkUnits(t, "\(s.path).\(side)") } }
    let sensitivity = s.number("sensitivity_per_kw").map { $0 * scale / 1000 }
    func thresholds(_ name: String) -> MeasurementPointConfig.Thresholds? {
        guard let t = s.table(name) else { return nil }
        defer { t.rejectUnknownKeys() }
        guard let limit = t.number("limit_\(u)"), let zone = t.number("release_zone_\(u)"),
              let trigger = t.number("release_trigger_\(u)") else { return nil }
        return .init(trip: t.number("trip_\(u)").map { $0 * scale }, tripDelay: t.number("trip_delay_s")!,
                     limit: limit * scale, releaseZone: zone * scale, releaseTrigger: trigger * scale)
    }
    let upper = thresholds("upper")
    let lower = thresholds("lower")
    if !s.has("upper") && !s.has("lower") { s.issues.add(s.line, s.path, "needs an [\(s.path).upper] or [\(s.path).lower] table") }
    let config = MeasurementPointConfig(
        id: id, kind: kind, sensitivity: sensitivity ?? 1, upper: upper, lower: lower,
        regulateMargin: (s.number("regulate_margin_\(u)") ?? 0) * scale,
        rideThrough: s.number("ride_through_s")!,
        regulateInterval: s.number("regulate_interval_s")!,
        releaseInterval: s.number("release_interval_s")!,
        rampW: (s.number("ramp_kw") ?? .infinity) * 1000,
        filterTimeConstant: s.number("filter_s")!,
        lowestBelievable: s.number("lowest_believable_\(u)").map { $0 * scale })
    s.rejectUnknownKeys()
    return config
}

private func readSite(_ s: Section, order: Int, charger: RuntimeConfig.Charger?) -> (SiteConfig, SiteSources, ShaperConfig)? {
    let id = s.string("id") ?? "?"
    let firm = s.number("firm_kw")
    let rated = s.number("rated_kw")
    // A Modbus charger takes amps per phase; a CPMS over OSCP takes kW.
    let unitName = s.string("setpoint_unit", default: charger != nil ? "a" : "kw")!
    if charger != nil && unitName != "a" {
        s.issues.add(s.table.line(of: "setpoint_unit"), "\(s.path).setpoint_unit",
                     "= \"\(unitName)\": the site's [site.charger] takes amps per phase; write setpoint_unit = \"a\" (with phases, phase_voltage_v and power_factor) or leave it out")
    }
    let pf = s.number("power_factor")!
    let phases = s.number("phases")!
    let voltage = s.number("phase_voltage_v")!
    let unit: SetPointUnit = switch unitName {
    case "kva": .kVA(powerFactor: pf)
    case "a": .ampsPerPhase(phases: Int(phases), phaseVoltage: voltage, powerFactor: pf)
    default: .kW
    }
    let quantum = s.number("quantum", default: unitName == "a" ? 1 : 0)!
    let hysteresis = s.number("hysteresis")!
    let ramp = s.number("ramp_up_kw_per_s")!
    var sources = SiteSources()
    sources.dscW = s.number("dsc_kw").map { $0 * 1000 }
    if let tcc = s.numbers("tcc_kw") {
        sources.tcc = try? HalfHourProfile(watts: tcc.map { $0 * 1000 })
        if sources.tcc == nil { s.issues.add(s.table.line(of: "tcc_kw"), "\(s.path).tcc_kw", "values must be finite and not negative") }
    }
    for w in s.tables("schedule") {
        let name = w.string("name")!
        let from = w.string("from").flatMap { parseClock($0, w, "from") }
        let to = w.string("to").flatMap { parseClock($0, w, "to") }
        let limit = w.number("limit_kw")
        w.rejectUnknownKeys()
        if let from, let to, let limit {
            sources.schedule.append(ScheduleWindow(name: name, startSecondsOfDay: from, endSecondsOfDay: to, watts: limit * 1000))
        }
    }
    s.rejectUnknownKeys()
    guard let firm, let rated else { return nil }
    let shaper = ShaperConfig(unit: unit, quantum: quantum, hysteresis: hysteresis,
                              minimum: charger?.profile.minCurrentA ?? 0, maximum: charger?.maxCurrentA ?? .infinity)
    return (SiteConfig(id: id, floorW: firm * 1000, ceilingW: rated * 1000, rampUpWPerSecond: ramp * 1000, connectionOrder: order), sources, shaper)
}

/// "HH:MM" → seconds after midnight.
private func parseClock(_ text: String, _ s: Section, _ key: String) -> Double? {
    let parts = text.split(separator: ":")
    if parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 {
        return Double(h * 3600 + m * 60)
    }
    s.issues.add(s.table.line(of: key), "\(s.path).\(key)", "= \"\(text)\": expected a time of day \"HH:MM\" (e.g. \"08:30\")")
    return nil
}
