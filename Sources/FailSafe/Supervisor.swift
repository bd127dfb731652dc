/// The fail-safe supervisor (DESIGN.md §4): every fault has a defined outcome. Pure: time and inputs in,
/// mode, effective set points, breaker commands, alarms and the watchdog decision out. Time is
/// monotonic seconds; `secondsOfDay` (local) is only used to pick the TCC half-hour.
public struct SupervisorConfig: Sendable, Equatable {
    /// No good constraint sample for this long: blind (≈ 3 polls, at most 1 s).
    public var blindTime: Double
    /// Leave STARTUP / FAILSAFE only after this many consecutive good samples.
    public var goodSamplesToRecover: Int
    /// After start-up or power restoration, wait a delay drawn in this window (seconds), seeded per
    /// box, so a fleet restored together does not rebound together.
    public var startupDelayWindow: ClosedRange<Double>
    public var boxSeed: UInt64
    /// After leaving STARTUP/FAILSAFE the effective set point ramps up from the safe one at this rate.
    public var recoveryRampWPerSecond: Double
    /// Centrally managed mode: the upstream heartbeat must be newer than this (nil: not managed).
    public var upstreamHeartbeatTimeout: Double?
    /// Non-response: PoC import above set point + tolerance…
    public var nonResponseToleranceW: Double
    /// …for longer than this → trip.
    public var responseTime: Double
    /// The breaker's auxiliary contact must confirm a trip or close within this.
    public var breakerConfirmTime: Double
    /// Re-close automatically this long after a trip, when conditions allow (nil: never).
    public var autoCloseDelay: Double?
    /// More than this many trips within `tripWindow` → LOCKOUT.
    public var maxTrips: Int
    public var tripWindow: Double
    /// A relay failing for longer than this raises an alarm (the charger's own fallback holds).
    public var relayAlarmAfter: Double

    public init(blindTime: Double = 1, goodSamplesToRecover: Int = 10, startupDelayWindow: ClosedRange<Double> = 0...60,
                boxSeed: UInt64 = 0, recoveryRampWPerSecond: Double = 2_000, upstreamHeartbeatTimeout: Double? = nil,
                nonResponseToleranceW: Double = 10_000, responseTime: Double = 30, breakerConfirmTime: Double = 1,
                autoCloseDelay: Double? = 300, maxTrips: Int = 3, tripWindow: Double = 3600, relayAlarmAfter: Double = 5) {
        self.blindTime = blindTime
        self.goodSamplesToRecover = goodSamplesToRecover
        self.startupDelayWindow = startupDelayWindow
        self.boxSeed = boxSeed
        self.recoveryRampWPerSecond = recoveryRampWPerSecond
        self.upstreamHeartbeatTimeout = upstreamHeartbeatTimeout
        self.nonResponseToleranceW = nonResponseToleranceW
        self.responseTime = responseTime
        self.breakerConfirmTime = breakerConfirmTime
        self.autoCloseDelay = autoCloseDelay
        self.maxTrips = maxTrips
        self.tripWindow = tripWindow
        self.relayAlarmAfter = relayAlarmAfter
    }

    /// The start-up delay of this box: deterministic per seed, spread over the window.
    public var startupDelay: Double {
        var z = boxSeed &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let f = Double(z >> 11) / Double(1 << 53)
        return startupDelayWindow.lowerBound + f * (startupDelayWindow.upperBound - startupDelayWindow.lowerBound)
    }
}

/// What the safe set point is for one site: the firm capacity, or better the TCC half-hourly profile
/// from the connection study, so a blind box still releases what planning allows at that time of day.
public struct SafeSetPoint: Sendable, Equatable {
    public var firmW: Double
    /// 48 half-hourly values (W) from 00:00, or nil.
    public var tccW: [Double]?

    public init(firmW: Double, tccW: [Double]? = nil) {
        self.firmW = firmW
        self.tccW = tccW?.count == 48 ? tccW : nil
    }

    /// nil: the wall clock is not known to be synchronised — the profile's minimum.
    public func watts(secondsOfDay: Double?) -> Double {
        guard let tccW else { return firmW }
        guard let secondsOfDay else { return tccW.min() ?? firmW }
        let s = secondsOfDay.truncatingRemainder(dividingBy: 86_400)
        return tccW[min(47, max(0, Int((s < 0 ? s + 86_400 : s) / 1800)))]
    }
}

/// One constraint meter's health as the drivers report it. Meters in the same `group` measure the
/// same thing (redundant): the group is seen while one of them is good.
public struct MeterStatus: Sendable, Equatable {
    public var id: String
    public var group: String
    /// Monotonic time of the device's last good reply (nil: never).
    public var lastGoodAt: Double?
    /// The sample of this tick is good.
    public var goodNow: Bool
    /// This tick's sample is a new reading (not the last one seen again because the meter is polled
    /// slower than the cycle runs): only new good readings count towards `goodSamplesToRecover`.
    public var newReading: Bool = true
    /// What is wrong with it, when it is not ("timeout", "frozen for 10 polls"): named in the reason.
    public var problem: String?

    public init(id: String, group: String? = nil, lastGoodAt: Double?, goodNow: Bool) {
        self.id = id
        self.group = group ?? id
        self.lastGoodAt = lastGoodAt
        self.goodNow = goodNow
    }
}

public struct SiteInputs: Sendable, Equatable {
    public var id: String
    /// What Headroom asks for (W).
    public var requestedW: Double
    public var safe: SafeSetPoint
    /// The site's import from the DNO's PoC meter (nil: unknown).
    public var pocImportW: Double?
    /// The relay to its charger / CPMS has failed since this time (nil: healthy).
    public var relayFailingSince: Double?
    /// The breaker's auxiliary contact: true closed, false open, nil not wired.
    public var breakerClosed: Bool?
    /// Why the breaker cannot be read or driven (its lines did not open, the aux read failed): nothing
    /// about it is assumed — a trip is never taken as done.
    public var breakerUnavailable: String?
    /// The import the CPMS reports (W): lower trust than the DNO's meter. It can raise an alarm, never a trip.
    public var reportedImportW: Double?
    /// LIFO: higher is the later connection, tripped first.
    public var connectionOrder: Int

    public init(id: String, requestedW: Double, safe: SafeSetPoint, pocImportW: Double? = nil, relayFailingSince: Double? = nil,
                breakerClosed: Bool? = nil, breakerUnavailable: String? = nil, reportedImportW: Double? = nil, connectionOrder: Int = 0) {
        self.breakerUnavailable = breakerUnavailable
        self.reportedImportW = reportedImportW
        self.id = id
        self.requestedW = requestedW
        self.safe = safe
        self.pocImportW = pocImportW
        self.relayFailingSince = relayFailingSince
        self.breakerClosed = breakerClosed
        self.connectionOrder = connectionOrder
    }
}

public struct SupervisorInputs: Sendable, Equatable {
    public var now: Double
    /// Local seconds of the day for the TCC half hour; nil while the wall clock is not trusted.
    public var secondsOfDay: Double?
    public var meters: [MeterStatus]
    public var sites: [SiteInputs]
    /// MP ids whose trip threshold has been exceeded for its delay (from Headroom).
    public var tripRequests: [String]
    /// Last upstream heartbeat (centrally managed mode).
    public var upstreamHeartbeatAt: Double?
    /// The previous control cycle completed within its period.
    public var cycleOnTime: Bool
    /// An engineer ran `lmc reset-lockout`.
    public var resetLockout: Bool
    /// Sites an engineer asked to trip (`lmc test trip`), with who asked.
    public var manualTrips: [String: String]

    public init(now: Double, secondsOfDay: Double? = 0, meters: [MeterStatus], sites: [SiteInputs], tripRequests: [String] = [],
                upstreamHeartbeatAt: Double? = nil, cycleOnTime: Bool = true, resetLockout: Bool = false,
                manualTrips: [String: String] = [:]) {
        self.now = now
        self.secondsOfDay = secondsOfDay
        self.meters = meters
        self.sites = sites
        self.tripRequests = tripRequests
        self.upstreamHeartbeatAt = upstreamHeartbeatAt
        self.cycleOnTime = cycleOnTime
        self.resetLockout = resetLockout
        self.manualTrips = manualTrips
    }
}

public enum BreakerCommand: String, Sendable, Equatable { case trip, close }

public struct Alarm: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var code: String
    public var subject: String
    public var message: String
    public var description: String { "\(code) \(subject): \(message)" }
    public init(code: String, subject: String, message: String) {
        self.code = code
        self.subject = subject
        self.message = message
    }
}

public struct SupervisorOutput: Sendable, Equatable {
    public var mode: Mode
    public var reason: String
    /// Per site: the set point to relay (W) and why it differs from Headroom's, if it does.
    public var setPoints: [String: Double]
    public var breaker: [String: BreakerCommand]
    public var alarms: [Alarm]
    /// Send WATCHDOG=1 this cycle.
    public var watchdogPing: Bool
    /// Sites whose trip the auxiliary contact confirmed this tick: the trip delay of the constraint
    /// must run again on newer samples before the next site goes (no cascade).
    public var confirmedTrips: [String] = []
}

/// What of one site's breaker must outlive the process (`lmc run` keeps it in `breakers.state`): a
/// lockout, a trip it commanded that is not closed again, and the trips still inside the trip window.
/// Times are ages in seconds at the moment the memory was taken, so no clock is assumed to survive.
public struct BreakerMemory: Sendable, Equatable {
    public enum State: String, Sendable, Equatable { case lockout, open, tripping }
    public var state: State?
    public var reason: String
    public var tripAges: [Double]
    public init(state: State?, reason: String = "", tripAges: [Double] = []) {
        self.state = state
        self.reason = reason
        self.tripAges = tripAges
    }
}

/// The supervisor's memory between ticks.
public struct Supervisor: Sendable {
    public let config: SupervisorConfig

    enum Measurement: Equatable {
        case startup(goodRun: Int, goodSince: Double?)
        case failsafe(goodRun: Int, since: Double, reason: String)
        case seeing(since: Double, rampFrom: Double?)
    }

    enum BreakerState: Equatable {
        case closed
        case nonResponse(since: Double)
        case tripping(commandedAt: Double, reason: String)
        case tripFailed(since: Double, reason: String)
        case open(since: Double, reason: String)
        case closing(commandedAt: Double)
        case lockout(reason: String)
        /// Commanded closed, but the auxiliary contact reads open: opened by its own protection or by hand.
        case openedExternally(since: Double)
    }

    private var measurement: Measurement = .startup(goodRun: 0, goodSince: nil)
    private var breakers: [String: BreakerState] = [:]
    private var aboveSince: [String: Double] = [:]
    private var reportedAboveSince: [String: Double] = [:]
    private var trips: [String: [Double]] = [:]
    private var started: Double?
    /// A site whose breaker closed again ramps from its safe set point, alone: the others keep theirs.
    private var siteRampFrom: [String: Double] = [:]

    public init(_ config: SupervisorConfig) { self.config = config }

    /// The breaker memory of every site that has any, with trip ages taken at `now`.
    public func breakerMemory(now: Double) -> [String: BreakerMemory] {
        var out: [String: BreakerMemory] = [:]
        for site in Set(breakers.keys).union(trips.keys) {
            let kept = remembered(breakers[site])
            let m = BreakerMemory(state: kept?.state, reason: kept?.reason ?? "",
                                  tripAges: trips[site, default: []].filter { now - $0 <= config.tripWindow }.map { max(0, now - $0) })
            if m.state != nil || !m.tripAges.isEmpty { out[site] = m }
        }
        return out
    }

    /// The part of a breaker's state that outlives the process, with its reason.
    private func remembered(_ state: BreakerState?) -> (state: BreakerMemory.State, reason: String)? {
        switch state {
        case .lockout(let reason): (.lockout, reason)
        case .open(_, let reason): (.open, reason)
        case .tripping(_, let reason), .tripFailed(_, let reason): (.tripping, reason)
        default: nil
        }
    }

    /// What changes the memory (a state, a trip), not the passing of time: compared each cycle to know
    /// when `breakers.state` must be written again.
    public var breakerMemoryKey: [String: String] {
        var key: [String: String] = [:]
        for site in Set(breakers.keys).union(trips.keys) {
            let state = remembered(breakers[site]).map { "\($0.state.rawValue) \($0.reason)" } ?? ""
            key[site] = state + " " + trips[site, default: []].map { "\($0)" }.joined(separator: ",")
        }
        return key
    }

    /// Takes the memory of a process before this one, at `now`: a lockout stays a lockout until an
    /// engineer resets it; an open commanded by lmc stays open (an automatic close waits its delay
    /// again); a trip in flight is a trip not confirmed, pulsed again after the confirm time; trips
    /// count towards `max_trips` by their age.
    public mutating func restore(_ memory: [String: BreakerMemory], now: Double) {
        for (site, m) in memory {
            let ages = m.tripAges.filter { $0 >= 0 && $0 <= config.tripWindow }
            if !ages.isEmpty { trips[site] = ages.map { now - $0 }.sorted() }
            switch m.state {
            case .lockout: breakers[site] = .lockout(reason: m.reason)
            case .open: breakers[site] = .open(since: now, reason: m.reason)
            case .tripping: breakers[site] = .tripFailed(since: now, reason: m.reason)
            case nil: break
            }
        }
    }

    public mutating func tick(_ input: SupervisorInputs) -> SupervisorOutput {
        let now = input.now
        if started == nil { started = now }
        var alarms: [Alarm] = []

        // 1. Can we see? Every meter group must have a good sample within the blind time.
        var groups: [String: [MeterStatus]] = [:]
        for m in input.meters { groups[m.group, default: []].append(m) }
        var blindGroups: [String] = []
        var degraded: [String] = []
        for (g, ms) in groups.sorted(by: { $0.key < $1.key }) {
            let fresh = ms.filter { m in m.lastGoodAt.map { now - $0 <= config.blindTime } ?? false }
            if fresh.isEmpty {
                let last = ms.compactMap(\.lastGoodAt).max()
                let why = ms.compactMap(\.problem).first.map { " (\($0))" } ?? ""
                blindGroups.append((last.map { "\(g) lost \(fmt(now - $0)) s ago" } ?? "\(g) never seen") + why)
            } else if fresh.count < ms.count {
                let lost = ms.filter { m in !fresh.contains(m) }.map(\.id)
                degraded.append("\(g): \(lost.joined(separator: ", ")) lost, using \(fresh.map(\.id).joined(separator: ", "))")
                for id in lost { alarms.append(Alarm(code: "METER_LOST", subject: id, message: "redundant meter lost; using the other")) }
            }
        }
        let allGoodNow = !input.meters.isEmpty && groups.values.allSatisfy { $0.contains { $0.goodNow } }
        // A good sample is a new good reading: a cycle that sees the last one again adds nothing.
        let goodStep = input.meters.contains { $0.goodNow && $0.newReading } ? 1 : 0
        var deafReason: String?
        if let timeout = config.upstreamHeartbeatTimeout {
            if let hb = input.upstreamHeartbeatAt {
                if now - hb > timeout { deafReason = "upstream heartbeat lapsed \(fmt(now - hb)) s ago" }
            } else if now - started! > timeout {
                deafReason = "no upstream heartbeat since start"
            }
        }
        let blindReason: String? = input.meters.isEmpty ? "no constraint meter configured"
            : blindGroups.isEmpty ? nil : "blind: " + blindGroups.joined(separator: "; ")
        let unsafe = blindReason ?? deafReason

        switch measurement {
        case .startup(let run, let since):
            let run2 = allGoodNow && blindReason == nil ? run + goodStep : 0
            let since2 = run2 >= config.goodSamplesToRecover ? (since ?? now) : nil
            if let s = since2, now - s >= config.startupDelay, unsafe == nil {
                measurement = .seeing(since: now, rampFrom: now)
            } else {
                measurement = .startup(goodRun: run2, goodSince: since2)
            }
        case .failsafe(let run, let since, _):
            if let unsafe {
                measurement = .failsafe(goodRun: 0, since: since, reason: unsafe)
            } else {
                let run2 = allGoodNow ? run + goodStep : 0
                measurement = run2 >= config.goodSamplesToRecover
                    ? .seeing(since: now, rampFrom: now)
                    : .failsafe(goodRun: run2, since: since, reason: "recovering: \(run2)/\(config.goodSamplesToRecover) good samples")
            }
        case .seeing:
            if let unsafe { measurement = .failsafe(goodRun: 0, since: now, reason: unsafe) }
        }

        // 2. Set points: safe while blind or deaf, a ramp from safe after recovering.
        var setPoints: [String: Double] = [:]
        var breaker: [String: BreakerCommand] = [:]
        for site in input.sites {
            let safe = site.safe.watts(secondsOfDay: input.secondsOfDay)
            var sp: Double
            switch measurement {
            case .startup, .failsafe:
                sp = min(site.requestedW, safe)
            case .seeing(_, let rampFrom):
                sp = site.requestedW
                if let r = rampFrom { sp = min(sp, max(safe, safe + config.recoveryRampWPerSecond * (now - r))) }
            }
            if let r = siteRampFrom[site.id] {
                let ramp = safe + config.recoveryRampWPerSecond * (now - r)
                sp = min(sp, max(safe, ramp))
                if ramp >= site.requestedW { siteRampFrom[site.id] = nil }
            }
            if let f = site.relayFailingSince, now - f >= config.relayAlarmAfter {
                alarms.append(Alarm(code: "RELAY_FAILING", subject: site.id,
                                    message: "set point not delivered for \(fmt(now - f)) s; the charger's own fallback holds"))
            }
            setPoints[site.id] = sp
        }
        if case .seeing(let since, let rampFrom?) = measurement {
            let done = input.sites.allSatisfy { s in
                let safe = s.safe.watts(secondsOfDay: input.secondsOfDay)
                return safe + config.recoveryRampWPerSecond * (now - rampFrom) >= s.requestedW
            }
            if done { measurement = .seeing(since: since, rampFrom: nil) }
        }

        // 3. Breakers: non-response, last-resort trips, confirmation, close, lockout.
        var confirmed: [String] = []
        let seeing: Bool = { if case .seeing = measurement { true } else { false } }()
        var tripNeeded = Set<String>()
        if !input.tripRequests.isEmpty {
            // Smart trip: the latest connection first; the next only if the request persists after it is open.
            let closedSites = input.sites.filter { breakers[$0.id, default: .closed] == .closed || isNonResponse(breakers[$0.id]) }
            let anyInFlight = input.sites.contains { if case .tripping = breakers[$0.id, default: .closed] { true } else { false } }
            if !anyInFlight, let victim = closedSites.max(by: { $0.connectionOrder < $1.connectionOrder }) {
                tripNeeded.insert(victim.id)
            }
        }
        for site in input.sites {
            var state = breakers[site.id, default: .closed]
            let sp = setPoints[site.id]!
            switch state {
            case .closed, .nonResponse:
                if site.breakerClosed == false && site.breakerUnavailable == nil {
                    state = .openedExternally(since: now)
                    aboveSince[site.id] = nil
                    break
                }
                if let who = input.manualTrips[site.id] {
                    state = .tripping(commandedAt: now, reason: "test trip by \(who)")
                    breaker[site.id] = .trip
                    break
                }
                if tripNeeded.contains(site.id) {
                    state = .tripping(commandedAt: now, reason: "constraint trip threshold: \(input.tripRequests.joined(separator: ", "))")
                    breaker[site.id] = .trip
                    break
                }
                if let poc = site.pocImportW, poc > sp + config.nonResponseToleranceW {
                    let since = aboveSince[site.id] ?? now
                    aboveSince[site.id] = since
                    if now - since >= config.responseTime {
                        state = .tripping(commandedAt: now, reason: "non-response: imports \(fmtK(poc)) against \(fmtK(sp)) for \(fmt(now - since)) s")
                        breaker[site.id] = .trip
                    } else {
                        state = .nonResponse(since: since)
                    }
                } else {
                    aboveSince[site.id] = nil
                    state = .closed
                }
            case .tripping(let at, let reason):
                let notWired = site.breakerClosed == nil && site.breakerUnavailable == nil
                if site.breakerClosed == false || notWired && now - at >= config.breakerConfirmTime {
                    // Open (confirmed, or no aux contact wired: assumed after the confirm time). A
                    // breaker that cannot be read is never taken as open.
                    trips[site.id, default: []].append(now)
                    state = .open(since: now, reason: reason)
                    confirmed.append(site.id)
                } else if now - at >= config.breakerConfirmTime {
                    state = .tripFailed(since: now, reason: reason)
                    breaker[site.id] = .trip // try again, and say so
                }
            case .tripFailed(let since, let reason):
                alarms.append(Alarm(code: "TRIP_FAILED", subject: site.id, message: "breaker did not confirm open for \(fmt(now - since + config.breakerConfirmTime)) s (\(reason))"))
                if site.breakerClosed == false {
                    trips[site.id, default: []].append(now)
                    state = .open(since: now, reason: reason)
                    confirmed.append(site.id)
                } else if now - since >= config.breakerConfirmTime {
                    breaker[site.id] = .trip
                    state = .tripFailed(since: now, reason: reason)
                }
            case .open(let since, let reason):
                let recent = trips[site.id, default: []].filter { now - $0 <= config.tripWindow }
                trips[site.id] = recent
                if site.breakerClosed == true && site.breakerUnavailable == nil && recent.count < config.maxTrips {
                    // Closed by hand on site (the auxiliary contact says so): back to normal, with the
                    // ramp from the safe set point, as after an automatic close.
                    state = .closed
                    aboveSince[site.id] = nil
                    siteRampFrom[site.id] = now
                } else if recent.count >= config.maxTrips {
                    state = .lockout(reason: "\(recent.count) trips within \(fmt(config.tripWindow)) s; last: \(reason)")
                } else if let delay = config.autoCloseDelay, now - since >= delay, seeing, input.tripRequests.isEmpty {
                    state = .closing(commandedAt: now)
                    breaker[site.id] = .close
                }
            case .closing(let at):
                let notWired = site.breakerClosed == nil && site.breakerUnavailable == nil
                if site.breakerClosed == true || notWired && now - at >= config.breakerConfirmTime {
                    state = .closed
                    aboveSince[site.id] = nil
                    siteRampFrom[site.id] = now // this site ramps from safe after a close
                } else if now - at >= config.breakerConfirmTime {
                    alarms.append(Alarm(code: "CLOSE_FAILED", subject: site.id, message: "breaker did not confirm closed"))
                    state = .open(since: now, reason: "close not confirmed")
                }
            case .openedExternally(let since):
                alarms.append(Alarm(code: "BREAKER_OPENED", subject: site.id,
                                    message: "the breaker opened without a command \(fmt(now - since)) s ago (its own protection, or by hand, or held by lmc before a restart); close it on site or run lmc reset-lockout"))
                if input.resetLockout {
                    // The engineer takes it as a trip of ours: an automatic close follows when conditions
                    // allow (and releases a held trip output), or a close by hand.
                    state = .open(since: now - (config.autoCloseDelay ?? 0), reason: "reset by engineer after an open without a command")
                } else if site.breakerClosed == true {
                    state = .closed
                    siteRampFrom[site.id] = now // this site ramps from safe after a close
                }
            case .lockout(let reason):
                if input.resetLockout {
                    trips[site.id] = []
                    state = .open(since: now - (config.autoCloseDelay ?? 0), reason: "lockout reset by engineer")
                } else {
                    alarms.append(Alarm(code: "LOCKOUT", subject: site.id, message: reason))
                }
            }
            if let why = site.breakerUnavailable {
                alarms.append(Alarm(code: "BREAKER_UNAVAILABLE", subject: site.id, message: "\(why); a trip cannot be confirmed"))
            }
            // What the CPMS reports is never the DNO's meter: an alarm after the response time, never a trip.
            if let reported = site.reportedImportW, site.pocImportW == nil, reported > sp + config.nonResponseToleranceW {
                let since = reportedAboveSince[site.id] ?? now
                reportedAboveSince[site.id] = since
                if now - since >= config.responseTime {
                    alarms.append(Alarm(code: "CPMS_IMPORT_HIGH", subject: site.id,
                                        message: "the CPMS reports \(fmtK(reported)) against \(fmtK(sp)) for \(fmt(now - since)) s (not a DNO meter: no trip)"))
                }
            } else {
                reportedAboveSince[site.id] = nil
            }
            breakers[site.id] = state
            switch state {
            case .open, .tripping, .tripFailed, .lockout, .closing, .openedExternally: setPoints[site.id] = min(setPoints[site.id]!, site.safe.watts(secondsOfDay: input.secondsOfDay))
            default: break
            }
        }

        // 4. The mode shown: the most severe thing going on, with its reason.
        var mode = Mode.normal
        var reason = "seeing the constraint; set points follow the headroom"
        func raise(_ m: Mode, _ r: String) {
            if severity(m) > severity(mode) { mode = m; reason = r }
        }
        switch measurement {
        case .startup(let run, let since):
            raise(.startup, since.map { "\(run) good samples; start-up delay \(fmt(config.startupDelay - (now - $0))) s left" }
                ?? "waiting for \(config.goodSamplesToRecover) consecutive good samples (\(run) so far)")
        case .failsafe(_, _, let r):
            raise(.failsafe, r)
        case .seeing(_, let rampFrom):
            if rampFrom != nil {
                reason = "ramping up from the safe set point"
            } else if !siteRampFrom.isEmpty {
                reason = "\(siteRampFrom.keys.sorted().joined(separator: ", ")) ramping up from the safe set point after a close"
            }
        }
        if !degraded.isEmpty { raise(.degraded, "degraded: " + degraded.joined(separator: "; ")) }
        // While the box itself holds the sites at safe (start-up, blind), a site still above that set
        // point is following it: the mode says why the set point is safe. The NON_RESPONSE alarm shows
        // the site, and a site that does not follow still trips after the response time.
        let holdingSafe: Bool
        switch measurement {
        case .startup, .failsafe: holdingSafe = true
        case .seeing: holdingSafe = false
        }
        for (id, state) in breakers.sorted(by: { $0.key < $1.key }) {
            switch state {
            case .nonResponse(let since): if !holdingSafe { raise(.nonResponse, "\(id) above its set point + tolerance for \(fmt(now - since)) s") }
            case .tripping(_, let r), .tripFailed(_, let r): raise(.nonResponse, "\(id): tripping (\(r))")
            case .open(_, let r): raise(.tripped, "\(id) breaker open: \(r)")
            case .closing: raise(.tripped, "\(id) breaker closing")
            case .lockout(let r): raise(.lockout, "\(id) locked out: \(r); run lmc reset-lockout")
            case .openedExternally: raise(.tripped, "\(id) breaker open without a command (its protection, or by hand)")
            case .closed: break
            }
        }
        return SupervisorOutput(mode: mode, reason: reason, setPoints: setPoints, breaker: breaker,
                                alarms: alarms, watchdogPing: input.cycleOnTime, confirmedTrips: confirmed)
    }

    private func isNonResponse(_ s: BreakerState?) -> Bool { if case .nonResponse = s { true } else { false } }
}

private func severity(_ m: Mode) -> Int {
    switch m {
    case .normal: 0
    case .degraded: 1
    case .startup: 2
    case .failsafe: 3
    case .nonResponse: 4
    case .tripped: 5
    case .lockout: 6
    }
}

/// Total: any Double, finite or not, prints (3.4e38 once trapped in Int()).
func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e15 ? String(Int64(r)) : String(r)
}

func fmtK(_ w: Double) -> String { "\(fmt(w / 1000)) kW" }
