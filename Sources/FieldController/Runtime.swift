import CTSensorDriver
import CTimex
import ControlCycle
import DigitalIO
import DNP3
import FailSafe
import Headroom
import LMCConfig
import LMCWiring
import LMCPlatform
import ModbusBridge
import OSCP
import RingLog
import SetPointRelay
import Supervision
import Synchronization
import TOMLReader

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Set by SIGTERM/SIGINT (stop) and SIGHUP (reload); read by the control loop.
let stopSignal = Atomic<Int>(0)
let reloadSignal = Atomic<Int>(0)


/// The daemon's shell around the control cycle (Sources/ControlCycle): threads, signals, devices and the
/// ring log. Each period it takes one snapshot of the world, hands it to `ControlCycle.step`, and
/// performs the outputs — set points to the relays, breaker commands to the coils, events and samples
/// to the rings, the picture to the console and the upstream map. It decides nothing itself.
final class Runtime {
    private(set) var config: Configuration
    private let configPath: String
    fileprivate var cycle: ControlCycle
    private var buses: [String: BusWorker] = [:]
    /// Workers retired by a reload, still ending their turn: their successors start after them.
    private var retiredBuses: [String: ServiceThread] = [:]
    private var retiredRelays: [String: ServiceThread] = [:]
    private var pulseWorkers: [PulseWorker] = []
    private var slots: [String: LatestReading] = [:]
    private var relays: [String: RelayWorker] = [:]
    private var upstreamService: UpstreamService?
    private var upstream: UpstreamServer? { upstreamService?.server }
    private var oscp: OSCPCapacityProvider?
    /// The DNP3 outstation ([dnp3], docs/dnp3.md) and the remote set points its master operated, by site index.
    private var dnp3: DNP3Server?
    private var dnp3Remote: [Int: RemoteSetPoint] = [:]
    /// When the DNP3 master last operated the heartbeat output (monotonic ns).
    private var dnp3HeartbeatNs: UInt64?
    /// The upstream heartbeat the supervisor tests (monotonic ns): the latest of the Modbus register's
    /// writes and the DNP3 heartbeat output's operates. Kept here, not in the servers, so that a
    /// reload (which restarts the Modbus server) does not forget it.
    private var upstreamHeartbeatNs: UInt64?
    /// The last closed half hour's DNP3 points, and each site's energy summed from the records (Wh).
    private var dnp3HalfHour: [Int: Double?] = [:]
    private var dnp3EnergyWh: [Int: (imported: Double, curtailed: Double)] = [:]
    /// Why the configured outstation does not listen (nil while it does or without [dnp3]).
    private var dnp3StartFailure: String?
    private var breakers: [String: BreakerWorker] = [:]
    private var breakerErrors: [String: String] = [:]
    #if LMC_TEST_HOOKS
    /// Set when LMC_GPIO_SIMULATOR stands in for the GPIO chip (no hardware: demos, tests).
    private var breakerModel: SimulatedBreakers?
    #endif
    /// The ring log, written on its own thread (the loop never waits on the disk).
    fileprivate var ringLog: RingLogThread?
    /// The last 60 s of samples, and the trips collecting their 60 s after (the trips ring).
    private var trips = TripRecorder()
    /// The minute so far (the minutes ring).
    private var minutes = MinuteAccumulator()
    /// Events from other threads (the control socket), written by the loop.
    let inbox = EventInbox()
    let status = StatusBoard()
    let commands = CommandQueue()
    private let notifier = SystemdNotifier()
    private var overruns = 0
    /// When to unmap the pages start-up (or a reload) touched once (LMCPlatform's StartupPages): a few
    /// seconds into the loop, when every worker has run its first turns. Nil when done.
    private var releaseStartupPagesAtNs: UInt64?
    private var clock: WallClock
    /// [box] hardware_watchdog, once opened: petted only by cycles that finished on time.
    private var hardwareWatchdog: HardwareWatchdog?

    init(config: Configuration, path: String) throws {
        self.config = config
        self.configPath = path
        cycle = try config.cycle()
        clock = WallClock(timezone: config.tccTimezone)
    }

    /// Writes a closed half hour to its ring.
    private func write(_ h: HalfHourRecord?) {
        guard let h else { return }
        let (wall, mono) = (wallNs(), monotonicNanoseconds())
        ringLog?.post { try $0.record(h, wallNs: wall, monoNs: mono) }
    }

    private func openLog() {
        let l = config.runtime.log
        do {
            let store = try LogStore(directory: l.directory, boxID: config.runtime.boxID, samplesMB: l.samplesMB, eventsMB: l.eventsMB, halfHoursMB: l.halfHoursMB,
                                     tripsMB: l.tripsMB, minutesMB: l.minutesMB, syncIntervalSeconds: l.syncIntervalSeconds)
            for moved in store.movedAside { log("ring log: corrupt header, moved aside to \(moved); a new ring was started") }
            for resized in store.resized { log("ring log: size changed: \(resized)") }
            try? store.noteLayout(config.sampleLayout)
            let thread = RingLogThread(store)
            thread.start()
            ringLog = thread
        } catch {
            log("ring log not available: \(error); running without it")
            status.note("ring log not available: \(error)")
        }
    }

    /// Writes a closed minute to its ring.
    private func write(_ m: MinuteRecord?) {
        guard let m else { return }
        let (wall, mono) = (wallNs(), monotonicNanoseconds())
        ringLog?.post { try $0.record(m, wallNs: wall, monoNs: mono) }
    }

    /// Writes trip records to the trips ring, and says so in the events ring.
    private func write(_ records: [TripRecord]) {
        for t in records {
            let (wall, mono, echo) = (wallNs(), monotonicNanoseconds(), echoEvents)
            // The record's number is known once it is written: the event that names it is written there too.
            ringLog?.post { store in
                let n = try store.record(t, wallNs: wall, monoNs: mono)
                let text = "\(t.site): trip record \(n) written (\(t.samples.count) samples; \(t.answer))"
                if echo { log("event log: \(text)") }
                try store.event(EventRecord(kind: .log, text: text), wallNs: wall, monoNs: mono)
            }
        }
    }

    /// Echo events to stderr (the journal under systemd); the demo turns it off to keep its screen.
    var echoEvents = true

    /// Appends an event to the events ring (and the journal).
    func event(_ kind: EventRecord.Kind, _ text: String) {
        if echoEvents { log("event \(kind.name): \(text)") }
        let (wall, mono) = (wallNs(), monotonicNanoseconds())
        ringLog?.post { try $0.event(EventRecord(kind: kind, text: text), wallNs: wall, monoNs: mono) }
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
            worker.start(after: retiredBuses.removeValue(forKey: bus.id))
            buses[bus.id] = worker
        }
        for p in rc.pulseMeters {
            // Opened here, on the loop's thread (where a GPIO simulator is bound), then handed over.
            let slot = LatestReading()
            slots[p.id] = slot
            let meter = PulseMeter(impulsesPerKWh: p.impulsesPerKWh, minimumLoadW: p.minimumLoadW, windowSeconds: p.windowSeconds)
            var input: PulseInput?
            var why: String?
            do {
                input = try PulseInput(name: p.id, chip: try GPIOChip(p.chip), offset: p.line, activeLow: p.activeLow, meter: meter)
            } catch {
                why = "S0 input \(p.chip) line \(p.line): \(error)"
                log("pulse meter \(p.id) not available: \(error)")
                status.note("pulse meter \(p.id): \(error)")
            }
            let worker = PulseWorker(name: p.id, input: input, openError: why, slot: slot)
            worker.start()
            pulseWorkers.append(worker)
        }
        for c in rc.chargers {
            // The charger's own fallback: the site's safe set point, shaped as every set point is.
            let safeA = cycle.chargerFallback(site: c.site)
            let shaper = config.cycleConfig.shaper(c.site)
            let conversion: CurrentConversion = if case let .ampsPerPhase(n, v, pf) = shaper.unit {
                CurrentConversion(phases: n, phaseVoltage: v, powerFactor: pf, stepA: shaper.quantum)
            } else { CurrentConversion() }
            // A loop silent for 5 periods (at least 1 s) is stalled: the relay stops refreshing and the
            // charger's validity timer takes it to its safe current.
            let worker = RelayWorker(stallAfterSeconds: max(1, 5 * Double(config.periodMilliseconds) / 1000)) {
                try ModbusChargerRelay(profile: c.profile, endpoint: c.endpoint, unit: c.unit, conversion: conversion, safeCurrentA: safeA,
                                       maxCurrentA: c.maxCurrentA, options: .init(responseTimeoutMilliseconds: c.timeoutMilliseconds))
            }
            worker.post(amps: safeA)   // until the first cycle decides: the safe set point
            worker.start(after: retiredRelays.removeValue(forKey: c.site))
            relays[c.site] = worker
        }
        breakerErrors = [:]
        for (site, wiring) in rc.breakers where breakers[site] == nil {
            do {
                let worker = BreakerWorker(try BreakerDriver(wiring))
                worker.start()
                breakers[site] = worker
            } catch {
                log("breaker of site \(site) not available: \(error)")
                status.note("breaker \(site): \(error)")
                breakerErrors[site] = "\(error)"
            }
        }
        if var o = rc.oscp {
            o.stateFile = "\(rc.log.directory)/oscp.state"
            // As for the relays: a loop silent for 5 periods (at least 1 s) stops our heartbeats and
            // forecasts, so the CPMS applies our fallback when the offline_mode_at we sent passes.
            o.stallAfterSeconds = max(1, 5 * Double(config.periodMilliseconds) / 1000)
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
            // A server that cannot bind is retried every 10 s and is an alarm (UPSTREAM_FAILED) meanwhile.
            let service = UpstreamService(.init(host: u.listen, port: u.port, allowedWriters: u.allowedWriters, limits: u.limits))
            if let why = service.failure { log(why); status.note(why) }
            upstreamService = service
        }
        // A reload that leaves the outstation as it was keeps it (and its events, session and heartbeat).
        if let setup = Self.dnp3Setup(config), dnp3 == nil, let d = rc.dnp3 {
            do {
                dnp3 = try DNP3Server(setup.0, map: setup.1)
                log("DNP3 outstation \(d.outstationAddress) listening on tcp \(d.listen):\(d.port) for master \(d.masterAddress)")
            } catch {
                log("DNP3 outstation not started: \(error)")
                status.note("DNP3 outstation not serving: \(error)")
                dnp3StartFailure = "DNP3 outstation not serving: \(error)"
            }
        }
    }

    private func openHardwareWatchdog() {
        guard config.runtime.hardwareWatchdog != hardwareWatchdog?.path else { return }
        hardwareWatchdog?.disarm()
        hardwareWatchdog = nil
        guard let path = config.runtime.hardwareWatchdog else { return }
        do {
            hardwareWatchdog = try HardwareWatchdog(path: path)
            event(.log, "hardware watchdog \(path) armed: petted from every cycle that finishes on time")
        } catch {
            event(.alarmRaised, "HARDWARE_WATCHDOG box: \(error)")
            status.note("hardware watchdog: \(error)")
        }
    }

    /// At a stop: every thread joined (the process ends after). For a reload (`keeping` the next
    /// config's breakers): bus and relay threads are retired, not waited for — one stuck on a peer
    /// ends its turn on its own, and its successor starts after it; breakers whose wiring does not
    /// change keep their lines and their thread (a pulse in progress goes on).
    private func stopIO(keeping next: [String: BreakerWiring]? = nil, keepDNP3: Bool = false, keepDNP3Remote: Bool = false) {
        upstreamService?.stop()
        upstreamService = nil
        if !keepDNP3 {
            dnp3?.stop()
            dnp3 = nil
            dnp3StartFailure = nil
        }
        // Like the Modbus server's writes, a DNP3 remote set point does not outlive its server, nor a
        // reload that may renumber the sites; the energy sums and the last half hour are kept.
        if !(keepDNP3 && keepDNP3Remote) { dnp3Remote = [:] }
        oscp?.stop()
        oscp = nil
        for (site, b) in breakers where next?[site] != b.driver.wiring {
            // A coil pulse in progress ends first (at most pulse_ms): its lines are then free for the next driver.
            b.stop()
            breakers[site] = nil
        }
        pulseWorkers.forEach { $0.stop() }   // at most one 100 ms wait: its line must be free to reopen
        pulseWorkers = []
        if next != nil {
            for (id, w) in buses { if let t = w.retire() { retiredBuses[id] = t } }
            for (site, w) in relays { if let t = w.retire() { retiredRelays[site] = t } }
        } else {
            buses.values.forEach { $0.stop() }
            relays.values.forEach { $0.stop() }
            retiredBuses.values.forEach { $0.join() }
            retiredRelays.values.forEach { $0.join() }
            retiredBuses = [:]
            retiredRelays = [:]
        }
        buses = [:]
        relays = [:]
        slots = [:]
    }

    /// How long after the loop starts (or a reload) the pages only start-up touched are unmapped.
    static let startupPagesDelayNs: UInt64 = 5_000_000_000

    /// Runs until SIGTERM. Chargers keep their own fallback after we stop.
    func run() {
        #if LMC_TEST_HOOKS
        if let spec = getenv("LMC_GPIO_SIMULATOR").map({ String(cString: $0) }) {
            let model = SimulatedBreakers(spec: spec, wirings: Array(config.runtime.breakers.values))
            breakerModel = model
            log("GPIO simulated (LMC_GPIO_SIMULATOR=\(spec)): no real lines are driven")
            GPIOSimulator.with(model.sim) { loop() }
        } else {
            loop()
        }
        #else
        loop()
        #endif
    }

    private func loop() {
        if ringLog == nil { openLog() }
        event(.start, "lmc \(LMC.version) started, box \(config.runtime.boxID)")
        event(.config, "loaded \(configPath) (fnv1a64 \(configHash))")
        for w in config.warnings { event(.log, "config warning: \(w)") }
        startIO()
        restoreBreakerMemory()
        openHardwareWatchdog()
        notifier.ready(status: "control loop running, \(config.periodMilliseconds) ms period")
        let period = UInt64(config.periodMilliseconds) * 1_000_000
        var next = monotonicNanoseconds() + period
        releaseStartupPagesAtNs = next + Self.startupPagesDelayNs
        while stopSignal.load(ordering: .relaxed) == 0 {
            if reloadSignal.exchange(0, ordering: .relaxed) != 0 { reload() }
            let completed = tick(nowNs: monotonicNanoseconds())
            if let due = releaseStartupPagesAtNs, monotonicNanoseconds() >= due {
                releaseStartupPagesAtNs = nil
                // On a thread of its own: the control loop does not wait for the madvise walk.
                let echo = echoEvents
                ServiceThread {
                    let r = StartupPages.release()
                    if echo { log("start-up pages unmapped: \(r.segments) read-only segments of \(r.kib) KiB (the loop maps back what it runs)\(r.failed > 0 ? "; madvise refused \(r.failed)" : "")") }
                }.detach()
            }
            let now = monotonicNanoseconds()
            let overran = now > next + period / 2
            if overran {
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
            // The watchdogs are fed only by cycles that completed within their period.
            if completed && !overran {
                notifier.watchdog()
                do { try hardwareWatchdog?.pet() } catch {
                    event(.log, "hardware watchdog: \(error); the box will reset if it cannot be petted")
                }
            }
        }
        // A clean stop disarms it (magic close); a crash or a hang leaves it to reset the box.
        hardwareWatchdog?.disarm()
        hardwareWatchdog = nil
        notifier.stopping()
        event(.stop, "stopping on signal")
        write(cycle.finish())
        write(trips.finish(monoNs: monotonicNanoseconds()))
        write(minutes.finish())
        ringLog?.stop()   // drains the queue and syncs every ring
        ringLog = nil
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
                // No site, breaker or limit changed: the cycle carries on (no new start-up, overrides and
                // leases kept). Otherwise a fresh cycle, and the half hour so far is closed under the old limits.
                let next = try cycle.reloaded(c.cycleConfig)
                // The outstation stays when what it serves and how did not change: its unconfirmed
                // events, its master's TCP session and the heartbeat go on (docs/dnp3.md).
                let keepDNP3 = dnp3 != nil && Self.dnp3Setup(c).map { $0.0 == dnp3!.parameters && $0.1 == dnp3!.map } == true
                stopIO(keeping: c.runtime.breakers, keepDNP3: keepDNP3, keepDNP3Remote: c.sites.map(\.id) == config.sites.map(\.id))
                if keepDNP3 { event(.config, "reload keeps the DNP3 outstation: [dnp3] and its point map unchanged") }
                if !next.halfHourCarried { write(cycle.finish()) }
                event(.config, next.cycles > 0 ? "reload keeps the control state: no site, breaker or limit changed"
                                               : "reload starts the control afresh: a site, breaker or limit changed")
                write(trips.finish(monoNs: monotonicNanoseconds()))
                config = c
                let layout = c.sampleLayout
                ringLog?.post { try $0.noteLayout(layout) }
                cycle = next
                clock = WallClock(timezone: c.tccTimezone)
                startIO()
                openHardwareWatchdog()
                event(.config, "reloaded \(configPath) (fnv1a64 \(configHash))")
                releaseStartupPagesAtNs = monotonicNanoseconds() + Self.startupPagesDelayNs
                status.note("reloaded \(configPath)")
            } catch {
                log("reload refused: \(error)")
            }
        }
    }

    // MARK: One cycle: snapshot → ControlCycle.step → perform

    /// Everything the cycle may look at, read once.
    private func snapshot(nowNs: UInt64) -> (CycleSnapshot, [Int]) {
        var meters: [String: MeterSnapshot] = [:]
        for (id, slot) in slots {
            guard let r = slot.reading else { continue }
            meters[id] = MeterSnapshot(r, lastGoodNs: slot.lastGoodNs)
        }
        var breakerReads: [String: BreakerRead] = [:]
        for site in config.runtime.breakers.keys {
            if let b = breakers[site] {
                do {
                    breakerReads[site] = try b.isClosed().map { $0 ? .closed : .open } ?? .notWired
                    // A coil that could not be driven: nothing the contact says confirms a command.
                    if let failure = b.failure { breakerReads[site] = .unavailable(failure) }
                } catch {
                    breakerReads[site] = .unavailable("auxiliary contact: \(error)")
                }
            } else {
                breakerReads[site] = .unavailable(breakerErrors[site] ?? "breaker lines not open")
            }
        }
        var remote: [String: RemoteSetPoint] = [:]
        if let up = upstream {
            for (j, site) in config.sites.enumerated() {
                if let r = up.remoteSetPoint(site: j) {
                    remote[site.id] = RemoteSetPoint(watts: r.watts, validitySeconds: r.validitySeconds, receivedAtNs: r.receivedAtNs)
                }
            }
        }
        if let d = dnp3, let validity = config.runtime.dnp3?.remoteValiditySeconds {
            for op in d.takeOperations() {
                if (op.group == 41 && op.index == PointMap.AO.heartbeat) || (op.group == 12 && op.index == PointMap.BO.heartbeat) {
                    // The first heartbeat, and the first after a gap, are logged (not each: they come every few seconds).
                    let at = op.atMonoMs * 1_000_000
                    let gapNs = UInt64((config.cycleConfig.supervisor.upstreamHeartbeatTimeout ?? 60) * 1e9)
                    if dnp3HeartbeatNs.map({ at &- $0 > gapNs }) ?? true {
                        event(.log, "DNP3 \(op.function) from master \(op.master): upstream heartbeat" + (op.group == 12 ? " (CROB)" : "")
                                    + (dnp3HeartbeatNs == nil ? "" : " again, after a gap"))
                    }
                    dnp3HeartbeatNs = max(dnp3HeartbeatNs ?? 0, at)
                    continue
                }
                guard op.group == 41, op.index < config.sites.count else { continue }
                dnp3Remote[op.index] = RemoteSetPoint(watts: op.value, validitySeconds: validity, receivedAtNs: op.atMonoMs * 1_000_000)
                event(.log, "DNP3 \(op.function) from master \(op.master): site \(config.sites[op.index].id) remote set point \(op.value) W for \(validity) s")
            }
            // The later of the Modbus and the DNP3 remote set point is the site's.
            for (j, r) in dnp3Remote where j < config.sites.count {
                let id = config.sites[j].id
                if let m = remote[id], m.receivedAtNs >= r.receivedAtNs { continue }
                remote[id] = r
            }
        }
        // One upstream heartbeat: the latest of the Modbus register's and the DNP3 output's, across reloads.
        upstreamHeartbeatNs = [upstreamHeartbeatNs, upstream?.upstreamHeartbeatAtNs, dnp3HeartbeatNs].compactMap { $0 }.max()
        let pending = commands.pending()
        let wall = wallNs()
        upstreamService?.tick(nowNs: nowNs)
        var snap = CycleSnapshot(
            monoNs: nowNs, wallNs: wall, clockSynchronised: clock.synchronised(nowNs: nowNs), localSecondsOfDay: clock.localSecondsOfDay(wallNs: wall),
            meters: meters,
            relays: relays.mapValues { w in
                let st = w.status
                return RelaySnapshot(failingSinceNs: st.failingSinceNs, writtenA: st.writtenA, appliedA: st.appliedA, lastError: st.lastError)
            },
            oscp: Dictionary(uniqueKeysWithValues: config.sites.compactMap { site in
                oscp?.status(site: site.id).map { o in
                    (site.id, OSCPSnapshot(group: o.group, phase: o.phase, failingSinceNs: o.failingSinceNs, lastError: o.lastError,
                                           lastForecastKW: o.lastForecastKW, reportedImportW: o.reportedImportW, reportedAtNs: o.reportedAtNs,
                                           complianceError: o.complianceError))
                }
            }),
            breakers: breakerReads, remote: remote, upstreamHeartbeatNs: upstreamHeartbeatNs,
            upstreamFailure: upstreamService?.failure,
            commands: pending.map { QueuedCommand(request: $0.request, line: $0.line, user: $0.user) },
            posted: inbox.drain().map { CycleEvent($0.kind, $0.text) }, overruns: overruns)
        snap.dnp3Failure = dnp3StartFailure ?? dnp3.flatMap { d in
            let u = d.unsolicitedSummary
            return u.failing ? "an unsolicited response went unconfirmed after \(config.runtime.dnp3?.unsolicitedRetries ?? 0) retries (\(u.givenUp) so far)" : nil
        }
        return (snap, pending.map(\.id))
    }

    /// One control cycle. Returns true when it completed (feeds the watchdog).
    @discardableResult
    func tick(nowNs: UInt64) -> Bool {
        let (snap, commandIDs) = snapshot(nowNs: nowNs)
        let out = cycle.step(snap)
        if let memory = out.breakerMemory { saveBreakerMemory(memory, wallNs: snap.wallNs) }
        for (id, answer) in zip(commandIDs, out.answers) { commands.answer(id, answer) }
        for e in out.events { event(e.kind, e.text) }
        for (site, command) in out.breaker.sorted(by: { $0.key < $1.key }) {
            guard let b = breakers[site] else { continue }
            // The pulse runs on the breaker's thread; a coil that fails shows in the next snapshot.
            b.post(command)
            #if LMC_TEST_HOOKS
            breakerModel?.follow(command, wiring: b.driver.wiring)
            #endif
        }
        for site in out.sites {
            if case .ampsPerPhase = site.unit { relays[site.site]?.post(amps: site.value) }
            if let fallback = site.oscpFallbackW { oscp?.post(site: site.site, watts: site.watts, fallbackW: fallback) }
        }
        upstream?.publish(UpstreamServer.Snapshot(out.upstream))
        if let d = dnp3 {
            if let closed = out.halfHour {
                dnp3HalfHour = Self.dnp3Points(closed)
                for (j, site) in closed.sites.prefix(PointMap.maxSites).enumerated() {
                    var e = dnp3EnergyWh[j] ?? (0, 0)
                    if site.importedKWh.isFinite { e.imported += Double(site.importedKWh) * 1000 }
                    if site.curtailedKWh.isFinite { e.curtailed += Double(site.curtailedKWh) * 1000 }
                    dnp3EnergyWh[j] = e
                }
                d.recordHalfHour(dnp3HalfHour, endUtcMs: (UInt64(closed.periodStart) + UInt64(HalfHourRecord.periodSeconds)) * 1000)
            }
            var points = PointValues(out.upstream)
            for (i, v) in dnp3HalfHour { points.analogs[i] = v }
            for (j, e) in dnp3EnergyWh {
                points.counters[PointMap.CI.siteEnergyImported(j)] = UInt32(truncatingIfNeeded: Int64(e.imported.rounded(.down)))
                points.counters[PointMap.CI.siteEnergyCurtailed(j)] = UInt32(truncatingIfNeeded: Int64(e.curtailed.rounded(.down)))
            }
            d.publish(points)
        }
        if let d = dnp3 {
            let st = d.status, u = d.unsolicitedSummary
            status.updateDNP3(.init(peer: st.connectedPeer, lastRequestSecondsAgo: st.lastRequestNs.map { Double(nowNs &- min(nowNs, $0)) / 1e9 },
                                    unsolicitedGivenUp: u.givenUp))
        } else {
            status.updateDNP3(nil)
        }
        let (wall, sample, closed) = (snap.wallNs, out.sample, out.halfHour)
        ringLog?.post { store in
            try store.record(sample, wallNs: wall, monoNs: nowNs)
            if let closed { try store.record(closed, wallNs: wall, monoNs: nowNs) }
        }
        if let problems = ringLog?.problems() {
            for e in problems.errors { status.note("ring log write failed: \(e)") }
            if problems.dropped > 0 { status.note("ring log behind: \(problems.dropped) records dropped (the disk does not keep up)") }
        }
        write(trips.cycle(snap, out, config: config))
        write(minutes.add(snap, out, config: config))
        status.update(out.status)
        return out.watchdogOK
    }
}

extension MeterSnapshot {
    /// A bus thread's reading as the cycle sees it.
    init(_ r: MeterReading, lastGoodNs: UInt64?) {
        var problem: String? = nil
        if case .bad(let why) = r.quality { problem = why.description }
        self.init(apparentPowerVA: r.apparentPower, powerW: r.values[.powerTotal], currents: r.currents,
                  voltages: [Quantity.voltageL1, .voltageL2, .voltageL3].compactMap { r.values[$0] },
                  usable: r.quality.isUsable, quality: r.quality.description, problem: problem, readingNs: r.monotonicNs, lastGoodNs: lastGoodNs)
    }
}

extension UpstreamServer.Snapshot {
    /// The cycle's upstream view, register for register.
    init(_ v: UpstreamView) {
        self.init(mode: v.mode, alarmBits: v.alarmBits, cycles: v.cycles, overruns: v.overruns, trips: v.trips,
                  mps: v.mps.map { .init(value: $0.value, quality: $0.quality, state: $0.state, limitW: $0.limitW) },
                  sites: v.sites.map { .init(setPointW: $0.setPointW, boundBy: $0.boundBy, pocImportW: $0.pocImportW, relayOK: $0.relayOK, appliedA: $0.appliedA) })
    }
}

extension Runtime {
    /// A closed half hour as DNP3 points (docs/dnp3-map.md): each MP's mean and max, each site's
    /// imported and curtailed kWh; NaN (nothing measured, import not metered) is no value.
    static func dnp3Points(_ r: HalfHourRecord) -> [Int: Double?] {
        func v(_ f: Float) -> Double? { f.isFinite ? Double(f) : nil }
        var out: [Int: Double?] = [:]
        for (i, mp) in r.mps.prefix(PointMap.maxMeasurementPoints).enumerated() {
            out[PointMap.AI.mpHalfHourMean(i)] = v(mp.mean)
            out[PointMap.AI.mpHalfHourMax(i)] = v(mp.max)
        }
        for (j, site) in r.sites.prefix(PointMap.maxSites).enumerated() {
            out[PointMap.AI.siteHalfHourImport(j)] = site.importMetered ? v(site.importedKWh) : nil
            out[PointMap.AI.siteHalfHourCurtailed(j)] = v(site.curtailedKWh)
        }
        return out
    }
}

extension PointValues {
    /// The cycle's upstream view as DNP3 points (docs/dnp3-map.md); points of MPs and sites not
    /// configured have no value.
    init(_ v: UpstreamView) {
        self.init(map: .standard)
        for (i, mp) in v.mps.prefix(PointMap.maxMeasurementPoints).enumerated() {
            analogs[PointMap.AI.mpValue(i)] = mp.value
            analogs[PointMap.AI.mpLimit(i)] = mp.limitW
            analogs[PointMap.AI.mpState(i)] = Double(mp.state)
            binaries[PointMap.BI.mpBlind(i)] = mp.blind
        }
        for (j, site) in v.sites.prefix(PointMap.maxSites).enumerated() {
            analogs[PointMap.AI.siteSetPoint(j)] = site.setPointW
            analogs[PointMap.AI.siteImport(j)] = site.pocImportW
            analogs[PointMap.AI.siteBoundBy(j)] = Double(site.boundBy)
            // Its relays take the set point: unknown (COMM_LOST) for a site with neither a charger nor an OSCP relay.
            binaries[PointMap.BI.relayOK(j)] = site.deaf.map { !$0 }
            binaries[PointMap.BI.breakerClosed(j)] = site.breakerClosed
            binaries[PointMap.BI.siteDeaf(j)] = site.deaf
        }
        analogs[PointMap.AI.mode] = Double(v.mode)
        for k in 0..<PointMap.alarmNames.count { binaries[PointMap.BI.alarm(k)] = v.alarmBits & (1 << UInt32(k)) != 0 }
        for k in 0..<PointMap.modeNames.count { binaries[PointMap.BI.mode(k)] = Int(v.mode) == k }
        counters[PointMap.CI.trips] = v.trips
        counters[PointMap.CI.cycles] = v.cycles
        counters[PointMap.CI.overruns] = v.overruns
    }
}

extension Runtime {
    /// The outstation a configuration asks for: its server's parameters and point map (nil: no [dnp3]).
    static func dnp3Setup(_ c: Configuration) -> (DNP3Server.Parameters, PointMap)? {
        guard let d = c.runtime.dnp3 else { return nil }
        var oc = OutstationConfig(localAddress: UInt16(d.outstationAddress), masterAddresses: [UInt16(d.masterAddress)],
                                  selectTimeoutMs: UInt64(d.selectTimeoutSeconds * 1000), eventBuffer: d.eventBuffers,
                                  unsolicited: d.unsolicited, unsolicitedRetries: d.unsolicitedRetries,
                                  unsolicitedConfirmTimeoutMs: UInt64(d.unsolicitedConfirmTimeoutSeconds * 1000))
        oc.outputsInService = min(c.sites.count, PointMap.maxSites)
        let units: [PointMap.MPUnit] = c.measurementPoints.map {
            switch $0.kind { case .current: .amps; case .apparentPower: .voltAmps; case .voltage: .volts }
        }
        var groups = PointGroupSettings()
        for (name, k) in d.classes { if let g = PointGroup(rawValue: name) { groups.classes[g] = UInt8(k) } }
        for (name, v) in d.deadbands { if let g = PointGroup(rawValue: name) { groups.deadbands[g] = v } }
        return (.init(host: d.listen, port: d.port, allowedIPs: d.allowedIPs, outstation: oc), .standard(mpUnits: units, groups: groups))
    }
}

#if LMC_TEST_HOOKS
/// Stands in for breakers on a machine without GPIO (LMC_GPIO_SIMULATOR="gpiochip0:16"): a simulated
/// chip whose auxiliary contacts follow the trip and close coils, as a healthy breaker's would.
final class SimulatedBreakers {
    let sim: GPIOSimulator
    /// `CHIP:LINES[:stuck=FILE][:s0=LINE@FILE]`: while the stuck FILE exists the auxiliary contact does
    /// not move — a breaker whose mechanism or contact failed (fault injection for the soak). `s0=`
    /// pulses LINE (a 5 ms high pulse) at the rate, in pulses a second, written in its FILE (0: none) —
    /// an S0 meter's output for `[[pulse_meter]]`.
    let stuckFile: String?

    init(spec: String, wirings: [BreakerWiring]) {
        let parts = spec.split(separator: ":")
        let name = parts.first.map(String.init) ?? "gpiochip0"
        let count = parts.count > 1 ? Int(parts[1]) ?? 16 : 16
        stuckFile = parts.dropFirst(2).first { $0.hasPrefix("stuck=") }.map { String($0.dropFirst(6)) }
        sim = GPIOSimulator(chips: [.init(name: name, label: "lmc-simulated", lineNames: (0..<count).map { "line\($0)" })])
        for w in wirings { if let aux = w.auxiliary { sim.drive(chip: aux.chip, offset: aux.offset, high: !aux.activeLow) } }
        for spec in parts.dropFirst(2) where spec.hasPrefix("s0=") {
            let s0 = spec.dropFirst(3).split(separator: "@", maxSplits: 1)
            guard s0.count == 2, let line = Int(s0[0]), line < count else { log("LMC_GPIO_SIMULATOR: '\(spec)' is not s0=LINE@FILE"); continue }
            let (sim, file) = (sim, String(s0[1]))
            _ = Sys.startDetachedThread {
                var nextNs = monotonicNanoseconds()
                while true {
                    let rate = readText(file).flatMap { Double($0.trimmingCharacters()) } ?? 0
                    guard rate > 0 else { usleep(50_000); nextNs = monotonicNanoseconds(); continue }
                    sim.drive(chip: name, offset: line, high: true)
                    usleep(5_000)
                    sim.drive(chip: name, offset: line, high: false)
                    nextNs += UInt64(1e9 / rate)
                    let now = monotonicNanoseconds()
                    if nextNs > now { usleep(UInt32(min(1_000_000, (nextNs - now) / 1000))) } else { nextNs = now }
                }
            }
        }
    }

    func follow(_ command: BreakerCommand, wiring: BreakerWiring) {
        guard let aux = wiring.auxiliary else { return }
        if let f = stuckFile, access(f, F_OK) == 0 { return }
        let closed = command == .close
        sim.drive(chip: aux.chip, offset: aux.offset, high: closed != aux.activeLow)
    }
}
#endif

/// Events posted from other threads, written by the control loop.
final class EventInbox: Sendable {
    private let items = Mutex<[EventRecord]>([])
    func post(_ kind: EventRecord.Kind, _ text: String) { items.withLock { $0.append(EventRecord(kind: kind, text: text)) } }
    func drain() -> [EventRecord] { items.withLock { let x = $0; $0 = []; return x } }
}

extension Runtime {
    var breakerStatePath: String { "\(config.runtime.log.directory)/\(BreakerStateFile.name)" }

    /// At start: a lockout, an open trip and the trip history of the process before this one.
    func restoreBreakerMemory() {
        guard let text = readText(breakerStatePath) else { return }
        let (memory, problems) = BreakerStateFile.decode(text, wallSeconds: Double(wallNs()) / 1e9)
        for p in problems { event(.log, "\(breakerStatePath) \(p): left out") }
        let kept = cycle.restore(breakers: memory, nowNs: monotonicNanoseconds())
        guard !kept.isEmpty else { return }
        let said = kept.sorted { $0.key < $1.key }.map { site, m in
            var parts: [String] = []
            if let state = m.state { parts.append("\(state.rawValue) (\(m.reason))") }
            if !m.tripAges.isEmpty { parts.append("\(m.tripAges.count) trip(s) in the trip window") }
            return "\(site): " + parts.joined(separator: ", ")
        }
        event(.log, "breaker state restored from \(breakerStatePath): \(said.joined(separator: "; "))")
    }

    /// Whenever a trip, an open, a lockout or a close changed it: written whole, on the ring log's thread.
    func saveBreakerMemory(_ memory: [String: BreakerMemory], wallNs: UInt64) {
        let text = BreakerStateFile.encode(memory, wallSeconds: Double(wallNs) / 1e9)
        let path = breakerStatePath
        guard let ringLog else { status.note("\(path) not written: no ring log directory"); return }
        ringLog.post { _ in try AtomicFile.write(text, to: path) }
    }

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
    #if LMC_TEST_HOOKS
    return UInt64(Int64(bitPattern: ns) &+ WallClockFault.offsetNs())
    #else
    return ns
    #endif
}

#if LMC_TEST_HOOKS
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
#endif

/// What the wall clock can be trusted for: whether the kernel says it is synchronised (adjtimex, read
/// at most once a second), and the local time of day in the TCC time zone — from `wallNs()`, the clock
/// seam, so a test can step it. A zone whose tz file is missing gives no time of day: fail closed.
struct WallClock {
    let zoneKnown: Bool
    private var checkedAtNs: UInt64 = 0
    private var lastSync = false

    init(timezone: String) {
        zoneKnown = timezone == "UTC" || access("/usr/share/zoneinfo/\(timezone)", R_OK) == 0
        setenv("TZ", zoneKnown ? timezone : "UTC", 1)
        tzset()
        if !zoneKnown { log("control.tcc_timezone \(timezone): no /usr/share/zoneinfo/\(timezone) (install tzdata); TCC half hours use the profile's minimum") }
    }

    /// What the kernel says, whatever the config trusts: the records keep it, and the cycle decides
    /// whether an unsynchronised clock may pick a half hour (require_synchronised_clock).
    mutating func synchronised(nowNs: UInt64) -> Bool {
        if checkedAtNs == 0 || nowNs &- checkedAtNs >= 1_000_000_000 {
            var status: Int32 = 0
            var esterror = 0
            let state = lmc_clock_state(&status, &esterror)
            lastSync = state >= 0 && state != lmc_time_error && (status & lmc_sta_unsync) == 0
            checkedAtNs = nowNs
        }
        return lastSync
    }

    func localSecondsOfDay(wallNs: UInt64) -> Double? {
        guard zoneKnown else { return nil }
        var t = time_t(wallNs / 1_000_000_000)
        var tmv = tm()
        guard localtime_r(&t, &tmv) != nil else { return nil }
        return Double(tmv.tm_hour * 3600 + tmv.tm_min * 60 + tmv.tm_sec)
    }
}

func log(_ message: String) {
    Journal.write(Journal.priority(ofLine: message), message)
}
