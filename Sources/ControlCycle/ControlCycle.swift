import FailSafe
import Headroom
import RingLog

/// One control cycle of the box, as a pure function of its state and a snapshot of the world: like a
/// PLC scan, in named phases — measure → limits → supervise → shape → report. The daemon's shell
/// (`lmc run`), `lmc demo`, `lmc simulate`, the bench and the scenario files all drive this same
/// type; none of them decides anything the cycle does not.
public struct ControlCycle: Sendable {
    public let config: CycleConfig
    public private(set) var headroom: HeadroomController
    public private(set) var supervisor: Supervisor
    private var shapers: [String: Shaper]
    private var halfHours: HalfHourAccumulator
    private var lastMode: Mode?
    private var lastAlarms: [String: String] = [:]
    private var clockOffsetNs: Int64?
    /// Per MP: when its meter's value was last believed (usable and plausible), monotonic ns.
    private var lastBelievedNs: [String: UInt64] = [:]
    /// Per MP and meter: the time of the reading the last cycle saw (a new one counts as a sample).
    private var lastReadingNs: [String: UInt64] = [:]
    /// Direct mode is running on the set points because a PoC import is missing.
    private var directFallback = false
    public private(set) var cycles = 0
    /// This cycle came from a reload and carries the half hour so far (nothing to close for it).
    public private(set) var halfHourCarried = false
    /// The breaker memory last handed out (`CycleOutput.breakerMemory`), by what changes it.
    private var breakerMemoryKey: [String: String] = [:]
    /// The monotonic time of the last cycle, in seconds.
    private var lastNow: Double?
    /// Since when the supervisor has held the sites at their safe set points (start-up, fail-safe, a
    /// trip, lockout), monotonic seconds; nil while it does not.
    private var heldSince: Double?

    public init(_ config: CycleConfig) throws(ConfigError) {
        self.config = config
        headroom = try HeadroomController(mode: config.mode, mps: config.measurementPoints, sites: config.sites, sources: config.sources,
                                          maxGap: config.supervisor.blindTime)
        supervisor = Supervisor(config.supervisor)
        shapers = Dictionary(uniqueKeysWithValues: config.sites.map { ($0.id, Shaper(config.shaper($0.id))) })
        halfHours = HalfHourAccumulator(mps: config.measurementPoints, sites: config.sites)
    }

    /// The safe value each site's charger falls back to on its own (its fallback register), in the
    /// charger's unit: the firm capacity, stepped down — converted at unity power factor, so a power
    /// factor below 1 never raises the safe current above the firm kVA.
    public func chargerFallback(site: String) -> Double {
        let s = config.sites.first { $0.id == site }!
        var shaper = config.shaper(site)
        switch shaper.unit {
        case let .ampsPerPhase(n, v, _): shaper.unit = .ampsPerPhase(phases: n, phaseVoltage: v, powerFactor: 1)
        case .kVA: shaper.unit = .kVA(powerFactor: 1)
        case .kW: break
        }
        return shaper.stepped(watts: s.floorW)
    }

    /// The cycle after a reload (SIGHUP) to `next`. When no site, breaker, limit source or supervisor
    /// setting changed, it carries on where this one is: the supervisor's mode and timers (no new
    /// start-up delay), the MP limits, overrides and leases, the shapers and the half hour so far.
    /// Otherwise it starts afresh, as at power-up.
    public func reloaded(_ next: CycleConfig) throws(ConfigError) -> ControlCycle {
        var fresh = try ControlCycle(next)
        guard next.sites == config.sites, next.sources == config.sources, next.shapers == config.shapers,
              next.breakerSites == config.breakerSites, next.supervisor == config.supervisor, next.mode == config.mode,
              next.sitePocMeter == config.sitePocMeter else {
            // Afresh — but a lockout, an open trip and the trip history of a breaker still wired stay.
            if let now = lastNow {
                fresh.restore(breakers: supervisor.breakerMemory(now: now).filter { next.breakerSites.contains($0.key) }, now: now)
            }
            return fresh
        }
        fresh.supervisor = supervisor
        fresh.headroom.carryOver(from: headroom)
        fresh.shapers = shapers
        fresh.lastMode = lastMode
        fresh.lastAlarms = lastAlarms
        fresh.clockOffsetNs = clockOffsetNs
        fresh.lastBelievedNs = lastBelievedNs
        fresh.lastReadingNs = lastReadingNs
        fresh.directFallback = directFallback
        fresh.cycles = cycles
        fresh.breakerMemoryKey = breakerMemoryKey
        fresh.lastNow = lastNow
        fresh.heldSince = heldSince
        if next.measurementPoints == config.measurementPoints {
            fresh.halfHours = halfHours
            fresh.halfHourCarried = true
        }
        return fresh
    }

    /// Takes the breaker memory of the process before this one (`breakers.state`), before the first
    /// cycle: sites without a breaker in this configuration are left out. Returns what was taken.
    @discardableResult
    public mutating func restore(breakers memory: [String: BreakerMemory], nowNs: UInt64) -> [String: BreakerMemory] {
        let kept = memory.filter { config.breakerSites.contains($0.key) }
        restore(breakers: kept, now: Double(nowNs) / 1e9)
        return kept
    }

    private mutating func restore(breakers memory: [String: BreakerMemory], now: Double) {
        supervisor.restore(memory, now: now)
        breakerMemoryKey = supervisor.breakerMemoryKey
    }

    /// Closes the half hour so far (at stop, before a reload).
    public mutating func finish() -> HalfHourRecord? { halfHours.finish() }

    // MARK: The cycle

    public mutating func step(_ s: CycleSnapshot) -> CycleOutput {
        cycles += 1
        let now = Double(s.monoNs) / 1e9
        var events: [CycleEvent] = []
        let answers = applyCommands(s, now: now, events: &events)
        events += s.posted
        noteClock(s, events: &events)

        let m = measure(s)
        let limits = decideLimits(s, m, now: now, events: &events)
        let sup = supervise(s, m, limits, now: now)
        let shaped = shape(sup, synchronised: m.secondsOfDay != nil)
        var out = report(s, m, limits, sup, shaped, answers: answers, events: events)
        // The breaker memory is handed out when a state or a trip changed it (lmc run writes it down).
        let key = supervisor.breakerMemoryKey
        if key != breakerMemoryKey {
            breakerMemoryKey = key
            out.breakerMemory = supervisor.breakerMemory(now: now)
        }
        lastNow = now
        return out
    }

    // MARK: Commands (between cycles, as a PLC takes its inputs)

    private var pendingReset = false
    private var pendingTrips: [String: String] = [:]

    private mutating func applyCommands(_ s: CycleSnapshot, now: Double, events: inout [CycleEvent]) -> [String] {
        var answers: [String] = []
        for c in s.commands {
            let a = handle(c.request, user: c.user, now: now)
            events.append(CycleEvent(.command, "'\(c.line)' by \(c.user): \(a)"))
            answers.append(a)
        }
        // Remote set points from upstream: a limit source while fresh (their validity is their lease).
        for site in config.sites {
            guard let r = s.remote[site.id] else { continue }
            let lease = Lease(watts: r.watts, expiresAt: Double(r.receivedAtNs) / 1e9 + r.validitySeconds)
            if headroom.sources[site.id]?.remote != lease { headroom.sources[site.id, default: SiteSources()].remote = lease }
        }
        return answers
    }

    private mutating func handle(_ request: ControlRequest, user: String, now: Double) -> String {
        switch request {
        case .overrideSet(let site, let kw, let seconds):
            guard config.sites.contains(where: { $0.id == site }) else {
                return "error: no site \"\(site)\" (sites: \(config.sites.map(\.id).joined(separator: ", ")))"
            }
            headroom.sources[site, default: SiteSources()].override = Lease(watts: kw * 1000, expiresAt: now + seconds)
            return "override: site \(site) at most \(kw) kW for \(Int(seconds)) s (the most restrictive source still wins)"
        case .overrideClear(let site):
            guard headroom.sources[site]?.override != nil else { return "override: none active for site \(site)" }
            headroom.sources[site]?.override = nil
            return "override: cleared for site \(site)"
        case .resetLockout:
            pendingReset = true
            return "reset-lockout: sent; an automatic close follows when conditions allow"
        case .testTrip(let site):
            guard config.breakerSites.contains(site) else { return "error: no breaker is wired for site \(site) in this configuration" }
            pendingTrips[site] = user
            return "test-trip: trip command sent to site \(site); lmc status shows the breaker's answer"
        case .status, .statusJSON, .alarms:
            return "error: '\(request.line)' is answered by the socket, not the control loop"
        }
    }

    /// The wall clock may jump (NTP, a dead RTC battery): control runs on the monotonic clock; the log says so.
    private mutating func noteClock(_ s: CycleSnapshot, events: inout [CycleEvent]) {
        let offset = Int64(bitPattern: s.wallNs) &- Int64(bitPattern: s.monoNs)
        if let previous = clockOffsetNs, abs(offset &- previous) > 2_000_000_000 {
            events.append(CycleEvent(.clockJump, "wall clock moved \((offset &- previous) / 1_000_000) ms against the monotonic clock"))
        }
        clockOffsetNs = offset
    }

    // MARK: 1. Measure

    struct Measured {
        var mpValues: [String: [Double]?] = [:]
        var meterStatus: [MeterStatus] = []
        var siteImport: [String: Double] = [:]
        /// Local seconds of the day, only while the wall clock is known to be synchronised.
        var secondsOfDay: Double?
        /// Sites whose configured PoC meter has given no usable import for the blind time.
        var pocLost: [String: String] = [:]
    }

    /// A reading older than the blind time is stale, however good it was: the bus thread may be stuck
    /// in a long timeout, and an old value must not pass for a fresh one.
    private func usable(_ r: MeterSnapshot, nowNs: UInt64) -> Bool {
        let blindNs = UInt64(config.supervisor.blindTime * 1e9)
        return r.usable && !(nowNs > r.readingNs && nowNs - r.readingNs > blindNs)
    }

    private mutating func measure(_ s: CycleSnapshot) -> Measured {
        var m = Measured()
        for site in config.sites {
            if let id = config.sitePocMeter[site.id], let r = s.meters[id], usable(r, nowNs: s.monoNs), let w = importInSetPointTerms(r, site: site.id),
               w.isFinite, abs(w) <= 10 * site.ceilingW {
                m.siteImport[site.id] = w
            }
        }
        for site in config.sites where m.siteImport[site.id] == nil {
            guard let id = config.sitePocMeter[site.id] else { continue }
            let r = s.meters[id]
            let age = r?.lastGoodNs.map { Double(s.monoNs &- $0) / 1e9 }
            if age.map({ $0 > config.supervisor.blindTime }) ?? true {
                m.pocLost[site.id] = "PoC meter \(id): " + (age.map { "no usable import for \(number($0)) s" } ?? "never read") + (r?.problem.map { " (\($0))" } ?? "")
            }
        }
        let meteredImport = m.siteImport.values.reduce(0, +)
        for mp in config.measurementPoints {
            guard let primary = config.mpMeter[mp.id] else { m.mpValues[mp.id] = .some(nil); continue }
            // A redundant pair measures the same thing: the first meter with a believable value is used;
            // the supervisor sees both in one group (DEGRADED and METER_LOST when one is lost).
            var chosen: [Double]? = nil
            for meterID in [primary] + (config.mpRedundantMeter[mp.id].map { [$0] } ?? []) {
                let r = s.meters[meterID]
                var values: [Double]? = nil
                var problem: String? = r.flatMap { $0.usable ? nil : $0.problem }
                if let r, usable(r, nowNs: s.monoNs) {
                    switch mp.kind {
                    case .apparentPower: values = r.apparentPowerVA.map { [$0] }
                    case .current: values = r.currents.isEmpty ? nil : r.currents
                    case .voltage: values = r.voltages.isEmpty ? nil : r.voltages
                    }
                    if values == nil { problem = "no \(mp.kind.rawValue) value" }
                    if let v = values, let why = implausible(mp, v, meteredImportW: meteredImport, allMetered: m.siteImport.count == config.sites.count) {
                        values = nil
                        problem = why
                    }
                } else if let r, r.usable {
                    problem = "stale"
                }
                let key = "\(mp.id)/\(meterID)"
                if values != nil { lastBelievedNs[key] = s.monoNs }
                if chosen == nil { chosen = values }
                // Last good: the driver's, but never later than the last value the cycle believed.
                let lastGood = [r?.lastGoodNs, lastBelievedNs[key]].compactMap { $0 }.min()
                var st = MeterStatus(id: meterID, group: mp.id, lastGoodAt: lastGood.map { Double($0) / 1e9 }, goodNow: values != nil)
                st.problem = values == nil ? problem : nil
                st.newReading = r.map { $0.readingNs != lastReadingNs[key] } ?? false
                lastReadingNs[key] = r?.readingNs
                m.meterStatus.append(st)
            }
            m.mpValues[mp.id] = .some(chosen)
        }
        m.secondsOfDay = s.clockSynchronised || !config.requireSynchronisedClock ? s.localSecondsOfDay : nil
        return m
    }

    /// What a site's PoC meter shows it draws, in its set point's terms (W as the shaper converts them):
    /// a set point in A or kVA limits current, so the site's draw is its apparent power (× the set
    /// point's power_factor, as the shaper converts); a set point in kW limits active power. Compared
    /// with the set point (the base, non-response), the W of a site at power factor 0.98 read 2 % short
    /// of a set point it drew in full, and every release stopped short of the release zone.
    private func importInSetPointTerms(_ r: MeterSnapshot, site: String) -> Double? {
        switch config.shaper(site).unit {
        case .kW: r.powerW ?? r.apparentPowerVA
        case .kVA(let pf), .ampsPerPhase(_, _, let pf): r.apparentPowerVA.map { $0 * pf } ?? r.powerW
        }
    }

    /// A value nobody could believe is not good: not finite, negative apparent power or current, far
    /// beyond any rating, or — for apparent power at the constraint — less than what the sites behind it
    /// are metered to import (an open CT or a shorting link left in reads 0).
    private func implausible(_ mp: MeasurementPointConfig, _ values: [Double], meteredImportW: Double, allMetered: Bool) -> String? {
        let limit = mp.upper?.limit ?? mp.lower?.limit ?? 0
        let unit = switch mp.kind { case .apparentPower: "VA"; case .current: "A"; case .voltage: "V" }
        for v in values {
            if !v.isFinite { return "out of range: \(mp.id) reads \(v) \(unit)" }
            if mp.kind != .voltage && v < 0 { return "out of range: \(mp.id) reads \(number(v)) \(unit), below zero" }
            if limit > 0 && abs(v) > 100 * limit { return "out of range: \(mp.id) reads \(number(v)) \(unit), over 100 × its limit" }
        }
        if mp.kind == .apparentPower, mp.upper != nil, meteredImportW > 0, let v = values.max(),
           v < 0.9 * meteredImportW - 1_000 {
            return "\(mp.id) reads \(number(v / 1000)) kVA, less than the sites' metered import \(number(meteredImportW / 1000)) kW behind it"
        }
        if let lowest = mp.lowestBelievable, let v = values.max(), v < lowest {
            return "\(mp.id) reads \(number(v)) \(unit), below the lowest believable \(number(lowest)) \(unit)"
        }
        return nil
    }

    // MARK: 2. Limits

    private mutating func decideLimits(_ s: CycleSnapshot, _ m: Measured, now: Double, events: inout [CycleEvent]) -> HeadroomController.Decision {
        // Direct mode needs every site's import; without one, reductions come from the set points.
        if config.mode == .direct {
            let fallback = m.siteImport.count < config.sites.count
            if fallback != directFallback {
                directFallback = fallback
                let missing = config.sites.filter { m.siteImport[$0.id] == nil }.map(\.id).joined(separator: ", ")
                events.append(CycleEvent(.log, fallback ? "direct mode falls back to incremental: no PoC import for \(missing)"
                                                        : "direct mode again: every site's PoC import is back"))
            }
        }
        return headroom.tick(now: now, .init(mp: m.mpValues, siteImportW: m.siteImport, secondsOfDay: m.secondsOfDay))
    }

    // MARK: 3. Supervise

    private mutating func supervise(_ s: CycleSnapshot, _ m: Measured, _ d: HeadroomController.Decision, now: Double) -> SupervisorOutput {
        let sites = config.sites.map { site -> SiteInputs in
            let requested = d.sites.first { $0.site == site.id }!.setPointW
            let relay = s.relays[site.id]
            let oscp = s.oscp[site.id]
            // Failing since: the charger relay or the OSCP relay (the FP unreachable or its heartbeat lapsed).
            let failing = [relay?.failingSinceNs, oscp?.failingSinceNs].compactMap { $0 }.min()
            // The site's import: the DNO's PoC meter; without one, what the CPMS reports (lower trust).
            let reported = oscp.flatMap { o in o.reportedAtNs.map { s.monoNs &- $0 < 120_000_000_000 } == true ? o.reportedImportW : nil }
            var aux: Bool? = nil
            var unavailable: String? = nil
            switch s.breakers[site.id] {
            case .closed: aux = true
            case .open: aux = false
            case .unavailable(let why): unavailable = why
            case .notWired: break
            case nil: if config.breakerSites.contains(site.id) { unavailable = "no reading of the breaker this cycle" }
            }
            // The DNO's PoC meter decides non-response; what the CPMS reports can only raise an alarm.
            return SiteInputs(id: site.id, requestedW: requested,
                              safe: SafeSetPoint(firmW: site.floorW, tccW: config.sources[site.id]?.tcc?.watts),
                              pocImportW: m.siteImport[site.id],
                              relayFailingSince: failing.map { Double($0) / 1e9 },
                              breakerClosed: aux, breakerUnavailable: unavailable, reportedImportW: reported, connectionOrder: site.connectionOrder)
        }
        let out = supervisor.tick(SupervisorInputs(now: now, secondsOfDay: m.secondsOfDay, meters: m.meterStatus, sites: sites,
                                                   tripRequests: d.tripRequests,
                                                   upstreamHeartbeatAt: s.upstreamHeartbeatNs.map { Double($0) / 1e9 },
                                                   resetLockout: pendingReset, manualTrips: pendingTrips))
        pendingReset = false
        pendingTrips = [:]
        // A confirmed trip: the constraint's trip delay runs again on newer samples before the next site goes.
        if !out.confirmedTrips.isEmpty { headroom.restartTripDelays(now: now) }
        // Held at the safe set point (start-up, fail-safe, a trip, lockout): the MPs' limits follow what
        // the sites have, so the way back up is by measured room only, not a ramp towards an old limit.
        if [.startup, .failsafe, .tripped, .lockout].contains(out.mode) {
            if heldSince == nil { heldSince = now }
            headroom.hold(atTotal: config.sites.reduce(0) { $0 + (out.setPoints[$1.id] ?? $1.floorW) }, since: heldSince!)
        } else {
            heldSince = nil
        }
        return out
    }

    // MARK: 4. Shape

    private mutating func shape(_ sup: SupervisorOutput, synchronised: Bool) -> [SiteOutput] {
        config.sites.map { site in
            let w = sup.setPoints[site.id] ?? site.floorW
            let value = shapers[site.id]!.shape(watts: w)
            let unit = config.shaper(site.id).unit
            let sentW = unit.toWatts(value)
            // What the supervisor gave the site becomes Headroom's base (no phantom set point). The
            // supervisor's value, not the stepped one: a ramp's increments are smaller than a step,
            // and feeding the step back would eat them and hold the ramp for ever.
            headroom.noteApplied(site: site.id, watts: w)
            var fallback: [Double]? = nil
            if config.oscpSites.contains(site.id) {
                // The fallback the CPMS applies if it loses us: the TCC profile, or the firm value; with
                // an untrusted clock, the profile's minimum all day.
                let tcc = config.sources[site.id]?.tcc
                fallback = tcc.map { synchronised ? $0.watts : [$0.minimum] } ?? [site.floorW]
            }
            return SiteOutput(site: site.id, watts: sentW, value: value, unit: unit, oscpFallbackW: fallback)
        }
    }

    // MARK: 5. Report

    private mutating func report(_ s: CycleSnapshot, _ m: Measured, _ d: HeadroomController.Decision, _ sup: SupervisorOutput,
                                 _ shaped: [SiteOutput], answers: [String], events inEvents: [CycleEvent]) -> CycleOutput {
        var events = inEvents
        if sup.mode != lastMode {
            events.append(CycleEvent(.mode, "\(lastMode?.rawValue ?? "-") → \(sup.mode.rawValue): \(sup.reason)"))
            lastMode = sup.mode
        }
        // An alarm is raised and cleared by its code and subject; its message may change while it stands
        // (a duration counting up) without raising it again.
        var all = sup.alarms + m.pocLost.sorted { $0.key < $1.key }.map { Alarm(code: "POC_METER_LOST", subject: $0.key, message: $0.value) }
        if let why = s.upstreamFailure { all.append(Alarm(code: "UPSTREAM_FAILED", subject: "upstream", message: why)) }
        if let why = s.dnp3Failure { all.append(Alarm(code: "DNP3_FAILED", subject: "dnp3", message: why)) }
        for site in config.sites {
            if let e = s.oscp[site.id]?.complianceError { all.append(Alarm(code: "OSCP_NONCOMPLIANCE", subject: site.id, message: e)) }
        }
        var alarms: [String: String] = [:]
        for a in all { alarms["\(a.code) \(a.subject)"] = a.description }
        for key in Set(alarms.keys).subtracting(lastAlarms.keys).sorted() { events.append(CycleEvent(.alarmRaised, alarms[key]!)) }
        for key in Set(lastAlarms.keys).subtracting(alarms.keys).sorted() { events.append(CycleEvent(.alarmCleared, lastAlarms[key]!)) }
        lastAlarms = alarms
        for (site, command) in sup.breaker.sorted(by: { $0.key < $1.key }) {
            events.append(CycleEvent(.breaker, "\(site): \(command.rawValue) commanded (\(sup.reason))"))
        }

        let upstream = upstreamView(s, m, d, sup, shaped)
        // The samples ring keeps what was measured (the worst phase, unfiltered), as the DNO audits it.
        let sample = SampleRecord(mode: UInt8(upstream.mode),
                                  mps: zip(config.measurementPoints, upstream.mps).map { mp, u in
                                      let raw = (m.mpValues[mp.id] ?? nil).flatMap { mp.upper != nil ? $0.max() : $0.min() }
                                      return .init(value: Float(raw ?? .nan), quality: UInt8(u.quality))
                                  },
                                  sites: upstream.sites.map { .init(setPointW: Float($0.setPointW), boundBy: UInt8($0.boundBy),
                                                                    importW: Float($0.pocImportW ?? .nan)) },
                                  clockSynchronised: s.clockSynchronised)
        // The half hour folds the sample's clock state too: synchronised only if every cycle was.
        let closed = halfHours.add(sample, wallNs: s.wallNs, monoNs: s.monoNs)
        let status = StatusView(
            mode: sup.mode, reason: sup.reason, cycles: cycles, overruns: s.overruns,
            mps: config.measurementPoints.map { mp in
                let st = headroom.mp(mp.id)
                return .init(id: mp.id, kind: mp.kind, value: st?.filtered, state: st?.state.rawValue ?? "?", reason: st?.reason ?? "",
                             limit: mp.upper?.limit ?? mp.lower?.limit ?? 0,
                             meter: config.mpMeter[mp.id].flatMap { s.meters[$0]?.quality } ?? "no meter")
            },
            sites: config.sites.map { site in
                let dec = d.sites.first { $0.site == site.id }!
                let out = shaped.first { $0.site == site.id }!
                let relay = s.relays[site.id]
                let supervised = supervisedBelow(site.id, sup, d)
                return .init(id: site.id, setPointW: out.watts, requestedW: dec.setPointW, boundBy: supervised ? "fail-safe" : "\(dec.boundBy)",
                             reason: supervised ? "\(sup.mode.rawValue): safe set point (headroom would allow \(Int(dec.setPointW / 1000)) kW)" : dec.reason,
                             importW: m.siteImport[site.id], chargerA: relay?.writtenA, appliedA: relay?.appliedA,
                             relayError: relay?.lastError, oscp: s.oscp[site.id].map { o in
                                 "OSCP \(o.group): \(o.phase)" + (o.lastForecastKW.map { ", told \(Int($0)) kW" } ?? "")
                                     + (o.failingSinceNs != nil ? ", FAILING" + (o.lastError.map { " (\($0))" } ?? " (FP heartbeat lapsed)") : "")
                             }, sent: "\(number(out.value)) \(out.unit.symbol)")
            },
            alarms: all.map(\.description))
        return CycleOutput(sites: shaped, breaker: sup.breaker, events: events, answers: answers, sample: sample, halfHour: closed,
                           status: status, upstream: upstream, mode: sup.mode, alarms: all, watchdogOK: sup.watchdogPing)
    }

    /// The supervisor holds the site below what the headroom allows: it is what binds.
    private func supervisedBelow(_ site: String, _ sup: SupervisorOutput, _ d: HeadroomController.Decision) -> Bool {
        let dec = d.sites.first { $0.site == site }!
        return (sup.setPoints[site] ?? 0) < dec.setPointW - 1
    }

    private func upstreamView(_ s: CycleSnapshot, _ m: Measured, _ d: HeadroomController.Decision, _ sup: SupervisorOutput,
                              _ shaped: [SiteOutput]) -> UpstreamView {
        var bits: UInt32 = 0
        for a in sup.alarms { if let i = UpstreamView.alarmCodes.firstIndex(of: a.code) { bits |= 1 << UInt32(i) } }
        if sup.mode == .failsafe { bits |= sup.reason.hasPrefix("blind") ? 1 << 5 : 1 << 6 }
        return UpstreamView(
            mode: UInt16(UpstreamView.modes.firstIndex(of: sup.mode) ?? 0), alarmBits: bits, cycles: UInt32(truncatingIfNeeded: cycles),
            overruns: UInt32(truncatingIfNeeded: s.overruns), trips: 0,
            mps: config.measurementPoints.map { mp in
                let st = headroom.mp(mp.id)
                let usable = (m.mpValues[mp.id] ?? nil) != nil
                return .init(value: st?.filtered, quality: usable ? 0 : 2,
                             state: UInt16(UpstreamView.states.firstIndex(of: st?.state ?? .holding) ?? 0), limitW: st?.limitW,
                             blind: !usable)
            },
            sites: config.sites.map { site in
                let dec = d.sites.first { $0.site == site.id }!
                let out = shaped.first { $0.site == site.id }!
                let name = "\(dec.boundBy)".split(separator: ":").first.map(String.init) ?? ""
                let bound = supervisedBelow(site.id, sup, d) ? 9 : UInt16(UpstreamView.sources.firstIndex(of: name) ?? 0)
                let relay = s.relays[site.id], oscp = s.oscp[site.id]
                // Deaf: a relay of the site fails; unknown when it has none this cycle.
                let deaf: Bool? = relay == nil && oscp == nil ? nil : (relay?.failingSinceNs != nil || oscp?.failingSinceNs != nil)
                let breaker: Bool? = switch s.breakers[site.id] {
                case .closed?: true
                case .open?: false
                default: nil   // not read, not wired, no breaker: never reported as a good value
                }
                return .init(setPointW: out.watts, boundBy: bound, pocImportW: m.siteImport[site.id],
                             relayOK: relay?.failingSinceNs == nil, appliedA: relay?.appliedA, deaf: deaf, breakerClosed: breaker)
            })
    }
}

/// One site's set point as sent this cycle.
public struct SiteOutput: Sendable, Equatable {
    public var site: String
    /// The set point in W, as the shaped value means it.
    public var watts: Double
    /// The value in the receiver's unit, shaped: what the charger relay writes, exactly.
    public var value: Double
    public var unit: SetPointUnit
    /// For an OSCP site: the fallback profile the CPMS applies if it loses us (W; 48 half hours or one value).
    public var oscpFallbackW: [Double]?
}

/// Everything a cycle decided, as values for the shell to perform.
public struct CycleOutput: Sendable {
    public var sites: [SiteOutput]
    public var breaker: [String: BreakerCommand]
    /// For the events ring and the journal, in order.
    public var events: [CycleEvent]
    /// The answers to this cycle's console commands, in their order.
    public var answers: [String]
    public var sample: SampleRecord
    /// A half hour that closed with this cycle.
    public var halfHour: HalfHourRecord?
    public var status: StatusView
    public var upstream: UpstreamView
    public var mode: Mode
    public var alarms: [Alarm]
    /// The cycle completed as it should: the watchdog may be fed.
    public var watchdogOK: Bool
    /// Set when the breakers' memory changed this cycle (a trip, an open, a lockout, a close): what
    /// must outlive the process, for `breakers.state`.
    public var breakerMemory: [String: BreakerMemory]? = nil

    public func site(_ id: String) -> SiteOutput? { sites.first { $0.site == id } }
}

func number(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e12 ? String(Int64(r)) : String(r)
}

extension HalfHourAccumulator {
    /// What each half-hour record is judged against: the MPs' limits and the sites' ceilings.
    public init(mps: [MeasurementPointConfig], sites: [SiteConfig]) {
        self.init(
            mps: mps.map { mp in
                let t = mp.upper ?? mp.lower
                let unit: UInt8 = switch mp.kind { case .current: 0; case .apparentPower: 1; case .voltage: 2 }
                return MPSpec(name: mp.id, unit: unit, lowerLimit: mp.upper == nil, limit: t?.limit ?? .nan, trip: t?.trip)
            },
            sites: sites.map { SiteSpec(name: $0.id, ceilingW: $0.ceilingW) })
    }
}
