import Foundation
import LMCTestSupport
import ModbusBridge
import Testing
import LMCWiring
@testable import SetPointRelay

func chargerPath(_ name: String) -> String { Repo.root.appendingPathComponent("hw/chargers/\(name).toml").path }

func chargerProfile(_ name: String, validity: Double? = nil) throws -> ChargerProfile {
    var p = try ChargerProfiles.load(chargerPath(name)).get()
    if let validity { p.validitySeconds = validity }
    return p
}

func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// 16 A per phase at 230 V, three phases, unity power factor.
let sixteenAmpsW = 16.0 * 3 * 230

@Suite struct ChargerProfilesAgainstBehavingPeers {
    static let all = ["alfen-ng9xx", "abb-terra-ac", "keba-p30", "bender-cc612", "webasto-next", "generic"]

    @Test(arguments: all)
    func fallbackFirstThenTheLimitInTheChargersUnit(name: String) throws {
        let profile = try chargerProfile(name, validity: 3)
        let peer = try ChargerPeer(profile: chargerPath(name), validity: 3, fallbackA: 6, refuseFC6OnLimit: name == "alfen-ng9xx")
        defer { peer.stop() }
        let relay = try ModbusChargerRelay(profile: profile, endpoint: .tcp(host: "127.0.0.1", port: peer.port),
                                           conversion: .init(stepA: 1), safeCurrentA: 10, options: .init(responseTimeoutMilliseconds: 1000))
        let st = relay.apply(watts: sixteenAmpsW, nowNs: monotonicNow())
        #expect(st.failingSinceNs == nil, "\(st.lastError ?? "")")
        #expect(st.writtenA == 16)
        let writes = peer.writes(waitingFor: Int(profile.limit.address))
        let limitIndex = try #require(writes.firstIndex { $0.address == Int(profile.limit.address) })
        // Every fallback register is written, and before the limit.
        for r in [profile.safeCurrent, profile.timeout].compactMap({ $0 }) {
            let i = writes.firstIndex { $0.address == Int(r.address) }
            #expect(i != nil && i! < limitIndex, "\(name): fallback register \(r.address) written first")
        }
        let s = try peer.state()
        #expect((s["limit_a"] as! NSNumber).doubleValue == 16)
        if profile.safeCurrent != nil { #expect((s["safe_a"] as! NSNumber).doubleValue == 10) }
        if profile.timeout != nil { #expect((s["timeout_s"] as! NSNumber).doubleValue == 3) }
        // The write used the function the profile names (16 for Alfen's float32).
        #expect(writes[limitIndex].function == profile.limit.writeFunction)
        if profile.readback != nil { #expect(st.appliedA == 16) }
    }

    @Test func refreshKeepsTheLimitAndSilenceRevertsTheCharger() throws {
        let name = "alfen-ng9xx"
        let peer = try ChargerPeer(profile: chargerPath(name), validity: 3, fallbackA: 6, refuseFC6OnLimit: true)
        defer { peer.stop() }
        let profile = try chargerProfile(name, validity: 3)   // refreshed every 1 s
        let port = peer.port
        let worker = RelayWorker {
            try ModbusChargerRelay(profile: profile, endpoint: .tcp(host: "127.0.0.1", port: port), conversion: .init(stepA: 1),
                                   safeCurrentA: 10, options: .init(responseTimeoutMilliseconds: 500))
        }
        worker.start()
        worker.post(amps: 16)
        // Three validity periods with the relay running and the loop posting: the charger never falls back.
        usleep(300_000)
        for _ in 0..<18 {
            for _ in 0..<5 { usleep(100_000); worker.post(amps: 16) }
            #expect((try peer.state()["applied_a"] as! NSNumber).doubleValue == 16)
        }
        #expect(worker.status.refreshes >= 6, "refreshes: \(worker.status.refreshes)")
        // The relay stops (lmc killed): the charger reverts to the safe current we programmed.
        worker.stop()
        usleep(3_500_000)
        #expect((try peer.state()["applied_a"] as! NSNumber).doubleValue == 10)
    }

    /// Nothing waits on a peer, and nothing outlives a stalled loop: when the control loop stops posting
    /// (hung, not killed), the relay stops refreshing, so the charger's own validity timer reverts it
    /// to the safe current we programmed. Before: the relay thread refreshed the last set point for ever.
    @Test func aStalledControlLoopLetsTheChargerFallBack() throws {
        let name = "alfen-ng9xx"
        let peer = try ChargerPeer(profile: chargerPath(name), validity: 3, fallbackA: 6, refuseFC6OnLimit: true)
        defer { peer.stop() }
        let profile = try chargerProfile(name, validity: 3)
        let port = peer.port
        let worker = RelayWorker(stallAfterSeconds: 0.5) {
            try ModbusChargerRelay(profile: profile, endpoint: .tcp(host: "127.0.0.1", port: port), conversion: .init(stepA: 1),
                                   safeCurrentA: 10, options: .init(responseTimeoutMilliseconds: 500))
        }
        worker.start()
        defer { worker.stop() }
        for _ in 0..<10 { worker.post(amps: 16); usleep(100_000) }
        #expect((try peer.state()["applied_a"] as! NSNumber).doubleValue == 16)
        // The loop stalls: no more posts, the worker thread still runs.
        usleep(4_500_000)
        #expect((try peer.state()["applied_a"] as! NSNumber).doubleValue == 10, "the charger reverted to its safe current")
        #expect(worker.status.lastError?.contains("control loop") == true, "\(worker.status)")
        // The loop comes back: the set point is written again at once.
        worker.post(amps: 16)
        usleep(500_000)
        #expect((try peer.state()["applied_a"] as! NSNumber).doubleValue == 16)
    }

    @Test func aChangeIsWrittenAtOnce() throws {
        let peer = try ChargerPeer(profile: chargerPath("abb-terra-ac"), validity: 60, fallbackA: 6)
        defer { peer.stop() }
        let port = peer.port
        let profile = try chargerProfile("abb-terra-ac")
        let worker = RelayWorker {
            try ModbusChargerRelay(profile: profile, endpoint: .tcp(host: "127.0.0.1", port: port), conversion: .init(stepA: 1), safeCurrentA: 6)
        }
        worker.start()
        defer { worker.stop() }
        worker.post(amps: 16)
        var deadline = Date().addingTimeInterval(5)
        while worker.status.writtenA != 16 && Date() < deadline { usleep(2_000) }
        let t0 = Date()
        worker.post(amps: 10)
        deadline = Date().addingTimeInterval(5)
        while worker.status.writtenA != 10 && Date() < deadline { usleep(1_000) }
        let ms = Date().timeIntervalSince(t0) * 1000
        print("set-point change to register write on loopback: \(Int(ms)) ms")
        #expect(worker.status.writtenA == 10)
        #expect((try peer.state()["limit_a"] as! NSNumber).doubleValue == 10)
        let all = peer.writes(until: { $0.contains { $0.address == 0x4100 && $0.values == [0, 10_000] } })
        #expect(all.contains { $0.address == 0x4100 && $0.values == [0, 10_000] }, "10 A as mA in a u32, high word first: \(all)")
    }

    @Test func aRebootedChargerGetsItsFallbackBeforeItsLimit() throws {
        let name = "alfen-ng9xx"
        let peer = try ChargerPeer(profile: chargerPath(name), validity: 60, fallbackA: 6, refuseFC6OnLimit: true)
        defer { peer.stop() }
        let relay = try ModbusChargerRelay(profile: try chargerProfile(name), endpoint: .tcp(host: "127.0.0.1", port: peer.port),
                                           conversion: .init(stepA: 1), safeCurrentA: 10,
                                           options: .init(responseTimeoutMilliseconds: 500, reconnect: .init(initialMilliseconds: 10)))
        relay.apply(watts: sixteenAmpsW, nowNs: monotonicNow())
        let before = peer.writes(waitingFor: 1210).count
        try peer.reboot()
        // The next attempts see the lost connection, reconnect, and program the fallback first.
        var st = relay.apply(watts: sixteenAmpsW, nowNs: monotonicNow() + 100_000_000_000)
        for _ in 0..<5 where !st.fallbackProgrammed {
            usleep(100_000)
            st = relay.apply(watts: sixteenAmpsW, nowNs: monotonicNow() + 100_000_000_000)
        }
        // The lost connection stays a failure until the charger's readback matches, after its settle time.
        st = relay.apply(watts: sixteenAmpsW, nowNs: monotonicNow() + 103_000_000_000)
        #expect(st.failingSinceNs == nil, "\(st.lastError ?? "")")
        let after = Array(peer.writes(until: { w in w.dropFirst(before).contains { $0.address == 1210 } }).dropFirst(before))
        #expect(after.first?.address == 1212, "safe current first after the reboot: \(after.map(\.address))")
        #expect(after.contains { $0.address == 1210 })
        let s = try peer.state()
        #expect((s["safe_a"] as! NSNumber).doubleValue == 10 && (s["applied_a"] as! NSNumber).doubleValue == 16)
    }

    @Test func aReadbackMismatchIsReportedAsFailing() throws {
        let peer = try ChargerPeer(profile: chargerPath("abb-terra-ac"), validity: 60, fallbackA: 6, clampA: 20)
        defer { peer.stop() }
        let relay = try ModbusChargerRelay(profile: try chargerProfile("abb-terra-ac"), endpoint: .tcp(host: "127.0.0.1", port: peer.port),
                                           conversion: .init(stepA: 1), safeCurrentA: 6)
        let t = monotonicNow()
        #expect(relay.apply(amps: 25, nowNs: t).failingSinceNs == nil, "not judged before the charger has had time to apply it")
        let st = relay.apply(amps: 25, nowNs: t + 3_000_000_000)
        #expect(st.failingSinceNs != nil)
        #expect(st.lastError == "readback: charger applies 20 A, we wrote 25 A")
        // A new value does not clear it: only a readback that matches does, once the charger has had
        // its time to apply it.
        #expect(relay.apply(amps: 16, nowNs: t + 6_000_000_000).failingSinceNs != nil)
        #expect(relay.apply(amps: 16, nowNs: t + 8_100_000_000).failingSinceNs == nil)
    }

    /// A failing readback stays failing until a matching readback. Before: every refresh write restarted
    /// the 2 s settle window and cleared the failure, so with a refresh shorter than the settle time
    /// RELAY_FAILING never rose, and with a longer one it flapped.
    @Test func aMismatchStaysFailingAcrossRefreshes() throws {
        let peer = try ChargerPeer(profile: chargerPath("abb-terra-ac"), validity: 3, fallbackA: 6, clampA: 20)
        defer { peer.stop() }
        let relay = try ModbusChargerRelay(profile: try chargerProfile("abb-terra-ac", validity: 3), endpoint: .tcp(host: "127.0.0.1", port: peer.port),
                                           conversion: .init(stepA: 1), safeCurrentA: 6)
        let t = monotonicNow()
        _ = relay.apply(amps: 25, nowNs: t)
        var failingSince: UInt64?
        var cleared: [Double] = []
        // Every 100 ms for 8 s: the relay refreshes every second (validity 3 s).
        for k in 1...80 {
            let st = relay.apply(amps: 25, nowNs: t + UInt64(k) * 100_000_000)
            if k >= 25 {
                if failingSince == nil { failingSince = st.failingSinceNs }
                if st.failingSinceNs == nil { cleared.append(Double(k) / 10) }
            }
        }
        #expect(failingSince != nil, "the mismatch is reported")
        #expect(cleared.isEmpty, "failing cleared at \(cleared) s without a matching readback")
    }

    /// A limit written to an integer register rounds toward zero: a charger is never told more than the
    /// set point. Before: the codec rounded to nearest (16.7 A became 17 A; 6.55 A in 0.1 A steps 6.6 A).
    @Test func limitsInIntegerRegistersRoundTowardZero() throws {
        let whole = ChargerProfile.Register(address: 0, codec: RegisterCodec(.u16))
        #expect(try whole.encode(amps: 16.7) == [16])
        let tenths = ChargerProfile.Register(address: 0, codec: RegisterCodec(.u16, scale: 0.1))
        #expect(try tenths.encode(amps: 6.55) == [65])
        let milli = ChargerProfile.Register(address: 0, codec: RegisterCodec(.u32), milliamps: true)
        #expect(try milli.encode(amps: 10.0004) == [0, 10_000])
        let float = ChargerProfile.Register(address: 0, codec: RegisterCodec(.f32))
        #expect(try float.decodeAmps(float.encode(amps: 16.7)) == Double(Float(16.7)))
    }

    /// An RTU charger that reboots loses its fallback programming without any connection loss to tell
    /// us. Before: the relay never programmed it again, so after the reboot the charger would fall back to
    /// its factory current, not our safe one. Now the relay reads its safe current back every so often
    /// and programs the fallback again when it differs.
    @Test func aChargerThatForgotItsFallbackIsProgrammedAgain() throws {
        let name = "alfen-ng9xx"
        let peer = try ChargerPeer(profile: chargerPath(name), validity: 60, fallbackA: 6, refuseFC6OnLimit: true)
        defer { peer.stop() }
        let relay = try ModbusChargerRelay(profile: try chargerProfile(name), endpoint: .tcp(host: "127.0.0.1", port: peer.port),
                                           conversion: .init(stepA: 1), safeCurrentA: 10)
        let t = monotonicNow()
        relay.apply(amps: 16, nowNs: t)
        #expect((try peer.state()["safe_a"] as! NSNumber).doubleValue == 10)
        peer.forget()
        #expect((try peer.state()["safe_a"] as? NSNumber)?.doubleValue != 10, "the peer forgot")
        for k in 1...40 { relay.apply(amps: 16, nowNs: t + UInt64(k) * 1_000_000_000) }
        #expect((try peer.state()["safe_a"] as? NSNumber)?.doubleValue == 10, "the fallback is programmed again")
        #expect((try peer.state()["limit_a"] as? NSNumber)?.doubleValue == 16)
    }

    @Test func aDeadChargerIsFailingSinceTheFirstAttempt() throws {
        let relay = try ModbusChargerRelay(profile: try chargerProfile("keba-p30"), endpoint: .tcp(host: "127.0.0.1", port: 1),
                                           conversion: .init(), safeCurrentA: 6)
        let t = monotonicNow()
        _ = relay.apply(watts: sixteenAmpsW, nowNs: t)
        let st = relay.apply(watts: sixteenAmpsW, nowNs: t + 1_000_000_000)
        #expect(st.failingSinceNs == t)
        #expect(st.lastError!.contains("connection refused"))
    }
}

@Suite struct CurrentConversionTests {
    let profile: ChargerProfile
    /// A missing or broken profile fails each test here, not the whole test process.
    init() throws { profile = try chargerProfile("alfen-ng9xx") }

    @Test func wattsToAmpsPerPhaseRoundedDown() {
        let c = CurrentConversion(phases: 3, phaseVoltage: 230, powerFactor: 1, stepA: 1)
        #expect(c.amps(forWatts: 16 * 690 + 600, profile: profile) == 16)
        #expect(c.amps(forWatts: 100_000, profile: profile) == 32)      // the charger's maximum
        #expect(CurrentConversion(phases: 1, stepA: 0.1).amps(forWatts: 2_300, profile: profile) == 10)
    }

    @Test func belowTheMinimumMeansStop() {
        let c = CurrentConversion(stepA: 1)
        #expect(c.amps(forWatts: 5 * 690, profile: profile) == 0)
        #expect(c.amps(forWatts: 6 * 690, profile: profile) == 6)
        #expect(c.amps(forWatts: 0, profile: profile) == 0)
    }

    @Test func profileErrorsNameTheKey() {
        let bad = """
        description = "x"
        [limit]
        address = 10
        type = "f32"
        function = 6
        [readback]
        adress = 12
        """
        guard case .failure(let e) = ChargerProfiles.parse(bad, name: "x") else { Issue.record("accepted"); return }
        #expect(e.description.contains("limit.function: function 6 writes one register; a f32 needs function 16"))
        #expect(e.description.contains("readback.adress: unknown key (did you mean address?)"))
    }
}
