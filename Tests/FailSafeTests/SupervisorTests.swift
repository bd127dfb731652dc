import PropertyBased
import Testing
@testable import FailSafe

/// One fault row of docs/design.md §4 each, at a 100 ms period: mode, set point and breaker commands over
/// time. The site asks for 250 kW; firm (the safe set point) is 150 kW.
struct Rig {
    var sup: Supervisor
    var t = 0.0
    let period = 0.1
    var meters: [MeterStatus] = [MeterStatus(id: "trafo", lastGoodAt: nil, goodNow: false)]
    var site = SiteInputs(id: "hub", requestedW: 250_000, safe: SafeSetPoint(firmW: 150_000), pocImportW: 150_000, breakerClosed: true)
    var tripRequests: [String] = []
    var heartbeat: Double?
    var log: [SupervisorOutput] = []

    init(_ config: SupervisorConfig = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0)) {
        sup = Supervisor(config)
    }

    /// Advances `seconds`, with the meter good (replying every tick) unless `meterAlive` is false.
    @discardableResult
    mutating func run(_ seconds: Double, meterAlive: Bool = true, cycleOnTime: Bool = true, reset: Bool = false) -> SupervisorOutput {
        let end = t + seconds
        var out: SupervisorOutput!
        repeat {
            for i in meters.indices where meterAlive && meters[i].id != "dead" {
                meters[i].lastGoodAt = t
                meters[i].goodNow = true
            }
            if !meterAlive { for i in meters.indices { meters[i].goodNow = false } }
            out = sup.tick(SupervisorInputs(now: t, meters: meters, sites: [site], tripRequests: tripRequests,
                                            upstreamHeartbeatAt: heartbeat, cycleOnTime: cycleOnTime, resetLockout: reset))
            log.append(out)
            t += period
        } while t < end - 1e-9
        return out
    }

    /// Seconds from now until `condition` holds (nil if not within `limit`).
    mutating func timeUntil(limit: Double = 120, meterAlive: Bool = true, _ condition: (SupervisorOutput) -> Bool) -> Double? {
        let start = t
        while t - start <= limit {
            let o = run(period, meterAlive: meterAlive)
            if condition(o) { return t - period - start }
        }
        return nil
    }
}

@Suite struct SupervisorTests {
    @Test func startupHoldsTheSafeSetPointUntilEnoughGoodSamplesThenRamps() {
        var r = Rig()
        var o = r.run(0.5)                                   // 5 good samples
        #expect(o.mode == .startup && o.setPoints["hub"] == 150_000)
        #expect(o.reason.contains("consecutive good samples"))
        o = r.run(0.6)                                       // 11 good samples
        #expect(o.mode == .normal)
        #expect(o.setPoints["hub"]! > 150_000 && o.setPoints["hub"]! < 151_000)   // ramping from safe
        o = r.run(60)
        #expect(o.setPoints["hub"] == 250_000)
    }

    @Test func powerRestorationWaitsItsSeededDelay() {
        let cfg = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 10...60, boxSeed: 42)
        let delay = cfg.startupDelay
        #expect((10...60).contains(delay))
        #expect(SupervisorConfig(startupDelayWindow: 10...60, boxSeed: 43).startupDelay != delay, "boxes differ")
        var r = Rig(cfg)
        let t = r.timeUntil { $0.mode == .normal }!
        #expect(abs(t - (0.9 + delay)) <= 0.15, "left start-up after \(t) s, delay \(delay) s")
        #expect(r.log.dropLast().allSatisfy { $0.setPoints["hub"] == 150_000 })
    }

    @Test func meterLostGoesToTheSafeSetPointWithinTheBlindTime() {
        var r = Rig()
        r.run(70)
        #expect(r.log.last!.setPoints["hub"] == 250_000)
        let t = r.timeUntil(meterAlive: false) { $0.mode == .failsafe }!
        #expect(t > 0.9 && t <= 1.1, "blind after \(t) s")
        #expect(r.log.last!.setPoints["hub"] == 150_000)
        #expect(r.log.last!.reason.contains("blind: trafo lost"))
        // Recovery: N good samples, then a ramp from safe, not a jump.
        let back = r.timeUntil { $0.mode == .normal }!
        #expect(back >= 0.85 && back <= 1.05, "10 good samples at 100 ms: \(back) s")
        #expect(r.log.last!.setPoints["hub"]! < 151_000)
    }

    @Test func aFrozenOrImplausibleMeterIsTreatedAsLost() {
        // The driver marks frozen/NaN/out-of-range samples bad: no good sample, so lastGoodAt ages.
        var r = Rig()
        r.run(70)
        var frozenSince = r.t
        var out: SupervisorOutput!
        for _ in 0..<15 {
            r.meters[0].goodNow = false
            out = r.sup.tick(SupervisorInputs(now: r.t, meters: r.meters, sites: [r.site]))
            if out.mode == .failsafe { break }
            r.t += 0.1
        }
        frozenSince = r.t - frozenSince
        #expect(out.mode == .failsafe && out.setPoints["hub"] == 150_000)
        #expect(frozenSince <= 1.1)
    }

    @Test func blindUsesTheTCCProfileWhenConfigured() {
        var tcc = [Double](repeating: 150_000, count: 48)
        tcc[4] = 220_000                                     // 02:00–02:30, planning allows more
        var r = Rig()
        r.site.safe = SafeSetPoint(firmW: 150_000, tccW: tcc)
        r.run(70)
        r.run(2, meterAlive: false)
        let o = r.sup.tick(SupervisorInputs(now: r.t, secondsOfDay: 2 * 3600 + 60, meters: r.meters, sites: [r.site]))
        #expect(o.mode == .failsafe && o.setPoints["hub"] == 220_000)
    }

    @Test func oneOfTwoRedundantMetersLostIsDegradedNotBlind() {
        var r = Rig()
        r.meters = [MeterStatus(id: "ct_sub", group: "trafo", lastGoodAt: nil, goodNow: false),
                    MeterStatus(id: "dead", group: "trafo", lastGoodAt: nil, goodNow: false)]
        r.meters[1].lastGoodAt = 0
        let o = r.run(70)
        #expect(o.mode == .degraded)
        #expect(o.reason.contains("dead lost, using ct_sub"))
        #expect(o.alarms.contains { $0.code == "METER_LOST" && $0.subject == "dead" })
        #expect(o.setPoints["hub"] == 250_000)
    }

    @Test func aFailingRelayRaisesAnAlarmAndNothingElse() {
        var r = Rig()
        r.run(70)
        r.site.relayFailingSince = r.t
        var o = r.run(4)
        #expect(!o.alarms.contains { $0.code == "RELAY_FAILING" })
        o = r.run(2)
        #expect(o.alarms.contains { $0.code == "RELAY_FAILING" && $0.message.contains("fallback holds") })
        #expect(o.mode == .normal && o.setPoints["hub"] == 250_000)
    }

    @Test func nonResponseTripsAfterTheResponseTimeAndTheContactConfirms() {
        var cfg = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0, responseTime: 30, autoCloseDelay: nil)
        cfg.nonResponseToleranceW = 10_000
        var r = Rig(cfg)
        r.run(70)
        r.site.requestedW = 180_000
        r.site.pocImportW = 200_000                          // 20 kW above, tolerance 10 kW
        var o = r.run(29.9)
        #expect(o.mode == .nonResponse && o.breaker.isEmpty)
        let t = r.timeUntil { $0.breaker["hub"] == .trip }!
        #expect(t <= 0.2)
        #expect(r.log.last!.reason.contains("non-response: imports 200 kW against 180 kW"))
        r.site.breakerClosed = false                         // the aux contact confirms
        r.site.pocImportW = 0
        o = r.run(0.2)
        #expect(o.mode == .tripped && o.setPoints["hub"] == 150_000)
        #expect(!o.alarms.contains { $0.code == "TRIP_FAILED" })
    }

    @Test func anUnconfirmedTripIsATripFailedAlarmAndIsRetried() {
        let cfg = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0, responseTime: 5, breakerConfirmTime: 1)
        var r = Rig(cfg)
        r.run(70)
        r.site.pocImportW = 280_000
        r.run(5.2)
        #expect(r.log.contains { $0.breaker["hub"] == .trip })
        let o = r.run(1.2)                                   // the contact stays closed
        #expect(o.alarms.contains { $0.code == "TRIP_FAILED" && $0.subject == "hub" })
        #expect(r.log.suffix(12).filter { $0.breaker["hub"] == .trip }.count >= 1, "trip retried")
    }

    @Test func lastResortTripOnTheConstraintTripsTheLatestSiteFirst() {
        var r = Rig()
        r.run(70)
        let early = SiteInputs(id: "early", requestedW: 100_000, safe: SafeSetPoint(firmW: 50_000), breakerClosed: true, connectionOrder: 1)
        var late = SiteInputs(id: "late", requestedW: 100_000, safe: SafeSetPoint(firmW: 50_000), breakerClosed: true, connectionOrder: 2)
        var o = r.sup.tick(SupervisorInputs(now: r.t, meters: r.meters, sites: [early, late], tripRequests: ["trafo"]))
        #expect(o.breaker == ["late": .trip])
        late.breakerClosed = false
        r.t += 0.1
        r.meters[0].lastGoodAt = r.t
        o = r.sup.tick(SupervisorInputs(now: r.t, meters: r.meters, sites: [early, late], tripRequests: []))
        #expect(o.breaker.isEmpty)                           // the request went away: one trip was enough
        #expect(o.mode == .tripped)
    }

    @Test func repeatedTripsLockOutUntilAnEngineerResets() {
        let cfg = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0, responseTime: 2, breakerConfirmTime: 0.5,
                                   autoCloseDelay: 10, maxTrips: 2, tripWindow: 3600)
        var r = Rig(cfg)
        r.run(70)
        var closes = 0
        for _ in 0..<2 {
            r.site.pocImportW = 280_000                      // does not comply
            _ = r.timeUntil { $0.breaker["hub"] == .trip }
            r.site.breakerClosed = false
            r.site.pocImportW = 0
            if r.timeUntil(limit: 30, { $0.breaker["hub"] == .close }) != nil {
                closes += 1
                r.site.breakerClosed = true
                r.run(1)
            }
        }
        #expect(closes == 1, "auto-close once, then lockout")
        var o = r.run(60)
        #expect(o.mode == .lockout && o.reason.contains("run lmc reset-lockout"))
        #expect(o.alarms.contains { $0.code == "LOCKOUT" })
        #expect(!r.log.suffix(600).contains { $0.breaker["hub"] == .close })
        o = r.run(0.1, reset: true)
        let t = r.timeUntil { $0.breaker["hub"] == .close }
        #expect(t != nil && t! <= 0.2, "closes after the reset")
    }

    /// Issue 16, item 10: the breaker memory outlives the process. A trip before a restart counts
    /// towards max_trips after it; a lockout stays one, whatever the contact reads.
    @Test func theBreakerMemoryCarriesTripsAndALockoutAcrossARestart() {
        let cfg = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0, responseTime: 2, breakerConfirmTime: 0.5,
                                   autoCloseDelay: 10, maxTrips: 2, tripWindow: 3600)
        var r = Rig(cfg)
        r.run(70)
        r.site.pocImportW = 280_000
        _ = r.timeUntil { $0.breaker["hub"] == .trip }
        r.site.breakerClosed = false
        r.site.pocImportW = 0
        r.run(2)
        let memory = r.sup.breakerMemory(now: r.t)
        #expect(memory["hub"]?.state == .open && memory["hub"]?.tripAges.count == 1, "\(memory)")

        // A new process (a new monotonic clock): the trip is one of two allowed; the open stays open.
        var again = Rig(cfg)
        again.t = 5_000
        again.sup.restore(memory, now: again.t)
        again.site.breakerClosed = false
        var o = again.run(70)
        #expect(o.mode == .tripped, "the open trip is kept: \(o.reason)")
        again.site.breakerClosed = true
        again.run(2)
        again.site.pocImportW = 280_000
        _ = again.timeUntil { $0.breaker["hub"] == .trip }
        again.site.breakerClosed = false
        again.site.pocImportW = 0
        o = again.run(30)
        #expect(o.mode == .lockout, "the second trip within the window locks out: \(o.reason)")

        // And the lockout itself survives the next restart, even with the contact reading closed.
        var third = Rig(cfg)
        third.sup.restore(again.sup.breakerMemory(now: again.t), now: 0)
        third.site.breakerClosed = true
        o = third.run(80)
        #expect(o.mode == .lockout && o.setPoints["hub"] == 150_000, "\(o.reason)")
        #expect(!third.log.contains { $0.breaker["hub"] == .close })
    }

    @Test func upstreamHeartbeatLapseIsDeaf() {
        let cfg = SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0, upstreamHeartbeatTimeout: 5)
        var r = Rig(cfg)
        r.heartbeat = 0
        for _ in 0..<60 { r.heartbeat = r.t; r.run(1) }
        #expect(r.log.last!.mode == .normal)
        _ = r.timeUntil { $0.mode == .failsafe }!
        let sinceHeartbeat = r.t - 0.1 - r.heartbeat!
        #expect(sinceHeartbeat > 5 && sinceHeartbeat <= 5.15, "deaf \(sinceHeartbeat) s after the last heartbeat")
        #expect(r.log.last!.reason.contains("upstream heartbeat lapsed"))
        #expect(r.log.last!.setPoints["hub"] == 150_000)
    }

    @Test func aLateCycleSendsNoWatchdogPing() {
        var r = Rig()
        #expect(r.run(0.1).watchdogPing)
        #expect(!r.run(0.1, cycleOnTime: false).watchdogPing)
    }

    // MARK: Properties

    @Test func whileBlindTheSetPointIsNeverAboveTheSafeOne() async {
        await propertyCheck(count: 100, input: Gen.bool.array(of: 10...400), Gen.double(in: 0...400_000)) { alive, requested in
            var r = Rig()
            r.site.requestedW = requested
            for a in alive {
                let o = r.run(0.1, meterAlive: a)
                let lastGood = r.meters[0].lastGoodAt
                let blind = lastGood.map { r.t - 0.1 - $0 > 1 } ?? true
                if blind { #expect(o.setPoints["hub"]! <= 150_000, "t=\(r.t) \(o.mode)") }
                if o.mode == .startup || o.mode == .failsafe { #expect(o.setPoints["hub"]! <= 150_000) }
            }
        }
    }
}

extension SupervisorTests {
    @Test func aTestTripTripsAndSaysWho() {
        var r = Rig(SupervisorConfig(goodSamplesToRecover: 10, startupDelayWindow: 0...0, autoCloseDelay: nil))
        r.run(70)
        let o = r.sup.tick(SupervisorInputs(now: r.t, meters: r.meters.map { var m = $0; m.lastGoodAt = r.t; return m }, sites: [r.site],
                                            manualTrips: ["hub": "engineer"]))
        #expect(o.breaker == ["hub": .trip])
        #expect(o.reason.contains("test trip by engineer"))
    }
}
