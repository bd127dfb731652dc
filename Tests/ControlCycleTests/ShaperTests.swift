import Testing
import ControlCycle
import Headroom
import FailSafe

/// The one place a set point becomes what a charger takes.
@Suite struct ShaperTests {
    let amps = ShaperConfig(unit: .ampsPerPhase(phases: 3, phaseVoltage: 230, powerFactor: 1), quantum: 1, hysteresis: 0.5)

    @Test func wholeAmpsRoundedDownWithoutFlapping() {
        var s = Shaper(amps)
        #expect(s.shape(watts: 200_000) == 289)   // 200 kW / (3 × 230 V) = 289.9 A, rounded down
        // A limit wobbling around the 290 A boundary changes the charger's current at most once.
        var outputs: [Double] = []
        for w in [200_100.0, 199_900, 200_150, 199_950, 200_200, 199_980, 200_250] { outputs.append(s.shape(watts: w)) }
        let changes = zip([289] + outputs, outputs).filter { $0 != $1 }.count
        #expect(changes <= 2 && outputs.suffix(4).allSatisfy { $0 == 289 }, "\(outputs)")
    }

    @Test func aSlowRiseReachesTheTopStep() {
        // The recovery ramp adds 0.2 kW a cycle (0.29 A): every step passes, up to 362 A at rated.
        var s = Shaper(amps)
        var w = 150_000.0, last = 0.0
        while w < 250_000 { last = s.shape(watts: w); w += 200 }
        last = s.shape(watts: 250_000)
        #expect(last == 362)
    }

    @Test func holdsAConstantAndRoundsDecreasesDown() {
        var s = Shaper(ShaperConfig(unit: .kW, quantum: 1, hysteresis: 0.5))
        #expect(s.shape(watts: 17_700) == 17)
        #expect(s.shape(watts: 16_990) == 16)   // decreases at once
        #expect(s.shape(watts: 17_400) == 16)   // after a decrease: not past 17.5
        #expect(s.shape(watts: 17_500) == 17)
        for _ in 0..<10 { #expect(s.shape(watts: 17_200) == 17) }
    }

    @Test func belowTheChargersMinimumMeansStopAndTheMaximumBounds() {
        var s = Shaper(ShaperConfig(unit: .ampsPerPhase(phases: 3, phaseVoltage: 230, powerFactor: 1), quantum: 1, minimum: 6, maximum: 400))
        #expect(s.shape(watts: 5 * 690) == 0)
        #expect(s.shape(watts: 500 * 690) == 400)
        #expect(s.shape(watts: .nan) == 0)
        #expect(s.shape(watts: -1) == 0)
    }

    @Test func sentNeverAboveTheSetPoint() {
        let cfg = ShaperConfig(unit: .ampsPerPhase(phases: 3, phaseVoltage: 230, powerFactor: 0.95), quantum: 1)
        var s = Shaper(cfg)
        var w = 150_000.0
        for i in 0..<2_000 {
            w = 150_000 + Double((i * 7919) % 100_000)
            let v = s.shape(watts: w)
            #expect(cfg.unit.toWatts(v) <= w + 1e-6, "\(v) A for \(w) W")
        }
    }

    /// The charger's own fallback never exceeds the firm capacity in kVA, whatever the power factor the
    /// set point is converted with. Before: 150 kW at pf 0.9 became 241 A = 166 kVA of safe current.
    @Test func theSafeCurrentNeverExceedsTheFirmKVA() throws {
        var cfg = ExampleSite.cycleConfig()
        cfg.shapers[ExampleSite.siteID] = ShaperConfig(unit: .ampsPerPhase(phases: 3, phaseVoltage: 230, powerFactor: 0.9), quantum: 1)
        let cycle = try ControlCycle(cfg)
        #expect(cycle.chargerFallback(site: ExampleSite.siteID) == 217)   // 150 kVA / 690 V, rounded down
    }
}

/// `breakers.state`: what it keeps and how it reads back (issue 16, item 10).
@Suite struct BreakerStateFileTests {
    @Test func aLockoutAndTripsReadBackAsTheyWereWritten() {
        let memory: [String: BreakerMemory] = [
            "hub": BreakerMemory(state: .lockout, reason: "2 trips within 3600 s;\tlast: non-response", tripAges: [100, 2_000]),
            "depot": BreakerMemory(state: nil, tripAges: [30]),
        ]
        let text = BreakerStateFile.encode(memory, wallSeconds: 1_800_000_000)
        #expect(text.contains("hub\tlockout\t2 trips within 3600 s; last: non-response\n"), "\(text)")
        #expect(text.contains("hub\ttrip\t1799999900.0\n"))
        // Read back a minute later: the same facts, one minute older.
        let (back, problems) = BreakerStateFile.decode(text, wallSeconds: 1_800_000_060)
        #expect(problems.isEmpty)
        #expect(back["hub"]?.state == .lockout && back["hub"]?.reason == "2 trips within 3600 s; last: non-response")
        #expect(back["hub"]?.tripAges.sorted() == [160, 2_060])
        #expect(back["depot"]?.state == nil && back["depot"]?.tripAges == [90])
    }

    @Test func badLinesAreLeftOutAndNamedAndAFutureTripCountsAsNow() {
        let (m, problems) = BreakerStateFile.decode("hub\tlockout\tx\nhub trip 5\nhub\ttrip\tsoon\nhub\tbroken\ty\nhub\ttrip\t9999999999\n", wallSeconds: 1_800_000_000)
        #expect(m["hub"]?.state == .lockout && m["hub"]?.tripAges == [0])
        #expect(problems == ["line 2: not 'site<TAB>fact<TAB>value'", "line 3: trip time 'soon' is not a number",
                             "line 4: 'broken' is not lockout, open, tripping or trip"], "\(problems)")
    }
}
