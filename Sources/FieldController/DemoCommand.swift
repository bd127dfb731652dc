import ArgumentParser
import Headroom
import ModbusBridge
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `lmc demo`: the source's example day, time-compressed, over real loopback Modbus TCP.
///
/// Three simulated devices are libmodbus servers on 127.0.0.1: the transformer's CT meter and the
/// site's PoC meter (Eastron SDM630 input-register layout: total VA at 30057 = address 0x0038) and the
/// hub charger (Alfen NG9xx: max current float32 at holding 1210). A plant thread moves the site's
/// import towards min(demand, the charger's limit) and writes the meters; the control loop reads both
/// meters, computes the direct headroom and writes the limit to the charger with function 16 — every
/// value crosses a real Modbus round trip.
///
/// The loop runs the real control core (Headroom, direct mode, the example site of
/// hw/examples/lmc.toml) on the plant's virtual time. The FailSafe supervisor and the daemon's runtime
/// are not in the loop yet.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the example day against simulated meter and charger over loopback Modbus TCP (no hardware, no config).",
        discussion: """
        Prints one line per simulated hour and a summary: seconds above the transformer rating,
        energy delivered against a perfect-knowledge oracle and against a firm 150 kVA connection.
        Example: lmc demo --seconds 30
        """
    )

    @Option(help: "Real seconds the simulated day takes.")
    var seconds: Double = 60

    @Option(name: .customLong("period-ms"), help: "Control period in milliseconds.")
    var periodMilliseconds: Int = 100

    func validate() throws {
        guard seconds >= 1 && seconds <= 86_400 else { throw ValidationError("--seconds \(seconds) is outside 1–86400") }
        guard (10...10_000).contains(periodMilliseconds) else { throw ValidationError("--period-ms \(periodMilliseconds) is outside 10–10000") }
    }

    static let vaRegister: UInt16 = 0x0038      // SDM630 30057 total system VA, float32
    static let currentRegister: UInt16 = 0x0006 // SDM630 30007 phase 1 current, float32
    static let limitRegister: UInt16 = 1210     // Alfen NG9xx max current, float32, FC16 only
    static let f32 = RegisterCodec(.f32)
    /// A per phase at 400 V line-to-line, unity power factor: kVA × 1000 / (√3 × 400).
    static let ampsPerKVA = 1000 / (3.0.squareRoot() * 400)

    func run() throws {
        let meterLayout = ModbusServer.Layout(input: 0..<0x50)
        // Alfen answers exception 0x01 to function 6 on its float registers; so does this one.
        let charger = try ModbusServer.tcp(layout: .init(holding: 1200..<1230)) { req in
            req.function == 6 ? .exception(.illegalFunction) : .reply
        }
        let trafo = try ModbusServer.tcp(layout: meterLayout)
        let site = try ModbusServer.tcp(layout: meterLayout)
        defer { charger.stop(); trafo.stop(); site.stop() }
        try charger.set(Self.ampsPerKVA * ExampleDay.firmKVA, as: Self.f32, in: .holding, address: Self.limitRegister)

        print("lmc demo: example day, 500 kVA transformer, EV site 250 kVA rated / 150 kVA firm")
        print("meter tcp 127.0.0.1:\(trafo.port), PoC meter tcp 127.0.0.1:\(site.port), charger tcp 127.0.0.1:\(charger.port)")
        print(" time  trafo kVA  backgr  site kVA  limit kVA   amps  reads  writes")

        let speed = 86_400 / seconds
        let plant = Plant(trafo: trafo, site: site, charger: charger, speed: speed)
        let plantThread = ServiceThread { plant.run() }
        defer { plant.stop(); plantThread.join() }

        let opts = ModbusClientOptions(responseTimeoutMilliseconds: 200, byteTimeoutMilliseconds: 50)
        let trafoClient = try ModbusClient(.tcp(host: "127.0.0.1", port: trafo.port), options: opts)
        let siteClient = try ModbusClient(.tcp(host: "127.0.0.1", port: site.port), options: opts)
        let chargerClient = try ModbusClient(.tcp(host: "127.0.0.1", port: charger.port), options: opts)

        var controller = ExampleSite.controller(mode: .direct)
        var limitKVA = ExampleDay.firmKVA
        var written = -1.0
        var reads = 0, writes = 0, errors = 0
        var nextHour = 0.0
        let period = UInt64(periodMilliseconds) * 1_000_000
        var next = now() + period

        while true {
            let simT = plant.simulatedSeconds
            if simT >= 86_400 { break }
            do {
                let trafoVA = try trafoClient.read(Self.f32, from: .input, unit: 1, address: Self.vaRegister)
                let siteVA = try siteClient.read(Self.f32, from: .input, unit: 1, address: Self.vaRegister)
                reads += 2
                let decision = controller.tick(now: simT, .init(mp: [ExampleSite.mpID: [trafoVA]],
                                                                 siteImportW: [ExampleSite.siteID: siteVA],
                                                                 secondsOfDay: simT)).sites[0]
                limitKVA = decision.sent
                let amps = (limitKVA * Self.ampsPerKVA).rounded(.down)
                if amps != written {
                    try chargerClient.write(amps, as: Self.f32, unit: 1, address: Self.limitRegister)
                    written = amps
                    writes += 1
                }
                if simT >= nextHour {
                    let h = Int(simT) / 3600, m = (Int(simT) % 3600) / 60
                    print("\(pad(String(h), 2)):\(pad(String(m), 2))  \(col(trafoVA / 1000, 9))  \(col(ExampleDay.background(at: simT), 6))  \(col(siteVA / 1000, 8))  \(col(limitKVA, 9))  \(col(amps, 5))  \(pad(String(reads), 5, right: true))  \(pad(String(writes), 6, right: true))")
                    nextHour += 3600
                }
            } catch {
                errors += 1
                printError("\(error)")
            }
            let t = now()
            if next > t { usleep(UInt32((next - t) / 1000)) }
            next += period
        }
        let s = plant.summary()
        print("")
        print("summary: \(reads) meter reads, \(writes) charger writes, \(errors) Modbus errors over loopback")
        print("  seconds above 500 kVA:      \(col(s.overloadSeconds, 8)) s")
        print("  seconds above 510 kVA (+2%):\(col(s.beyondToleranceSeconds, 8)) s")
        print("  EV energy delivered:        \(col(s.deliveredKWh, 8)) kWh")
        print("  vs perfect-knowledge oracle: \(col(100 * s.deliveredKWh / s.oracleKWh, 7)) %  (oracle \(col(s.oracleKWh, 0)) kWh)")
        print("  vs firm 150 kVA connection:  \(col(100 * s.deliveredKWh / s.firmKWh, 7)) %  (firm \(col(s.firmKWh, 0)) kWh)")
        if errors > 0 { throw ExitCode(1) }
    }
}

private func col(_ v: Double, _ width: Int) -> String {
    let r = (v * 10).rounded() / 10
    let s = r == r.rounded() ? "\(Int(r)).0" : "\(r)"
    return String(repeating: " ", count: max(0, width - s.count)) + s
}

private func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The physical side of the demo: background load from the example day, the site following the
/// charger's limit through a 5 s first-order lag, both written into the simulated meters.
private final class Plant: Sendable {
    struct Summary { var overloadSeconds = 0.0, beyondToleranceSeconds = 0.0, deliveredKWh = 0.0, oracleKWh = 0.0, firmKWh = 0.0 }
    private struct State { var simT = 0.0; var siteKVA = 150.0; var summary = Summary() }

    let trafo: ModbusServer, site: ModbusServer, charger: ModbusServer
    let speed: Double
    private let state = Mutex(State())
    private let stopped = Atomic(false)

    init(trafo: ModbusServer, site: ModbusServer, charger: ModbusServer, speed: Double) {
        self.trafo = trafo
        self.site = site
        self.charger = charger
        self.speed = speed
        publish(background: ExampleDay.background(at: 0), siteKVA: 150)
    }

    var simulatedSeconds: Double { state.withLock { $0.simT } }
    func summary() -> Summary { state.withLock { $0.summary } }
    func stop() { stopped.store(true, ordering: .relaxed) }

    func run() {
        let stepReal = 0.01
        let dt = stepReal * speed
        while !stopped.load(ordering: .relaxed) {
            let limitA = charger.registers(.holding, address: DemoCommand.limitRegister, count: 2)
            let limitKVA = ((try? DemoCommand.f32.decode(limitA)) ?? 0) / DemoCommand.ampsPerKVA
            let (bg, s) = state.withLock { st -> (Double, Double) in
                guard st.simT < 86_400 else { return (0, -1) }
                let bg = ExampleDay.background(at: st.simT)
                let target = min(ExampleDay.evDemandKVA, limitKVA)
                st.siteKVA += (target - st.siteKVA) * (1 - exp(-dt / 5))
                if bg + st.siteKVA > ExampleDay.transformerKVA { st.summary.overloadSeconds += dt }
                if bg + st.siteKVA > ExampleDay.transformerKVA * 1.02 { st.summary.beyondToleranceSeconds += dt }
                st.summary.deliveredKWh += st.siteKVA * dt / 3600
                st.summary.oracleKWh += min(ExampleDay.evDemandKVA, ExampleDay.transformerKVA - bg) * dt / 3600
                st.summary.firmKWh += min(ExampleDay.evDemandKVA, ExampleDay.firmKVA) * dt / 3600
                st.simT += dt
                return (bg, st.siteKVA)
            }
            if s < 0 { return }
            publish(background: bg, siteKVA: s)
            usleep(UInt32(stepReal * 1_000_000))
        }
    }

    private func publish(background: Double, siteKVA: Double) {
        let siteVA = siteKVA * 1000
        let totalVA = (background + siteKVA) * 1000
        try? trafo.set(totalVA, as: DemoCommand.f32, in: .input, address: DemoCommand.vaRegister)
        try? trafo.set(totalVA / 1000 * DemoCommand.ampsPerKVA, as: DemoCommand.f32, in: .input, address: DemoCommand.currentRegister)
        try? site.set(siteVA, as: DemoCommand.f32, in: .input, address: DemoCommand.vaRegister)
        try? site.set(siteKVA * DemoCommand.ampsPerKVA, as: DemoCommand.f32, in: .input, address: DemoCommand.currentRegister)
    }
}
