import PropertyBased
import Testing
@testable import Headroom

/// A plain MP for tables: limit 100, release zone 90, trigger 80, margin 5 (target 95), gain 1 W per
/// unit, no filter, so each row's value is what the decision sees.
func tableMP(trip: Double? = nil, tripDelay: Double = 10) -> MeasurementPointConfig {
    MeasurementPointConfig(id: "mp", kind: .apparentPower, sensitivity: 1,
                           upper: .init(trip: trip, tripDelay: tripDelay, limit: 100, releaseZone: 90, releaseTrigger: 80),
                           regulateMargin: 5, rideThrough: 2, regulateInterval: 5, releaseInterval: 10, rampW: 10,
                           filterTimeConstant: 0)
}

struct Row: CustomStringConvertible {
    var t: Double, value: Double?, base: Double
    var state: MPState, limit: Double?
    var description: String { "t=\(t) v=\(value.map { "\($0)" } ?? "nil")" }
}

/// The rows' base is metered (the site's import, or a set point the site draws): the tables are about
/// the state machine; what an unmetered base changes has tests of its own.
func play(_ config: MeasurementPointConfig, _ rows: [Row], ceiling: Double = 200) {
    var mp = MeasurementPoint(config)
    for r in rows {
        mp.update(now: r.t, phases: r.value.map { [$0] }, baseW: r.base, baseMetered: true, ceilingW: ceiling)
        #expect(mp.state == r.state, "\(r): state \(mp.state), expected \(r.state) — \(mp.reason)")
        #expect(mp.limitW == r.limit, "\(r): limit \(String(describing: mp.limitW)), expected \(String(describing: r.limit))")
    }
}

@Suite struct MeasurementPointTests {
    @Test func regulateReleaseAndTheDeadBand() {
        play(tableMP(), [
            Row(t: 0, value: 95, base: 150, state: .holding, limit: nil),       // dead band
            Row(t: 1, value: 105, base: 150, state: .riding, limit: nil),       // beyond: ride-through starts
            Row(t: 2, value: 105, base: 150, state: .riding, limit: nil),
            Row(t: 3, value: 105, base: 150, state: .regulating, limit: 140),   // 150 − (105 − 95)
            Row(t: 4, value: 103, base: 150, state: .regulating, limit: 140),   // interval not yet elapsed
            Row(t: 8, value: 102, base: 150, state: .regulating, limit: 133),   // repeat: 140 − 7
            Row(t: 9, value: 95, base: 133, state: .holding, limit: 133),       // dead band holds
            Row(t: 10, value: 85, base: 133, state: .holding, limit: 133),      // release zone, not triggered
            Row(t: 11, value: 75, base: 133, state: .releasing, limit: 133),    // triggered; interval since 9
            Row(t: 19, value: 76, base: 133, state: .releasing, limit: 143),    // + ramp 10
            Row(t: 25, value: 85, base: 143, state: .releasing, limit: 143),    // still in release zone
            Row(t: 29, value: 88, base: 143, state: .releasing, limit: 145),    // + the room to the release zone, 90 − 88
            Row(t: 30, value: 92, base: 145, state: .holding, limit: 145),      // left the release zone
        ])
    }

    @Test func aTransientShorterThanTheRideThroughDoesNothing() {
        play(tableMP(), [
            Row(t: 0, value: 120, base: 150, state: .riding, limit: nil),
            Row(t: 1.5, value: 120, base: 150, state: .riding, limit: nil),
            Row(t: 1.9, value: 90, base: 150, state: .holding, limit: nil),
            Row(t: 3, value: 120, base: 150, state: .riding, limit: nil),       // the clock restarts
        ])
    }

    @Test func releaseRunsToTheCeilingAndStopsRestricting() {
        play(tableMP(), [
            Row(t: 0, value: 110, base: 180, state: .riding, limit: nil),
            Row(t: 2, value: 110, base: 180, state: .regulating, limit: 165),
            Row(t: 3, value: 50, base: 165, state: .releasing, limit: 165),     // waits a release interval
            Row(t: 12, value: 50, base: 165, state: .releasing, limit: 175),
            Row(t: 22, value: 50, base: 175, state: .releasing, limit: 185),
            Row(t: 32, value: 50, base: 185, state: .releasing, limit: 195),
            Row(t: 42, value: 50, base: 195, state: .releasing, limit: nil),    // ≥ ceiling 200: released
            Row(t: 53, value: 50, base: 200, state: .holding, limit: nil),
        ])
    }

    @Test func directModeTakesTheReductionFromTheSiteImport() {
        // The site imports 60 while its set point is higher: the reduction starts from what it uses.
        play(tableMP(), [
            Row(t: 0, value: 110, base: 60, state: .riding, limit: nil),
            Row(t: 2, value: 110, base: 60, state: .regulating, limit: 45),
        ])
    }

    @Test func lowVoltageCurtailsLikeOverCurrent() {
        // 400 V feeder end, 230 V nominal phase: lower limit 216.2 V (−6 %), 1 V per 10 kW of site import.
        let cfg = MeasurementPointConfig(id: "v_end", kind: .voltage, sensitivity: -0.0001,
                                         lower: .init(limit: 216.2, releaseZone: 218, releaseTrigger: 220),
                                         regulateMargin: 1, rideThrough: 0, regulateInterval: 5, releaseInterval: 10,
                                         rampW: 5_000, filterTimeConstant: 0)
        var mp = MeasurementPoint(cfg)
        mp.update(now: 0, phases: [229, 215, 226], baseW: 150_000, ceilingW: 250_000)  // the worst phase governs
        #expect(mp.state == .regulating)
        #expect(abs(mp.limitW! - 128_000) < 1e-6)                                        // (217.2 − 215) V / 0.0001
        mp.update(now: 1, phases: [229, 217, 226], baseW: 128_000, ceilingW: 250_000)
        #expect(mp.state == .holding)
        mp.update(now: 11, phases: [229, 221, 226], baseW: 128_000, ceilingW: 250_000)
        #expect(mp.state == .releasing && abs(mp.limitW! - 133_000) < 1e-6)
    }

    @Test func tripAfterItsDelayOnly() {
        var mp = MeasurementPoint(tableMP(trip: 120, tripDelay: 10))
        for t in stride(from: 0.0, through: 9.5, by: 0.5) {
            mp.update(now: t, phases: [125], baseW: 150, ceilingW: 200)
            #expect(!mp.tripRequested, "t=\(t)")
        }
        mp.update(now: 10, phases: [125], baseW: 150, ceilingW: 200)
        #expect(mp.tripRequested)
        mp.update(now: 11, phases: [110], baseW: 150, ceilingW: 200)
        #expect(!mp.tripRequested)
    }

    /// After a hold, set points the sites may not draw yet (a start with the chargers idle) are the base
    /// in incremental mode: the value does not show them, so what it measures is not room until a release
    /// interval from the hold's start has passed.
    @Test func afterAHoldAnUnmeteredBaseWaitsAReleaseIntervalFromTheHoldsStart() {
        var mp = MeasurementPoint(tableMP())
        mp.update(now: 0, phases: [40], baseW: 50, ceilingW: 200)   // the site draws nothing of its 50 yet
        mp.hold(atTotal: 50, since: 0)
        mp.update(now: 1, phases: [45], baseW: 50, ceilingW: 200)
        mp.hold(atTotal: 50, since: 0)
        mp.update(now: 5, phases: [70], baseW: 50, ceilingW: 200)   // recovered; the site still rising
        #expect(mp.limitW == 50 && mp.state == .releasing, "\(mp.reason)")
        #expect(mp.reason.contains("5 s more for the sites to settle"), "\(mp.reason)")
        mp.update(now: 10, phases: [80], baseW: 50, ceilingW: 200)  // settled: 10 of room up to the zone
        #expect(mp.limitW == 60, "\(mp.reason)")
        // A hold that began long ago has settled: the release on recovery is due at once.
        mp.hold(atTotal: 60, since: 10)
        mp.update(now: 30, phases: [75], baseW: 60, ceilingW: 200)
        #expect(mp.limitW == 70, "\(mp.reason)")
    }

    /// A metered base (the site's import) needs no settling, and a release adds the room to the base as
    /// seen through the value's filter: a site still rising is not counted as room as well as in the base.
    @Test func aMeteredBaseIsSeenThroughTheValuesFilter() {
        var c = tableMP()
        c.filterTimeConstant = 4
        c.rampW = .infinity
        var mp = MeasurementPoint(c)
        // Background 30; the site rises 0 → 20 → 40 while the value follows through its filter.
        mp.update(now: 0, phases: [30], baseW: 0, baseMetered: true, ceilingW: 200)
        mp.hold(atTotal: 50, since: 0)
        mp.update(now: 1, phases: [50], baseW: 20, baseMetered: true, ceilingW: 200)
        // Room up to the zone is 90 − 30 = 60 of site import, whatever the filter's lag (the filtered
        // value 35 is 5 of site import behind; the raw base would have released to 20 + 55 = 75).
        #expect(mp.state == .releasing && mp.limitW == 60, "\(String(describing: mp.limitW)) \(mp.reason)")
    }

    /// An unmetered base (the set point) the site does not draw: cuts spent in the gap do not show at the
    /// constraint. A regulate interval after them, the MP takes the sites to firm and says why.
    @Test func cutsThatDoNotShowTakeAnUnmeteredSiteToFirm() {
        var mp = MeasurementPoint(tableMP())
        mp.update(now: 0, phases: [110], baseW: 180, ceilingW: 200)
        mp.update(now: 2, phases: [110], baseW: 180, ceilingW: 200)
        #expect(mp.limitW == 165)                                  // 180 − (110 − 95)
        mp.update(now: 7, phases: [109], baseW: 165, ceilingW: 200)    // 1 of the 15 shows
        #expect(mp.limitW == 0, "\(mp.reason)")                      // to firm (the controller clamps)
        #expect(mp.reason.contains("did not show, the sites draw less than their set points: to firm"), "\(mp.reason)")
        // A cut that shows is repeated by the measured excess, as before.
        var seen = MeasurementPoint(tableMP())
        seen.update(now: 0, phases: [110], baseW: 180, ceilingW: 200)
        seen.update(now: 2, phases: [110], baseW: 180, ceilingW: 200)
        seen.update(now: 7, phases: [101], baseW: 165, ceilingW: 200)  // 9 of the 15 show
        #expect(seen.limitW == 159, "\(seen.reason)")              // 165 − (101 − 95)
    }

    @Test func blindHoldsItsLimitAndSaysSo() {
        var mp = MeasurementPoint(tableMP())
        mp.update(now: 0, phases: [110], baseW: 150, ceilingW: 200)
        mp.update(now: 2, phases: [110], baseW: 150, ceilingW: 200)
        #expect(mp.limitW == 135)
        mp.update(now: 3, phases: nil, baseW: 150, ceilingW: 200)
        #expect(mp.state == .blind && mp.limitW == 135)
        mp.update(now: 4, phases: [.nan], baseW: 150, ceilingW: 200)
        #expect(mp.state == .blind)
    }

    @Test func invalidThresholdsAreNamed() {
        var bad = tableMP()
        bad.upper = .init(trip: 90, limit: 100, releaseZone: 110, releaseTrigger: 80)
        bad.sensitivity = -1
        let e = bad.validate()
        #expect(e.contains { $0.contains("mp.upper: need limit > release_zone > release_trigger") })
        #expect(e.contains { $0.contains("mp.upper.trip 90.0 must be above the limit 100.0") })
        #expect(e.contains { $0.contains("sensitivity -1.0 must be positive") })
    }

    // MARK: Properties

    @Test func aReleaseStepNeverExceedsTheRamp() async {
        await propertyCheck(count: 200, input: Gen.double(in: 0...130).array(of: 5...60)) { values in
            var mp = MeasurementPoint(tableMP())
            var previous: Double? = nil
            for (i, v) in values.enumerated() {
                mp.update(now: Double(i) * 3, phases: [v], baseW: 150, ceilingW: 200)
                if let p = previous, let l = mp.limitW, l > p { #expect(l - p <= 10 + 1e-9) }
                previous = mp.limitW
            }
        }
    }

    @Test func regulationStartsOnTheFirstTickAfterTheRideThrough() async {
        await propertyCheck(count: 200, input: Gen.double(in: 100.1...200), Gen.double(in: 0.1...1.0)) { v, dt in
            var mp = MeasurementPoint(tableMP())
            var t = 0.0
            while mp.state != .regulating {
                mp.update(now: t, phases: [v], baseW: 150, ceilingW: 200)
                if mp.state == .regulating { #expect(t >= 2 && t < 2 + dt + 1e-9, "t=\(t) dt=\(dt)") }
                t += dt
            }
            #expect(mp.limitW! < 150)
        }
    }
}
