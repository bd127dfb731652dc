import Foundation
import LMCTestSupport
import Testing
@testable import CTSensorDriver
import LMCWiring
@testable import ModbusBridge

func profile(_ name: String) throws -> MeterProfile {
    let path = Repo.root.appendingPathComponent("hw/meters/\(name).toml").path
    return try MeterProfiles.load(path).get()
}

/// Plausible values for a loaded 400 V board, in SI units.
let boardValues: [String: Double] = [
    "voltage_l1": 231.4, "voltage_l2": 229.8, "voltage_l3": 232.1,
    "current_l1": 412.5, "current_l2": 398.25, "current_l3": 405.125,
    "power_l1": 91_234.5, "power_l2": 88_010.2, "power_l3": 90_120.8, "power_total": 269_365.5,
    "apparent_power_l1": 95_452.7, "apparent_power_l2": 91_518.9, "apparent_power_l3": 94_029.5,
    "apparent_power_total": 281_001.1, "frequency": 49.9, "energy_import": 123_456_700,
]

@Suite struct ProfilesAgainstPymodbus {
    @Test(arguments: ["eastron-sdm630", "carlo-gavazzi-em24", "carlo-gavazzi-em340", "schneider-iem3000", "schneider-pm5100", "generic"])
    func decodesWhatPythonEncoded(name: String) throws {
        let p = try profile(name)
        let json = String(decoding: try JSONSerialization.data(withJSONObject: boardValues), as: UTF8.self)
        let peer = try PyModbusPeer(profile: Repo.root.appendingPathComponent("hw/meters/\(name).toml").path, values: json)
        defer { peer.stop() }
        let client = try ModbusClient(.tcp(host: "127.0.0.1", port: peer.port), options: .init(responseTimeoutMilliseconds: 1000))
        let r = MeterPoller(name: name, profile: p, unit: 1, rules: QualityRules(ctRatingA: 600), scope: .all).poll(client)
        #expect(r.quality.isUsable, "\(r.quality) \(r.error ?? "")")
        for spec in p.registers {
            let want = boardValues[spec.quantity.rawValue]!
            let got = r.values[spec.quantity]!
            #expect(abs(got - want) <= abs(want) * 1e-4, "\(name) \(spec.quantity.rawValue): \(got) vs \(want)")
        }
        #expect(r.values[.apparentPowerTotal] != nil)
    }

    @Test(arguments: ["eastron-sdm630", "carlo-gavazzi-em24", "schneider-iem3000"])
    func readsCoverEveryRegisterInFewerRequests(name: String) throws {
        let p = try profile(name)
        let reads = p.reads
        #expect(reads.count < p.registers.count)
        #expect(reads.allSatisfy { $0.count <= p.maxRegistersPerRead })
        for r in p.registers {
            #expect(reads.contains { Int($0.address) <= Int(r.address) && Int(r.address) + r.codec.registerCount <= Int($0.address) + $0.count })
        }
    }
}

/// The daemon's poll reads the registers control uses (voltages, currents, total W and VA), in as few
/// requests as the device and the line allow: counted at an independent pymodbus meter.
@Suite struct ControlReads {
    @Test(arguments: ["eastron-sdm630", "carlo-gavazzi-em24"])
    func oneRequestPerPollOverTCPWithTheControlValues(name: String) throws {
        let p = try profile(name)
        // The example's meters read everything control needs in one request.
        #expect(p.controlReads(on: nil).count == 1, "\(p.controlReads(on: nil))")
        let json = String(decoding: try JSONSerialization.data(withJSONObject: boardValues), as: UTF8.self)
        let peer = try PyModbusPeer(profile: Repo.root.appendingPathComponent("hw/meters/\(name).toml").path, values: json, jitter: 1e-6, logRequests: true)
        defer { peer.stop() }
        let client = try ModbusClient(.tcp(host: "127.0.0.1", port: peer.port), options: .init(responseTimeoutMilliseconds: 1000))
        let poller = MeterPoller(name: name, profile: p, unit: 1, rules: QualityRules(ctRatingA: 600))
        let polls = 5
        var last: MeterReading?
        for _ in 0..<polls { last = poller.poll(client) }
        let r = try #require(last)
        #expect(r.quality.isUsable, "\(r.quality) \(r.error ?? "")")
        let deadline = Date().addingTimeInterval(2)
        while peer.requests.count < polls && Date() < deadline { usleep(10_000) }
        let seen = peer.requests
        #expect(seen.count == polls, "requests at the peer: \(seen)")
        #expect(seen.allSatisfy { $0.function == 4 && $0.address == Int(p.controlReads(on: nil)[0].address) && $0.count == p.controlReads(on: nil)[0].count })
        for q in ["voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3", "power_total", "apparent_power_total"] {
            let want = boardValues[q]!
            let got = try #require(r.values[Quantity(rawValue: q)!], "\(q) missing")
            #expect(abs(got - want) <= abs(want) * 1e-4, "\(name) \(q): \(got) vs \(want)")
        }
        // Energy and frequency are not control's: not read on the bus.
        #expect(r.values[.energyImport] == nil && r.values[.frequency] == nil)
    }

    @Test func at9600BaudAWideGapCostsMoreThanASecondRequest() throws {
        let sdm = try profile("eastron-sdm630"), em24 = try profile("carlo-gavazzi-em24")
        let line = SerialLine(device: "/dev/null", baud: 9600)
        // SDM630: V and I at 0x00–0x0B, W and VA total at 0x34–0x39; the 40 registers between cost
        // 83 ms at 9600 baud, a second request 31 ms: two requests. Before: three (energy, frequency).
        #expect(sdm.controlReads(on: line).map { [Int($0.address), $0.count] } == [[0, 12], [0x34, 6]])
        #expect(MeterProfile.reads(covering: sdm.registers, maxGap: 8, maxCount: 80).count == 3)
        // EM24: V, then I after a 6-register gap (read across), then W and VA total after 22.
        #expect(em24.controlReads(on: line).map { [Int($0.address), $0.count] } == [[0, 18], [0x28, 4]])
        // At 115200 baud the turnaround dominates: one request each.
        let fast = SerialLine(device: "/dev/null", baud: 115_200)
        #expect(sdm.controlReads(on: fast).count == 1 && em24.controlReads(on: fast).count == 1)
    }
}

@Suite(.serialized) struct TwoMetersOnOneRTUBus {
    @Test func bothReadInTurnOnOneBus() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let sdm = try profile("eastron-sdm630")
        let em24 = try profile("carlo-gavazzi-em24")
        let sdmRoot = Repo.root.appendingPathComponent("hw/meters/eastron-sdm630.toml").path
        let emRoot = Repo.root.appendingPathComponent("hw/meters/carlo-gavazzi-em24.toml").path
        // One pymodbus process answering two unit ids with two different layouts.
        let specs = try [sdmRoot, emRoot].map { path -> String in
            let r = try run(Repo.python, ["-c", """
            import json, sys; sys.path.insert(0, '\(Repo.root.appendingPathComponent("Tests/peers").path)')
            import modbus_peer; print(json.dumps(modbus_peer.spec_from_profile('\(path)', json.loads(sys.argv[1]))))
            """, String(decoding: try JSONSerialization.data(withJSONObject: boardValues), as: UTF8.self)])
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let peer = try PyModbusPeer(rtuDevice: pty.b, baud: 9600, units: [1, 2], spec: "[\(specs[0]), \(specs[1])]")
        defer { peer.stop() }
        let a = LatestReading(), b = LatestReading()
        let bus = BusWorker(endpoint: .rtu(SerialLine(device: pty.a, baud: 9600)),
                            options: .init(responseTimeoutMilliseconds: 1000, byteTimeoutMilliseconds: 100),
                            // Static registers: not judged frozen within the test's few seconds.
                            meters: [.init(name: "trafo", profile: sdm, unit: 1, rules: QualityRules(frozenAfterSeconds: 60), periodMs: 500, slot: a),
                                     .init(name: "site", profile: em24, unit: 2, rules: QualityRules(frozenAfterSeconds: 60), periodMs: 500, slot: b)])
        bus.start()
        let deadline = Date().addingTimeInterval(15)
        while (a.counts.polls < 3 || b.counts.polls < 3) && Date() < deadline { usleep(50_000) }
        bus.stop()
        #expect(a.counts.polls >= 3 && b.counts.polls >= 3)
        #expect(a.counts.bad == 0 && b.counts.bad == 0, "bad: \(a.reading?.quality as Any) \(b.reading?.quality as Any)")
        #expect(abs(a.reading!.values[.currentL1]! - 412.5) < 1e-3)
        #expect(abs(b.reading!.values[.currentL1]! - 412.5) < 1e-3)
        #expect(abs(b.reading!.values[.voltageL2]! - 229.8) < 1e-6)
    }
}

/// Each quality rule: the fault injected against a live server, then removed; the polls it takes.
@Suite struct QualityRulesOnTheWire {
    let sdm: MeterProfile
    /// A missing or broken profile fails each test here, not the whole test process.
    init() throws { sdm = try profile("eastron-sdm630") }

    func meterServer(_ filter: ModbusServer.Filter? = nil) throws -> ModbusServer {
        let s = try ModbusServer.tcp(layout: .init(input: 0..<0x50), filter: filter)
        for (q, v) in boardValues {
            if let spec = sdm.registers.first(where: { $0.quantity.rawValue == q }) {
                try s.set(v, as: spec.codec, in: .input, address: spec.address)
            }
        }
        return s
    }

    func poller(_ rules: QualityRules = QualityRules(ctRatingA: 600)) -> MeterPoller {
        MeterPoller(name: "trafo", profile: sdm, unit: 1, rules: rules)
    }

    func client(_ port: Int) throws -> ModbusClient {
        try ModbusClient(.tcp(host: "127.0.0.1", port: port), options: .init(responseTimeoutMilliseconds: 100))
    }

    @Test func silenceIsATimeoutOnTheFirstPoll() throws {
        let quiet = DropSwitch()
        let s = try meterServer { _ in quiet.on ? .drop : .reply }
        defer { s.stop() }
        let p = poller(), c = try client(s.port)
        #expect(p.poll(c).quality == .good)
        quiet.on = true
        #expect(p.poll(c).quality == .bad(.timeout))
        quiet.on = false
        #expect(p.poll(c).quality == .good)
    }

    @Test func anExceptionIsBadWithItsCode() throws {
        let failing = DropSwitch()
        let s = try meterServer { _ in failing.on ? .exception(.serverDeviceFailure) : .reply }
        defer { s.stop() }
        let p = poller(), c = try client(s.port)
        failing.on = true
        let r = p.poll(c)
        #expect(r.quality == .bad(.exception(4)))
        #expect(r.values.isEmpty, "a failed poll carries no values")
        failing.on = false
        #expect(p.poll(c).quality == .good)
    }

    @Test func nanIsBadAndNamed() throws {
        let s = try meterServer()
        defer { s.stop() }
        let p = poller(), c = try client(s.port)
        s.setRegisters(.input, address: 0x0008, [0x7FC0, 0x0000])           // current_l2 = NaN
        #expect(p.poll(c).quality == .bad(.notFinite("current_l2")))
        try s.set(398.25, as: RegisterCodec(.f32), in: .input, address: 0x0008)
        #expect(p.poll(c).quality == .good)
    }

    @Test func outOfRangeCurrentAndVoltage() throws {
        let s = try meterServer()
        defer { s.stop() }
        let p = poller(), c = try client(s.port)
        try s.set(1_250, as: RegisterCodec(.f32), in: .input, address: 0x0006)   // > 2 × 600 A
        guard case .bad(.outOfRange(let why)) = p.poll(c).quality else { Issue.record("not out of range"); return }
        #expect(why.contains("current_l1 1250 A is above 2 × the 600 A CT rating"))
        try s.set(412.5, as: RegisterCodec(.f32), in: .input, address: 0x0006)
        _ = p.poll(c)
        try s.set(99, as: RegisterCodec(.f32), in: .input, address: 0x0000)      // < 0.5 × 230 V
        #expect({ if case .bad(.outOfRange) = p.poll(c).quality { true } else { false } }())
    }

    @Test func frozenAfterSecondsOfIdenticalRegistersUnderLoadButNotAtZeroLoad() throws {
        // Pure: the judge takes the reply's time. Registers stop changing at t = 0.3 s; polls every 0.1 s.
        var judge = QualityJudge(QualityRules(ctRatingA: 600, frozenAfterSeconds: 1))
        let loaded: [Quantity: Double] = [.currentL1: 400, .voltageL1: 230]
        func at(_ t: Double, _ raw: [UInt16]) -> Quality { judge.judge(values: loaded, raw: raw, atNs: UInt64(t * 1e9)) }
        for k in 0..<3 { #expect(at(Double(k) / 10, [UInt16(k)]) == .good) }
        var firstBad: Double?
        for k in 3...20 where firstBad == nil {
            if case .bad(.frozen) = at(Double(k) / 10, [3]) { firstBad = Double(k) / 10 }
        }
        #expect(firstBad == 1.3, "frozen at the first poll 1 s after the run began at 0.3 s, not after a count of polls")
        // Slower polls: the same seconds, fewer polls (a count of polls would take 10 × 0.3 s here).
        var slow = QualityJudge(QualityRules(ctRatingA: 600, frozenAfterSeconds: 1))
        let verdicts = (0...4).map { slow.judge(values: loaded, raw: [7], atNs: UInt64(Double($0) * 0.3e9)) }
        #expect(verdicts.prefix(4).allSatisfy { $0 == .good } && verdicts[4] == .bad(.frozen(polls: 5)), "\(verdicts)")
        // The value moves again: good at once.
        #expect(at(2.1, [4]) == .good)
        // No load: a constant reading is believable.
        var idle = QualityJudge(QualityRules(ctRatingA: 600, frozenAfterSeconds: 1))
        #expect((0..<30).allSatisfy { idle.judge(values: [.currentL1: 0, .voltageL1: 230], raw: [1], atNs: UInt64($0) * 100_000_000) == .good })
    }

    @Test func aFrozenMeterOnTheWireIsBadAfterFrozenAfterS() throws {
        let s = try meterServer()
        defer { s.stop() }
        let p = poller(QualityRules(ctRatingA: 600, frozenAfterSeconds: 0.3)), c = try client(s.port)
        let t0 = Date()
        var bad: Quality?
        while bad == nil && Date().timeIntervalSince(t0) < 3 {
            let q = p.poll(c).quality
            if case .bad(.frozen) = q { bad = q }
            usleep(20_000)
        }
        #expect(bad != nil)
        #expect(Date().timeIntervalSince(t0) >= 0.3)
    }

    @Test func anImplausibleStepIsBadForOnePoll() throws {
        let s = try meterServer()
        defer { s.stop() }
        let p = poller(), c = try client(s.port)
        #expect(p.poll(c).quality == .good)
        // The apparent power moves with the current (Σ V·I), as a real meter's does.
        try s.set(1_199, as: RegisterCodec(.f32), in: .input, address: 0x0006)   // +786.5 A: within 1.5 × 600 A
        try s.set(462_996, as: RegisterCodec(.f32), in: .input, address: 0x0038)
        #expect(p.poll(c).quality == .good)
        try s.set(100, as: RegisterCodec(.f32), in: .input, address: 0x0006)     // −1099 A in one poll
        try s.set(208_687, as: RegisterCodec(.f32), in: .input, address: 0x0038)
        try s.set(200_000, as: RegisterCodec(.f32), in: .input, address: 0x0034)   // and so does P (≤ S)
        #expect({ if case .bad(.implausibleStep) = p.poll(c).quality { true } else { false } }())
        #expect(p.poll(c).quality == .good)                                      // the new level is believed
    }

    @Test func ctOnlyMeterEstimatesApparentPowerAndSaysSo() throws {
        let generic = try profile("generic")
        let s = try ModbusServer.tcp(layout: .init(input: 0..<8))
        defer { s.stop() }
        for (i, a) in [100.0, 110, 120].enumerated() { try s.set(a, as: RegisterCodec(.f32), in: .input, address: UInt16(2 * i)) }
        // This generic map has apparent power; drop it to see the estimate.
        var ctOnly = generic
        ctOnly.registers.removeAll { $0.quantity == .apparentPowerTotal }
        let r = MeterPoller(name: "ct", profile: ctOnly, unit: 1).poll(try client(s.port))
        #expect(abs(r.values[.apparentPowerTotal]! - 330 * 230) < 1e-6, "\(r.values)")
        #expect(r.estimated == [.apparentPowerTotal])
        guard case .estimated(let how) = r.quality else { Issue.record("\(r.quality)"); return }
        #expect(how.contains("nominal 230 V"))
    }

    @Test func theLatestSlotNeverCallsABadReadingGood() throws {
        let slot = LatestReading()
        slot.store(MeterReading(meter: "m", values: [.currentL1: 1], estimated: [], monotonicNs: 100, quality: .good))
        slot.store(MeterReading(meter: "m", values: [:], estimated: [], monotonicNs: 200, quality: .bad(.timeout)))
        #expect(slot.lastGoodNs == 100)
        #expect(slot.reading?.quality == .bad(.timeout))
    }

    @Test func unpluggedSerialAdapterIsDisconnected() throws {
        let c = try ModbusClient(.rtu(SerialLine(device: "/dev/ttyLMC-unplugged")), options: .init(responseTimeoutMilliseconds: 100))
        let r = poller().poll(c)
        #expect(r.quality == .bad(.disconnected))
        #expect(r.error!.contains("/dev/ttyLMC-unplugged"))
    }

    @Test func deadAndFrozenDetectionAtA100msPoll() throws {
        // The numbers the closing note quotes: polls (deterministic) and wall time (informative only).
        let quiet = DropSwitch()
        let s = try meterServer { _ in quiet.on ? .drop : .reply }
        defer { s.stop() }
        let slot = LatestReading()
        let bus = BusWorker(endpoint: .tcp(host: "127.0.0.1", port: s.port), options: .init(responseTimeoutMilliseconds: 200),
                            meters: [.init(name: "trafo", profile: sdm, unit: 1, rules: QualityRules(ctRatingA: 600, frozenAfterSeconds: 0.9), periodMs: 100, slot: slot)])
        bus.start()
        defer { bus.stop() }
        // Values move every poll while alive.
        var i = 0.0
        func wiggle() { i += 1; try? s.set(400 + i.truncatingRemainder(dividingBy: 7), as: RegisterCodec(.f32), in: .input, address: 0x0006) }
        for _ in 0..<10 { wiggle(); usleep(100_000) }
        #expect(slot.reading?.quality == .good)
        quiet.on = true
        let t0 = Date()
        while slot.reading?.quality.isUsable == true && Date().timeIntervalSince(t0) < 5 { usleep(5_000) }
        let dead = Date().timeIntervalSince(t0)
        quiet.on = false
        while slot.reading?.quality.isUsable != true && Date().timeIntervalSince(t0) < 10 { usleep(5_000) }
        let t1 = Date()
        while slot.reading?.quality.isUsable == true && Date().timeIntervalSince(t1) < 5 { usleep(5_000) }
        let frozen = Date().timeIntervalSince(t1)
        print("dead meter seen bad after \(Int(dead * 1000)) ms, frozen after \(Int(frozen * 1000)) ms (100 ms poll, 200 ms timeout)")
        #expect(slot.reading.map { if case .bad(.frozen) = $0.quality { true } else { false } } == true)
    }

    @Test func aFrozenMeterWasLastGoodAtTheStartOfItsRun() {
        // Polls every 100 ms; from t = 1.0 s the registers stop changing; the 10th identical poll
        // (t = 1.9 s) is judged frozen. The last trustworthy reading is the one at 1.0 s, so the blind
        // time runs from there: safe at 2.0 s with a 1 s blind time, not at 2.9 s.
        let slot = LatestReading()
        func reading(_ t: Double, _ q: Quality) -> MeterReading {
            MeterReading(meter: "m", values: [.currentL1: 400], estimated: [], monotonicNs: UInt64(t * 1e9), quality: q, error: nil)
        }
        for k in 0..<19 { slot.store(reading(Double(k) * 0.1, .good)) }
        #expect(slot.lastGoodNs == 1_800_000_000)
        slot.store(reading(1.9, .bad(.frozen(polls: 10))))
        #expect(slot.lastGoodNs == 1_000_000_000)
        // Still frozen: nothing moves it further.
        slot.store(reading(2.0, .bad(.frozen(polls: 11))))
        #expect(slot.lastGoodNs == 1_000_000_000)
        // Alive again: good from the first changed poll.
        slot.store(reading(2.1, .good))
        #expect(slot.lastGoodNs == 2_100_000_000)
    }
}


@Suite struct PulseAndRedundancyTests {
    @Test func s0AverageAndBrokenWire() {
        var m = PulseMeter(impulsesPerKWh: 1000, minimumLoadW: 1_000, windowSeconds: 60)  // 3600 J a pulse
        for k in 0..<11 { m.pulse(at: Double(k) * 0.36) }                                  // 10 kW
        let e = m.estimate(now: 3.7)
        #expect(abs(e.watts! - 10_000) < 1)
        guard case .estimated = e.quality else { Issue.record("\(e.quality)"); return }
        // At the 1 kW minimum a pulse comes every 3.6 s; nothing for 6 s is the wire, not the load.
        #expect(m.estimate(now: 3.6 + 6).quality == .bad(.disconnected))
        var free = PulseMeter(impulsesPerKWh: 1000)
        free.pulse(at: 0)
        free.pulse(at: 1)
        #expect(free.estimate(now: 100).watts! < 40, "a long silence bounds the power from above")
    }

    @Test func redundantSources() {
        let pair = RedundantPair(tolerance: 0.05)
        #expect(pair.combine(primary: ("ct", 100, .good), secondary: ("poc", 102, .good)).state == .agreeing)
        let d = pair.combine(primary: ("ct", 100, .good), secondary: ("poc", 120, .good))
        guard case .diverging(let why) = d.state else { Issue.record("\(d.state)"); return }
        #expect(why.contains("differ by 16.7 %") && d.value == 100)
        let g = pair.combine(primary: ("ct", nil, .bad(.timeout)), secondary: ("poc", 99, .good))
        #expect(g.value == 99)
        #expect(g.state == .degraded("ct lost (bad: timeout); using poc"))
        #expect(pair.combine(primary: ("ct", 5, .bad(.stale)), secondary: ("poc", nil, .bad(.crc))).state == .lost)
    }
}

import DigitalIO

@Suite struct PulseInputAndStaleness {
    @Test func s0PulsesFromAGPIOLine() throws {
        let sim = GPIOSimulator(chips: [.init(name: "gpiochip0", lineNames: ["S0_1"])])
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let input = try PulseInput(name: "site", chip: chip, offset: 0, meter: PulseMeter(impulsesPerKWh: 10_000))
            for _ in 0..<5 {
                sim.drive(chip: "gpiochip0", offset: 0, high: true)
                usleep(20_000)
                sim.drive(chip: "gpiochip0", offset: 0, high: false)
                usleep(20_000)
            }
            #expect(try input.drain() == 5)
            let e = input.meter.estimate(now: Double(sim.transitions(chip: "gpiochip0", offset: 0).last!.monotonicNs) / 1e9)
            // 360 J a pulse every ~40 ms ≈ 9 kW; the exact figure depends on the scheduler, its order does not.
            #expect(e.watts! > 3_000 && e.watts! < 12_000, "\(e.watts!)")
        }
    }

    @Test func anOldGoodReadingReadsAsStale() {
        let slot = LatestReading()
        slot.store(MeterReading(meter: "m", values: [.currentL1: 10], estimated: [], monotonicNs: 1_000_000_000, quality: .good))
        #expect(slot.reading(atNs: 1_500_000_000, staleAfterNs: 1_000_000_000)?.quality == .good)
        let old = slot.reading(atNs: 2_100_000_000, staleAfterNs: 1_000_000_000)
        #expect(old?.quality == .bad(.stale))
        #expect(old?.values[.currentL1] == 10, "the value is kept, but no longer called good")
    }
}

/// Issue 16, item 3: power that cannot be. An open CT or a shorting link left in reads 0 VA while the
/// currents say 400 A; a wrong CT ratio or a word-swapped register reads a total the CTs cannot carry.
@Suite struct PowerPlausibility {
    let rules = QualityRules(ctRatingA: 600)
    let board: [Quantity: Double] = [
        .voltageL1: 231.4, .voltageL2: 229.8, .voltageL3: 232.1, .currentL1: 412.5, .currentL2: 398.25, .currentL3: 405.125,
        .powerTotal: 269_365.5, .apparentPowerTotal: 281_001.1,
    ]

    func judge(_ changes: [Quantity: Double]) -> Quality {
        var j = QualityJudge(rules)
        return j.judge(values: board.merging(changes) { $1 }, raw: [1, 2, 3], atNs: 0)
    }

    func why(_ q: Quality) -> String { if case .bad(.outOfRange(let w)) = q { w } else { "not out of range: \(q)" } }

    @Test func aConsistentBoardIsGood() {
        #expect(judge([:]) == .good)
        // Within 20 %: a meter that totals VA as a vector sum under unbalance reads a little below Σ V·I.
        #expect(judge([.apparentPowerTotal: 250_000, .powerTotal: 240_000]) == .good)
    }

    @Test func apparentPowerThatDisagreesWithTheCurrentsIsBad() {
        #expect(why(judge([.apparentPowerTotal: 0, .powerTotal: 0])).contains("apparent_power_total 0 VA disagrees with Σ V·I = 280999.9 VA"))
        #expect(why(judge([.apparentPowerTotal: 560_000])).contains("disagrees with Σ V·I"))
    }

    @Test func negativeApparentPowerAndActiveAboveApparentAreBad() {
        #expect(why(judge([.apparentPowerTotal: -281_001.1])).contains("apparent_power_total -281001.1 VA is negative"))
        #expect(why(judge([.powerTotal: 300_000])).contains("power_total 300000 W is more than apparent_power_total 281001.1 VA"))
    }

    @Test func aTotalBeyondWhatTheCTsCanCarryIsBad() {
        // 3 phases × 2 × 600 A × 1.5 × 230 V = 1 242 000 VA at most.
        var j = QualityJudge(rules)
        let q = j.judge(values: [.apparentPowerTotal: 3.0e6, .powerTotal: 2.9e6], raw: [1], atNs: 0)
        #expect(why(q).contains("apparent_power_total 3000000 VA is above 1242000 VA"), "\(q)")
    }
}
