import Testing
import ControlCycle
import Headroom

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
}
