import ArgumentParser
import CTSensorDriver
import Headroom
import LMCConfig
import LMCWiring
import LMCPlatform
import ModbusBridge
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `lmc demo`: the source's example day, time-compressed, through the real daemon.
///
/// Three libmodbus servers on 127.0.0.1 stand in for the transformer's CT meter and the site's PoC meter
/// (Eastron SDM630 register map) and the hub charger (Alfen NG9xx map: float32 max current at 1210,
/// function 16 only, applied current at 1206). A plant thread moves the site's import towards
/// min(demand, the charger's limit) and writes both meters. `lmc run`'s own loop — bus thread, Headroom,
/// FailSafe, relay thread, control socket — runs against them with the example site's configuration,
/// its time constants divided by the compression so that the day behaves as it would in real time.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the example day through the real control loop against simulated meters and charger over loopback Modbus TCP (no hardware, no config).",
        discussion: """
        The status view refreshes every second. At the end: seconds above
        the transformer's 500 kVA and above it + 2 %, energy delivered
        against a perfect-knowledge oracle (the whole day and the
        constrained evening, 15:00-20:30) and against a firm 150 kVA
        connection, and the path of an SVG plot of the day.

        Examples:
          lmc demo --seconds 240
          lmc demo --mode incremental --plain
        """
    )

    /// 90 s: a newcomer's `make run` reaches the summary in about a minute and a half once built.
    @Option(help: "Real seconds the simulated day takes.")
    var seconds: Double = 90

    @Option(help: ArgumentHelp("Where to write the SVG plot.", valueName: "file"))
    var plot: String?

    @Flag(help: "Print the status view once a simulated hour instead of refreshing the screen.")
    var plain = false

    @Option(help: ArgumentHelp("Control mode: direct (the example's) or incremental (reductions from the set point).", valueName: "mode"))
    var mode: String = "direct"

    @Option(help: ArgumentHelp("Run only this time of day, HH:MM-HH:MM (e.g. the constrained evening, 15:00-20:30); --seconds then spans the window, so the compression is lower.", valueName: "from-to"))
    var window: String?

    func validate() throws {
        guard seconds >= 2 && seconds <= 86_400 else { throw ValidationError("--seconds \(seconds) is outside 2–86400") }
        try validateWindow(window)
        guard ["direct", "incremental"].contains(mode) else { throw ValidationError("--mode \(mode): expected direct or incremental") }
    }

    static let f32 = RegisterCodec(.f32)
    /// A per phase at 230 V, three phases, unity power factor: kVA × 1000 / 690.
    static let ampsPerKVA = 1000.0 / 690

    func run() throws {
        let span = window.flatMap(parseWindow) ?? 0..<86_400
        let speed = (span.upperBound - span.lowerBound) / seconds
        let meterLayout = SimulatedSDM630.layout
        let charger = try ModbusServer.tcp(layout: .init(holding: 1200..<1230)) { req in
            req.function == 6 && req.address >= 1206 && req.address <= 1213 ? .exception(.illegalFunction) : .reply
        }
        let trafo = try ModbusServer.tcp(layout: meterLayout)
        let site = try ModbusServer.tcp(layout: meterLayout)
        defer { charger.stop(); trafo.stop(); site.stop() }

        let plant = DemoPlant(trafo: trafo, site: site, charger: charger, speed: speed, span: span)
        let dir = "/tmp/lmc-demo-\(getpid())"
        mkdir(dir, 0o755)
        // Everything lmc run writes there: the rings, the control socket and the breakers' memory.
        defer {
            for f in ["control.sock", "samples.ring", "halfhours.ring", "events.ring", "trips.ring", "minutes.ring", "breakers.state", "oscp.state"] {
                unlink("\(dir)/\(f)")
            }
            rmdir(dir)
        }
        let text = Self.config(trafoPort: trafo.port, sitePort: site.port, chargerPort: charger.port, socket: "\(dir)/control.sock", speed: speed, mode: mode)
        let config: Configuration
        switch Configuration.parse(text) {
        case .failure(let e):
            printError("the demo's configuration did not load (are the hw/ profiles installed? set LMC_HW_DIR):\n\(e)")
            throw ExitCode(2)
        case .success(let c): config = c
        }

        print("lmc demo: the Charge Project example day\(window.map { " from \($0.split(separator: "-").joined(separator: " to "))" } ?? "") in \(Int(seconds)) s (\(Int(speed))× faster) through lmc run's control loop")
        print("meter tcp 127.0.0.1:\(trafo.port), PoC meter tcp 127.0.0.1:\(site.port), charger tcp 127.0.0.1:\(charger.port)")
        print("rings and control socket in \(dir) (removed at the end)")
        let runtime = try Runtime(config: config, path: "(demo)")
        runtime.echoEvents = false
        let control = try ControlSocket(path: "\(dir)/control.sock", board: runtime.status, commands: runtime.commands)
        defer { control.stop() }
        stopSignal.store(0, ordering: .relaxed)
        let box = UncheckedBox(runtime)
        let loop = ServiceThread { box.value.run() }
        let plantThread = ServiceThread { plant.run() }
        defer {
            plant.stop()
            plantThread.join()
            stopSignal.store(1, ordering: .relaxed)
            loop.join()
        }

        var lastHour = -1
        while plant.simulatedSeconds < span.upperBound {
            usleep(plain ? 100_000 : 1_000_000)
            let t = plant.simulatedSeconds
            let clock = "\(pad(String(Int(t) / 3600), 2)):\(pad(String((Int(t) % 3600) / 60), 2))"
            if plain {
                let hour = Int(t) / 3600
                if hour != lastHour && hour < 24 {
                    lastHour = hour
                    let s = runtime.status.current
                    let sp = s?.sites.first.map { "\(Int($0.setPointW / 1000)) kW (\($0.boundBy))" } ?? "--"
                    print("\(clock)  \(s?.mode.rawValue ?? "STARTING")  trafo \(s?.mps.first?.value.map { "\(Int($0 / 1000)) kVA" } ?? "--")  set point \(sp)")
                }
            } else {
                print("\u{1B}[H\u{1B}[2J" + "simulated time \(clock)\n" + runtime.status.render(), terminator: "")
                fflush(nil)
            }
        }
        let s = plant.summary()
        let path = plot ?? "\(FileManager_currentDirectory())/lmc-demo.svg"
        let wrote = plant.writeSVG(to: path)
        print("")
        print("summary of \(window.map { "\($0.split(separator: "-").joined(separator: "–"))" } ?? "the day") (\(mode) mode, \(Int(speed))× compressed, control period 100 ms = \(Int(0.1 * speed)) s simulated):")
        print("  seconds above 500 kVA:         \(col(s.overloadSeconds, 8)) s")
        print("  seconds above 510 kVA (+2 %):  \(col(s.beyondToleranceSeconds, 8)) s")
        print("  EV energy delivered:           \(col(s.deliveredKWh, 8)) kWh")
        print("  share of the oracle:           \(col(100 * s.deliveredKWh / s.oracleKWh, 8)) %  (oracle \(col(s.oracleKWh, 0)) kWh)")
        if span.contains(DemoPlant.evening.lowerBound) && span.upperBound >= DemoPlant.evening.upperBound {
            print("  evening 15:00–20:30:           \(col(100 * s.eveningKWh / s.eveningOracleKWh, 8)) %  of the oracle (\(col(s.eveningKWh, 0)) of \(col(s.eveningOracleKWh, 0)) kWh)")
        }
        print("  share of a firm 150 kVA:       \(col(100 * s.deliveredKWh / s.firmKWh, 8)) %  (firm \(col(s.firmKWh, 0)) kWh)")
        print(wrote ? "  plot: \(path)" : "  plot: could not write \(path)")
    }

    /// The example site (hw/examples/lmc.toml, whose constraint and site are `ExampleSite`'s) with its time
    /// constants divided by the compression — except the non-response time, which must stay longer than a
    /// few meter polls in real time.
    static func config(trafoPort: Int, sitePort: Int, chargerPort: Int, socket: String, speed: Double, mode: String = "direct") -> String {
        func t(_ seconds: Double) -> String { String(max(seconds / speed, 0.0)) }
        func k(_ w: Double) -> String { String(w / 1000) }
        let mp = ExampleSite.measurementPoint(), upper = mp.upper!, site = ExampleSite.site()
        return """
        [box]
        id = "demo"
        socket = "\(socket)"
        [log]
        directory = "\(String(socket.dropLast("/control.sock".count)))"
        samples_mb = 4
        events_mb = 1
        halfhours_mb = 0.1
        trips_mb = 1
        minutes_mb = 0.5
        [control]
        mode = "\(mode)"
        period_ms = 100
        [failsafe]
        good_samples = 3
        startup_delay_max_s = 0
        recovery_ramp_kw_per_s = \(2 * speed)
        response_time_s = \(max(30 / speed, 1))
        [[bus]]
        id = "trafo"
        tcp = "127.0.0.1:\(trafoPort)"
        [[bus]]
        id = "poc"
        tcp = "127.0.0.1:\(sitePort)"
        [[meter]]
        id = "trafo_ct"
        bus = "trafo"
        profile = "eastron-sdm630"
        ct_rating_a = 1000
        [[meter]]
        id = "hub_poc"
        bus = "poc"
        profile = "eastron-sdm630"
        ct_rating_a = 500
        [[measurement_point]]
        id = "trafo"
        kind = "apparent_power"
        meter = "trafo_ct"
        sensitivity_per_kw = \(mp.sensitivity)
        regulate_margin_kva = \(k(mp.regulateMargin))
        ride_through_s = \(t(mp.rideThrough))
        regulate_interval_s = \(t(mp.regulateInterval))
        release_interval_s = \(t(mp.releaseInterval))
        filter_s = \(t(mp.filterTimeConstant))
        [measurement_point.upper]
        limit_kva = \(k(upper.limit))
        release_zone_kva = \(k(upper.releaseZone))
        release_trigger_kva = \(k(upper.releaseTrigger))
        [[site]]
        id = "\(site.id)"
        firm_kw = \(k(site.floorW))
        rated_kw = \(k(site.ceilingW))
        setpoint_unit = "a"
        quantum = 1
        ramp_up_kw_per_s = \(2 * speed)
        poc_meter = "hub_poc"
        [site.charger]
        profile = "alfen-ng9xx"
        tcp = "127.0.0.1:\(chargerPort)"
        unit = 1
        max_current_a = 400
        """
    }
}

private func FileManager_currentDirectory() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    return getcwd(&buf, buf.count).map { String(cString: $0) } ?? "/tmp"
}

private func col(_ v: Double, _ width: Int) -> String {
    let r = (v * 10).rounded() / 10
    let s = r == r.rounded() ? "\(Int(r)).0" : "\(r)"
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

extension Runtime: @unchecked Sendable {}

/// The physical side of the demo: the example day's background, the site following the charger's
/// limit through a 5 s (simulated) lag, both meters and the charger's applied current kept current.
final class DemoPlant: Sendable {
    struct Summary {
        var overloadSeconds = 0.0, beyondToleranceSeconds = 0.0, deliveredKWh = 0.0, oracleKWh = 0.0, firmKWh = 0.0
        /// The constrained evening, 15:00–20:30, where the headroom decides what the site gets.
        var eveningKWh = 0.0, eveningOracleKWh = 0.0
    }
    static let evening = 15.0 * 3600...20.5 * 3600
    typealias Point = DemoPlot.Point
    private struct State { var simT = 0.0; var siteKVA = 0.0; var summary = Summary(); var points: [Point] = []; var nextPoint = 0.0 }

    let trafo: ModbusServer, site: ModbusServer, charger: ModbusServer
    let speed: Double
    private let state = Mutex(State())
    private let stopped = Atomic(false)

    /// The simulated time of day it runs (s): the whole day, or `lmc demo --window`'s.
    let span: Range<Double>

    init(trafo: ModbusServer, site: ModbusServer, charger: ModbusServer, speed: Double, span: Range<Double> = 0..<86_400) {
        self.span = span
        self.trafo = trafo
        self.site = site
        self.charger = charger
        self.speed = speed
        state.withLock { $0.simT = span.lowerBound; $0.nextPoint = span.lowerBound }
        publish(background: ExampleDay.background(at: span.lowerBound), siteKVA: 0)
    }

    var simulatedSeconds: Double { state.withLock { $0.simT } }
    func summary() -> Summary { state.withLock { $0.summary } }
    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() {
        let stepReal = 0.01
        let dt = stepReal * speed
        while !stopped.load(ordering: .relaxed) {
            let limitA = (try? DemoCommand.f32.decode(charger.registers(.holding, address: 1210, count: 2))) ?? 0
            // The charger applies what it was told (readback for the relay).
            charger.setRegisters(.holding, address: 1206, charger.registers(.holding, address: 1210, count: 2))
            let limitKVA = limitA / DemoCommand.ampsPerKVA
            let done: (Double, Double)? = state.withLock { st in
                guard st.simT < span.upperBound else { return nil }
                let bg = ExampleDay.background(at: st.simT)
                // Noise a real feeder has: ±0.5 % (the meters must not read frozen).
                let noisy = bg * (1 + Double.random(in: -0.005...0.005))
                let target = min(ExampleDay.evDemandKVA, limitKVA)
                st.siteKVA += (target - st.siteKVA) * (1 - exp(-dt / 5))
                let load = noisy + st.siteKVA
                if load > ExampleDay.transformerKVA { st.summary.overloadSeconds += dt }
                if load > ExampleDay.transformerKVA * 1.02 { st.summary.beyondToleranceSeconds += dt }
                st.summary.deliveredKWh += st.siteKVA * dt / 3600
                let oracleKWh = min(ExampleDay.evDemandKVA, ExampleDay.transformerKVA - bg) * dt / 3600
                st.summary.oracleKWh += oracleKWh
                if Self.evening.contains(st.simT) {
                    st.summary.eveningKWh += st.siteKVA * dt / 3600
                    st.summary.eveningOracleKWh += oracleKWh
                }
                st.summary.firmKWh += min(ExampleDay.evDemandKVA, ExampleDay.firmKVA) * dt / 3600
                if st.simT >= st.nextPoint {
                    st.points.append(Point(t: st.simT, background: bg, load: load, site: st.siteKVA, limit: limitKVA))
                    st.nextPoint += 300
                }
                st.simT += dt
                return (noisy, st.siteKVA)
            }
            guard let (bg, s) = done else { return }
            publish(background: bg, siteKVA: s)
            usleep(UInt32(stepReal * 1_000_000))
        }
    }

    private func publish(background: Double, siteKVA: Double) {
        SimulatedSDM630.publish(trafo, kva: background + siteKVA)
        SimulatedSDM630.publish(site, kva: siteKVA)
    }

    /// The day's picture (DemoPlot): constraint load against its rating, set point against import.
    func writeSVG(to path: String) -> Bool {
        let pts = state.withLock { $0.points }
        guard !pts.isEmpty, let f = fopen(path, "w") else { return false }
        defer { fclose(f) }
        return fputs(DemoPlot.svg(pts), f) >= 0
    }
}
