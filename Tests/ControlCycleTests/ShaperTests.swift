import Testing
import ControlCycle
import Headroom

/// The one place a set point becomes what a charger takes.
@Suite struct ShaperTests {
    let amps = ShaperConfig(unit: .ampsPerPhase(phases: 3, phaseVoltage: 230, powerFactor: 1), quantum: 1, hysteresis: 0.5)

    @Test func wholeAmpsRoundedDownWithoutFlapping() {
        var s = Shaper(amps)
        #expect(s.shape(watts: 200_000) == 289)   // 200 kW / (3 × 230 V) = 289.9 A, rounded down
        // A limit wobbling around the 290 A boundary does not make the charger flap.
        var sent = Set<Double>()
        for w in [200_100.0, 199_900, 200_150, 199_950, 200_200] { sent.insert(s.shape(watts: w)) }
        #expect(sent == [289])
    }

    @Test func holdsAConstantAndRoundsDecreasesDown() {
        var s = Shaper(ShaperConfig(unit: .kW, quantum: 1, hysteresis: 0.5))
        #expect(s.shape(watts: 16_700) == 16)
        #expect(s.shape(watts: 17_400) == 16)   // not past 17.5
        #expect(s.shape(watts: 17_500) == 17)
        #expect(s.shape(watts: 16_990) == 16)   // decreases at once
        for _ in 0..<10 { #expect(s.shape(watts: 16_990) == 16) }
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
