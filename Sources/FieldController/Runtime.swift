import CTSensorDriver
import DigitalIO
import FailSafe
import Headroom
import LMCConfig
import ModbusBridge
import OSCP
import RingLog
import SetPointRelay
import Supervision
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Set by SIGTERM/SIGINT (stop) and SIGHUP (reload); read by the control loop.
let stopSignal = Atomic<Int>(0)
let reloadSignal = Atomic<Int>(0)


/// The daemon: sensors → Headroom → FailSafe → relays, every period on the monotonic clock. Buses and
/// relays run on their own threads and meet the loop in latest-value slots; nothing queues.
final class Runtime {
    private(set) var config: Configuration
    private let configPath: String
    private var headroom: HeadroomController
    private var supervisor: Supervisor
    private var buses: [BusWorker] = []
    private var slots: [String: LatestReading] = [:]
    private var relays: [String: RelayWorker] = [:]
    private var upstream: UpstreamServer?
    private var oscp: OSCPCapacityProvider?
    private var breakers: [String: BreakerDriver] = [:]
    private var manualTrips: [String: String] = [:]
    /// Set when LMC_GPIO_SIMULATOR stands in for the GPIO chip (no hardware: demos, tests).
    private var breakerModel: SimulatedBreakers?
    private var logStore: LogStore?
    private var halfHours: HalfHourAccumulator
    /// Events from other threads (the control socket), written by the loop.
    let inbox = EventInbox()
    private var lastMode: Mode?
    private var lastAlarms: [String: String] = [:]
    private var clockOffsetNs: Int64?
    let status = StatusBoard()
    let commands = CommandQueue()
    private var resetRequested = false
    private let notifier = SystemdNotifier()
    private var cycles = 0
    private var overruns = 0

    init(config: Configuration, path: String) throws {
        self.config = config
        self.configPath = path
        headroom = try config.controller()
        supervisor = Supervisor(config.runtime.supervisor)
        halfHours = HalfHourAccumulator(mps: config.measurementPoints, sites: config.sites)
    }

    /// Writes a closed half hour to its ring.
    private func write(_ h: HalfHourRecord?) {
        guard let h else { return }
        do { try logStore?.record(h, wallNs: wallNs(), monoNs: monotonicNanoseconds()) } catch {
            status.note("ring log write failed: \(error)")
        }
    }

    private func openLog() {
        let l = config.runtime.log
        do {
            let store = try LogStore(directory: l.directory, boxID: config.runtime.boxID, samplesMB: l.samplesMB, eventsMB: l.eventsMB, halfHoursMB: l.halfHoursMB,
                                     syncIntervalSeconds: l.syncIntervalSeconds)
            for moved in store.movedAside { log("ring log: corrupt header, moved aside to \(moved); a new ring was started") }
            logStore = store
        } catch {
            log("ring log not available: \(error); running without it")
            status.note("ring log not available: \(error)")
        }
    }

    /// Echo events to stderr (the journal under systemd); the demo turns it off to keep its screen.
    var echoEvents = true

    /// Appends an event to the events ring (and the journal).
    func event(_ kind: EventRecord.Kind, _ text: String) {
        if echoEvents { log("event \(kind.name): \(text)") }
        let mono = monotonicNanoseconds()
        do { try logStore?.event(EventRecord(kind: kind, text: text), wallNs: wallNs(), monoNs: mono) } catch {
            status.note("ring log write failed: \(error)")
        }
    }

    private func startIO() {
        let rc = config.runtime
        for bus in rc.buses {
            let meters = rc.meters.filter { $0.bus == bus.id }.map { m -> BusWorker.Meter in
                let slot = LatestReading()
                slots[m.id] = slot
                return .init(name: m.id, profile: m.profile, unit: m.unit, rules: m.rules, periodMs: m.pollMilliseconds, slot: slot)
            }
            let worker = BusWorker(endpoint: bus.endpoint, options: .init(responseTimeoutMilliseconds: bus.timeoutMilliseconds), meters: meters)
            worker.start()
            buses.append(worker)
        }
        for c in rc.chargers {
            let site = config.sites.first { $0.id == c.site }!
            let safeA = c.conversion.amps(forWatts: site.floorW, minA: c.profile.minCurrentA, maxA: c.maxCurrentA)
            let worker = RelayWorker {
                try ModbusChargerRelay(profile: c.profile, endpoint: c.endpoint, unit: c.unit, conversion: c.conversion, safeCurrentA: safeA,
                                       maxCurrentA: c.maxCurrentA, options: .init(responseTimeoutMilliseconds: c.timeoutMilliseconds))
            }
            worker.post(watts: site.floorW)   // until the first cycle decides: the safe set point
            worker.start()
            relays[c.site] = worker
        }
        for (site, wiring) in rc.breakers {
            do {
                breakers[site] = try BreakerDriver(wiring)
            } catch {
                log("breaker of site \(site) not available: \(error)")
                status.note("breaker \(site): \(error)")
            }
        }
        if var o = rc.oscp {
            o.stateFile = "\(rc.log.directory)/oscp.state"
            let inbox = inbox
            do {
                let p = try OSCPCapacityProvider(o) { text, alarm in inbox.post(alarm ? .alarmRaised : .log, text) }
                p.start()
                oscp = p
            } catch {
                log("OSCP endpoint not started: \(error)")
                status.note("OSCP failed: \(error)")
            }
        }
        if let u = rc.upstream {
            do {
                upstream = try UpstreamServer(host: u.listen, port: u.port, allowedWriters: u.allowedWriters, software: (0, 1, 0), limits: u.limits)  // net: limits
            } catch {
                log("upstream Modbus server not started: \(error)")
                status.note("upstream server failed: \(error)")
            }
        }
    }

    private func stopIO() {
        upstream?.stop()
        upstream = nil
        oscp?.stop()
        oscp = nil
        breakers = [:]
        buses.forEach { $0.stop() }
        relays.values.forEach { $0.stop() }
        buses = []
        relays = [:]
        slots = [:]
    }

    /// Runs until SIGTERM. Chargers keep their own fallback after we stop.
    func run() {
        if let spec = getenv("LMC_GPIO_SIMULATOR").map({ String(cString: $0) }) {
            let model = SimulatedBreakers(spec: spec, wirings: Array(config.runtime.breakers.values))
            breakerModel = model
            log("GPIO simulated (LMC_GPIO_SIMULATOR=\(spec)): no real lines are driven")
            GPIOSimulator.with(model.sim) { loop() }
        } else {
            loop()
        }
    }

    private func loop() {
        if logStore == nil { openLog() }
        event(.start, "lmc \(LMC.version) started, box \(config.runtime.boxID)")
        event(.config, "loaded \(configPath) (fnv1a64 \(configHash))")
        startIO()
        notifier.ready(status: "control loop running, \(config.periodMilliseconds) ms period")
        let period = UInt64(config.periodMilliseconds) * 1_000_000
        var next = monotonicNanoseconds() + period
        while stopSignal.load(ordering: .relaxed) == 0 {
            if reloadSignal.exchange(0, ordering: .relaxed) != 0 { reload() }
            let onTime = tick(nowNs: monotonicNanoseconds())
            cycles += 1
            let now = monotonicNanoseconds()
            if now > next + period / 2 {
                overruns += 1
                // Logged at the first and then every 100th, so a slow box does not flood its own log.
                if overruns == 1 || overruns % 100 == 0 {
                    event(.log, "control cycle overran its \(config.periodMilliseconds) ms period by \((now - next) / 1_000_000) ms (\(overruns) overruns so far)")
                }
                next = now + period
            } else {
                if next > now { usleep(UInt32((next - now) / 1000)) }
                next += period
            }
            if onTime { notifier.watchdog() }
        }
        notifier.stopping()
        event(.stop, "stopping on signal")
        write(halfHours.finish())
        try? logStore?.flush(monoNs: monotonicNanoseconds())
        stopIO()
    }

    /// SIGHUP: an invalid new config is refused and the running one kept, with the errors logged.
    private func reload() {
        guard let text = readText(configPath) else {
            log("reload: cannot read \(configPath); keeping the running configuration")
            return
        }
        switch Configuration.parse(text) {
        case .failure(let e):
            event(.config, "reload refused, keeping the running configuration: \(e.issues.map(\.description).joined(separator: "; "))")
            status.note("reload refused: \(e.issues.count) problem(s) in \(configPath)")
        case .success(let c):
            do {
                let h = try c.controller()
                stopIO()
                config = c
                headroom = h
                supervisor = Supervisor(c.runtime.supervisor)
                // Limits or sites may have changed: the half hour so far is closed under the old ones.
                write(halfHours.finish())
                halfHours = HalfHourAccumulator(mps: c.measurementPoints, sites: c.sites)
                startIO()
                event(.config, "reloaded \(configPath) (fnv1a64 \(configHash))")
                status.note("reloaded \(configPath)")
            } catch {
                log("reload refused: \(error)")
            }
        }
    }

    /// One control cycle. Returns true when it completed (feeds the watchdog).
    /// Engineer commands from the control socket, applied between cycles.
    private func handle(_ request: ControlRequest, user: String, now: Double) -> String {
        switch request {
        case .overrideSet(let site, let kw, let seconds):
            guard config.sites.contains(where: { $0.id == site }) else { return "error: no site \"\(site)\" (sites: \(config.sites.map(\.id).joined(separator: ", ")))" }
            var src = headroom.sources[site] ?? SiteSources()
            src.override = Lease(watts: kw * 1000, expiresAt: now + seconds)
            headroom.sources[site] = src
            status.note("override \(site) \(Int(kw)) kW for \(Int(seconds)) s by \(user)")
            return "override: site \(site) at most \(kw) kW for \(Int(seconds)) s (the most restrictive source still wins)"
        case .overrideClear(let site):
            guard headroom.sources[site]?.override != nil else { return "override: none active for site \(site)" }
            headroom.sources[site]?.override = nil
            status.note("override \(site) cleared by \(user)")
            return "override: cleared for site \(site)"
        case .resetLockout:
            resetRequested = true
            status.note("lockout reset by \(user)")
            return "reset-lockout: sent; an automatic close follows when conditions allow"
        case .testTrip(let site):
            guard breakers[site] != nil else { return "error: no breaker is wired for site \(site) in this configuration" }
            manualTrips[site] = user
            status.note("test trip of \(site) by \(user)")
            return "test-trip: trip command sent to site \(site); lmc status shows the breaker's answer"
        case .status, .statusJSON, .alarms:
            return "error: '\(request.line)' is answered by the socket, not the control loop"
        }
    }

    @discardableResult
    func tick(nowNs: UInt64) -> Bool {
        let now = Double(nowNs) / 1e9
        commands.drain { request, line, user in
            let answer = handle(request, user: user, now: now)
            event(.command, "'\(line)' by \(user): \(answer)")
            return answer
        }
        for e in inbox.drain() { event(e.kind, e.text) }
        // The wall clock may jump (NTP, a dead RTC battery): control runs on the monotonic clock; the log says so.
        let offset = Int64(bitPattern: wallNs()) - Int64(bitPattern: nowNs)
        if let previous = clockOffsetNs, abs(offset - previous) > 2_000_000_000 {
            event(.clockJump, "wall clock moved \((offset - previous) / 1_000_000) ms against the monotonic clock")
        }
        clockOffsetNs = offset
        let blindNs = UInt64(config.runtime.supervisor.blindTime * 1e9)
        var mpValues: [String: [Double]?] = [:]
        var meterStatus: [MeterStatus] = []
        for mp in config.measurementPoints {
            guard let meterID = config.runtime.mpMeter[mp.id], let slot = slots[meterID] else { mpValues[mp.id] = .some(nil); continue }
            let r = slot.reading(atNs: nowNs, staleAfterNs: blindNs)
            let usable = r?.quality.isUsable == true
            var values: [Double]? = nil
            if usable, let r {
                switch mp.kind {
                case .apparentPower: values = r.apparentPower.map { [$0] }
                case .current: values = r.currents.isEmpty ? nil : r.currents
                case .voltage: values = [Quantity.voltageL1, .voltageL2, .voltageL3].compactMap { r.values[$0] }
                }
            }
            mpValues[mp.id] = .some(values)
            var status = MeterStatus(id: meterID, group: mp.id, lastGoodAt: slot.lastGoodNs.map { Double($0) / 1e9 }, goodNow: values != nil)
            if let r, case .bad(let why) = r.quality { status.problem = why.description }
            meterStatus.append(status)
        }
        var siteImport: [String: Double] = [:]
        for site in config.sites {
            if let m = config.runtime.sitePocMeter[site.id], let r = slots[m]?.reading(atNs: nowNs, staleAfterNs: blindNs), r.quality.isUsable,
               let w = r.values[.powerTotal] ?? r.apparentPower {
                siteImport[site.id] = w
            }
        }
        let secondsOfDay = wallSecondsOfDay()
        // Remote set points from upstream: a limit source while fresh (their validity is their lease).
        if let up = upstream {
            for (j, site) in config.sites.enumerated() {
                if let r = up.remoteSetPoint(site: j) {
                    var src = headroom.sources[site.id] ?? SiteSources()
                    let expires = Double(r.receivedAtNs) / 1e9 + r.validitySeconds
                    if src.remote != Lease(watts: r.watts, expiresAt: expires) {
                        src.remote = Lease(watts: r.watts, expiresAt: expires)
                        headroom.sources[site.id] = src
                    }
                }
            }
        }
        let decision = headroom.tick(now: now, .init(mp: mpValues, siteImportW: siteImport, secondsOfDay: secondsOfDay))
        let sites = config.sites.map { site -> SiteInputs in
            let d = decision.sites.first { $0.site == site.id }!
            let relayStatus = relays[site.id]?.status
            let oscpStatus = oscp?.status(site: site.id)
            // Failing since: the charger relay or the OSCP relay (the FP unreachable or its heartbeat lapsed).
            let failing = [relayStatus?.failingSinceNs, oscpStatus?.failingSinceNs].compactMap { $0 }.min()
            // The site's import: the DNO's PoC meter; without one, what the CPMS reports (lower trust).
            let reported = oscpStatus.flatMap { st in st.reportedAtNs.map { nowNs &- $0 < 120_000_000_000 } == true ? st.reportedImportW : nil }
            return SiteInputs(id: site.id, requestedW: d.setPointW,
                              safe: SafeSetPoint(firmW: site.floorW, tccW: config.sources[site.id]?.tcc?.watts),
                              pocImportW: siteImport[site.id] ?? reported,
                              relayFailingSince: failing.map { Double($0) / 1e9 },
                              breakerClosed: (try? breakers[site.id]?.isClosed()) ?? nil, connectionOrder: site.connectionOrder)
        }
        let out = supervisor.tick(SupervisorInputs(now: now, secondsOfDay: secondsOfDay, meters: meterStatus, sites: sites,
                                                   tripRequests: decision.tripRequests,
                                                   upstreamHeartbeatAt: upstream?.upstreamHeartbeatAtNs.map { Double($0) / 1e9 },
                                                   resetLockout: resetRequested, manualTrips: manualTrips))
        resetRequested = false
        manualTrips = [:]
        for (site, command) in out.breaker {
            guard let b = breakers[site] else { continue }
            do {
                try b.execute(command)
                breakerModel?.follow(command, wiring: b.wiring)
            } catch {
                log("breaker \(site): \(command) failed: \(error)")
                status.note("breaker \(site): \(command) failed: \(error)")
            }
        }
        for site in config.sites {
            let sp = out.setPoints[site.id] ?? site.floorW
            headroom.noteApplied(site: site.id, watts: sp)
            relays[site.id]?.post(watts: sp)
            if config.runtime.oscp?.groups[site.id] != nil {
                // The fallback the CPMS applies if it loses us: the TCC profile, or the firm value.
                let fallback = config.sources[site.id]?.tcc?.watts ?? [site.floorW]
                oscp?.post(site: site.id, watts: sp, fallbackW: fallback)
            }
        }
        let snapshot = upstreamSnapshot(out: out, decision: decision, siteImport: siteImport, mpValues: mpValues)
        upstream?.publish(snapshot)
        if out.mode != lastMode {
            event(.mode, "\(lastMode?.rawValue ?? "-") → \(out.mode.rawValue): \(out.reason)")
            lastMode = out.mode
        }
        // An alarm is raised and cleared by its code and subject; its message may change while it stands
        // (a duration counting up) without raising it again.
        var alarms: [String: String] = [:]
        for a in out.alarms { alarms["\(a.code) \(a.subject)"] = a.description }
        for key in Set(alarms.keys).subtracting(lastAlarms.keys).sorted() { event(.alarmRaised, alarms[key]!) }
        for key in Set(lastAlarms.keys).subtracting(alarms.keys).sorted() { event(.alarmCleared, lastAlarms[key]!) }
        lastAlarms = alarms
        for (site, command) in out.breaker { event(.breaker, "\(site): \(command.rawValue) (\(out.reason))") }
        do {
            let sample = SampleRecord(mode: UInt8(snapshot.mode),
                                      mps: snapshot.mps.map { .init(value: Float($0.value ?? .nan), quality: UInt8($0.quality)) },
                                      sites: snapshot.sites.map { .init(setPointW: Float($0.setPointW), boundBy: UInt8($0.boundBy),
                                                                        importW: Float($0.pocImportW ?? .nan)) })
            let wall = wallNs()
            try logStore?.record(sample, wallNs: wall, monoNs: nowNs)
            if let closed = halfHours.add(sample, wallNs: wall, monoNs: nowNs) { try logStore?.record(closed, wallNs: wall, monoNs: nowNs) }
            try logStore?.events.flushIfDue(monoNs: nowNs)
        } catch {
            status.note("ring log write failed: \(error)")
        }
        status.update(StatusBoard.Snapshot(
            mode: out.mode, reason: out.reason, cycles: cycles, overruns: overruns,
            mps: config.measurementPoints.map { mp in
                let state = headroom.mp(mp.id)
                return .init(id: mp.id, kind: mp.kind, value: state?.filtered, state: state?.state.rawValue ?? "?", reason: state?.reason ?? "",
                             limit: mp.upper?.limit ?? mp.lower?.limit ?? 0,
                             meter: config.runtime.mpMeter[mp.id].flatMap { slots[$0]?.reading?.quality.description } ?? "no meter")
            },
            sites: config.sites.map { site in
                let d = decision.sites.first { $0.site == site.id }!
                let relay = relays[site.id]?.status
                let sp = out.setPoints[site.id] ?? site.floorW
                // When the supervisor holds the site below what the headroom allows, it is what binds.
                let supervised = sp < d.setPointW - 1
                return .init(id: site.id, setPointW: sp, requestedW: d.setPointW, boundBy: supervised ? "fail-safe" : "\(d.boundBy)",
                             reason: supervised ? "\(out.mode.rawValue): safe set point (headroom would allow \(Int(d.setPointW / 1000)) kW)" : d.reason,
                             importW: siteImport[site.id], chargerA: relay?.writtenA, appliedA: relay?.appliedA,
                             relayError: relay?.lastError, oscp: oscp?.status(site: site.id).map { o in
                                 "OSCP \(o.group): \(o.phase)" + (o.lastForecastKW.map { ", told \(Int($0)) kW" } ?? "")
                                     + (o.failingSinceNs != nil ? ", FAILING" + (o.lastError.map { " (\($0))" } ?? " (FP heartbeat lapsed)") : "")
                             })
            },
            alarms: out.alarms.map(\.description)))
        return true
    }
}

extension Runtime {
    /// The cycle as the upstream map shows it (docs/modbus-map.md).
    func upstreamSnapshot(out: SupervisorOutput, decision: HeadroomController.Decision, siteImport: [String: Double],
                          mpValues: [String: [Double]?]) -> UpstreamServer.Snapshot {
        let modes: [Mode] = [.normal, .degraded, .startup, .failsafe, .nonResponse, .tripped, .lockout]
        let alarmCodes = ["METER_LOST", "RELAY_FAILING", "TRIP_FAILED", "LOCKOUT", "CLOSE_FAILED"]
        var bits: UInt32 = 0
        for a in out.alarms { if let i = alarmCodes.firstIndex(of: a.code) { bits |= 1 << UInt32(i) } }
        if out.mode == .failsafe { bits |= out.reason.hasPrefix("blind") ? 1 << 5 : 1 << 6 }
        let states: [MPState] = [.holding, .riding, .regulating, .releasing, .blind]
        let sources = ["ceiling", "mp", "tcc", "dsc", "schedule", "override", "remote", "floor", "ramp"]
        return UpstreamServer.Snapshot(
            mode: UInt16(modes.firstIndex(of: out.mode) ?? 0), alarmBits: bits, cycles: UInt32(truncatingIfNeeded: cycles),
            overruns: UInt32(truncatingIfNeeded: overruns), trips: 0,
            mps: config.measurementPoints.map { mp in
                let s = headroom.mp(mp.id)
                let usable = (mpValues[mp.id] ?? nil) != nil
                return .init(value: s?.filtered, quality: usable ? 0 : 2, state: UInt16(states.firstIndex(of: s?.state ?? .holding) ?? 0),
                             limitW: s?.limitW)
            },
            sites: config.sites.map { site in
                let d = decision.sites.first { $0.site == site.id }!
                let sp = out.setPoints[site.id] ?? site.floorW
                let bound = sp < d.setPointW - 1 ? 9 : UInt16(sources.firstIndex(of: "\(d.boundBy)".split(separator: ":").first.map(String.init) ?? "") ?? 0)
                let relay = relays[site.id]?.status
                return .init(setPointW: sp, boundBy: UInt16(bound), pocImportW: siteImport[site.id],
                             relayOK: relay?.failingSinceNs == nil, appliedA: relay?.appliedA)
            })
    }
}

/// Stands in for breakers on a machine without GPIO (LMC_GPIO_SIMULATOR="gpiochip0:16"): a simulated
/// chip whose auxiliary contacts follow the trip and close coils, as a healthy breaker's would.
final class SimulatedBreakers {
    let sim: GPIOSimulator
    /// `CHIP:LINES[:stuck=FILE]`: while FILE exists the auxiliary contact does not move — a breaker
    /// whose mechanism or contact failed (fault injection for the soak).
    let stuckFile: String?

    init(spec: String, wirings: [BreakerWiring]) {
        let parts = spec.split(separator: ":")
        let name = parts.first.map(String.init) ?? "gpiochip0"
        let count = parts.count > 1 ? Int(parts[1]) ?? 16 : 16
        stuckFile = parts.dropFirst(2).first { $0.hasPrefix("stuck=") }.map { String($0.dropFirst(6)) }
        sim = GPIOSimulator(chips: [.init(name: name, label: "lmc-simulated", lineNames: (0..<count).map { "line\($0)" })])
        for w in wirings { if let aux = w.auxiliary { sim.drive(chip: aux.chip, offset: aux.offset, high: !aux.activeLow) } }
    }

    func follow(_ command: BreakerCommand, wiring: BreakerWiring) {
        guard let aux = wiring.auxiliary else { return }
        if let f = stuckFile, access(f, F_OK) == 0 { return }
        let closed = command == .close
        sim.drive(chip: aux.chip, offset: aux.offset, high: closed != aux.activeLow)
    }
}

/// Events posted from other threads, written by the control loop.
final class EventInbox: Sendable {
    private let items = Mutex<[EventRecord]>([])
    func post(_ kind: EventRecord.Kind, _ text: String) { items.withLock { $0.append(EventRecord(kind: kind, text: text)) } }
    func drain() -> [EventRecord] { items.withLock { let x = $0; $0 = []; return x } }
}

extension Runtime {
    /// FNV-1a 64 of the config file: which config was running, in the events ring.
    var configHash: String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (readText(configPath) ?? "").utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

func wallNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    let ns = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    return UInt64(Int64(bitPattern: ns) &+ WallClockFault.offsetNs())
}

/// Fault injection for the soak, like LMC_GPIO_SIMULATOR: LMC_WALL_CLOCK_OFFSET_FILE names a file whose
/// number (seconds) is added to the wall clock — an NTP step without the privilege to set the clock.
/// Read at most twice a second; unset on a real box.
enum WallClockFault {
    static let path = getenv("LMC_WALL_CLOCK_OFFSET_FILE").map { String(cString: $0) }
    private static let cache = Mutex<(readAtNs: UInt64, offsetNs: Int64)>((0, 0))

    static func offsetNs() -> Int64 {
        guard let path else { return 0 }
        let now = monotonicNanoseconds()
        return cache.withLock { c in
            if c.readAtNs != 0 && now &- c.readAtNs < 500_000_000 { return c.offsetNs }
            let seconds = readText(path).flatMap { Double($0.trimmingCharacters()) } ?? 0
            c = (now, Int64(seconds * 1e9))
            return c.offsetNs
        }
    }
}

func wallSecondsOfDay() -> Double {
    var t = time(nil)
    var tmv = tm()
    localtime_r(&t, &tmv)
    return Double(tmv.tm_hour * 3600 + tmv.tm_min * 60 + tmv.tm_sec)
}

func log(_ message: String) {
    printError(message)
}

extension HalfHourAccumulator {
    /// What each half-hour record is judged against: the MPs' limits and the sites' ceilings.
    init(mps: [MeasurementPointConfig], sites: [SiteConfig]) {
        self.init(
            mps: mps.map { mp in
                let t = mp.upper ?? mp.lower
                let unit: UInt8 = switch mp.kind { case .current: 0; case .apparentPower: 1; case .voltage: 2 }
                return MPSpec(name: mp.id, unit: unit, lowerLimit: mp.upper == nil, limit: t?.limit ?? .nan, trip: t?.trip)
            },
            sites: sites.map { SiteSpec(name: $0.id, ceilingW: $0.ceilingW) })
    }
}
