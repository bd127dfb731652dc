import PropertyBased
import Testing
@testable import Headroom

/// A site that moves at once (no ramp to speak of, no quantum), for arbitration tables.
func quickSite(_ id: String = "hub", floor: Double = 150_000, ceiling: Double = 250_000, order: Int = 0) -> SiteConfig {
    SiteConfig(id: id, floorW: floor, ceilingW: ceiling, rampUpWPerSecond: 1e9, connectionOrder: order)
}

func trafoMP() -> MeasurementPointConfig {
    MeasurementPointConfig(id: "trafo", kind: .apparentPower, sensitivity: 1,
                           upper: .init(limit: 500_000, releaseZone: 490_000, releaseTrigger: 480_000),
                           regulateMargin: 5_000, rideThrough: 0, regulateInterval: 5, releaseInterval: 10,
                           rampW: 10_000, filterTimeConstant: 0)
}

@Suite struct ControllerTests {
    @Test func theMostRestrictiveSourceWinsAndIsNamed() throws {
        let tcc = try HalfHourProfile(watts: (0..<48).map { $0 >= 34 && $0 < 40 ? 180_000 : 250_000 }) // 17:00–20:00
        var c = try HeadroomController(mode: .direct, mps: [trafoMP()], sites: [quickSite()], sources: [
            "hub": SiteSources(tcc: tcc, dscW: 240_000,
                               schedule: [ScheduleWindow(name: "school-run", startSecondsOfDay: 8 * 3600, endSecondsOfDay: 9 * 3600, watts: 200_000)]),
        ])
        func at(_ t: Double, _ hourOfDay: Double, load: Double = 300_000) -> HeadroomController.SiteDecision {
            c.tick(now: t, .init(mp: ["trafo": [load]], siteImportW: ["hub": 150_000], secondsOfDay: hourOfDay * 3600)).sites[0]
        }
        _ = at(0, 3)
        var d = at(1, 3)
        #expect(d.boundBy == .dsc && d.setPointW == 240_000)
        d = at(2, 8.5)
        #expect(d.boundBy == .schedule("school-run") && d.setPointW == 200_000)
        d = at(3, 17.5)
        #expect(d.boundBy == .tcc && d.setPointW == 180_000)
        #expect(d.reason.contains("tcc allows 180 kW"))
        // The constraint beyond its limit: the MP asks for 150 − (520 − 495) = 125 kW, below firm.
        d = at(4, 3, load: 520_000)
        #expect(d.boundBy == .floor && d.setPointW == 150_000)
        #expect(d.reason == "held at firm 150 kW (mp:trafo allows 125 kW)")
    }

    @Test func neverBelowTheFloorHere() throws {
        var c = try HeadroomController(mode: .direct, mps: [trafoMP()], sites: [quickSite()])
        _ = c.tick(now: 0, .init(mp: ["trafo": [300_000]], siteImportW: ["hub": 150_000]))
        let d = c.tick(now: 1, .init(mp: ["trafo": [600_000]], siteImportW: ["hub": 150_000])).sites[0]
        #expect(d.setPointW == 150_000)
        #expect(d.boundBy == .floor)
        #expect(d.reason.contains("held at firm 150 kW"))
    }

    @Test func overridesAndRemoteSetPointsExpire() throws {
        var c = try HeadroomController(mode: .direct, mps: [trafoMP()], sites: [quickSite()])
        c.sources["hub"] = SiteSources(override: Lease(watts: 170_000, expiresAt: 100), remote: Lease(watts: 190_000, expiresAt: 50))
        _ = c.tick(now: 0, .init(mp: ["trafo": [300_000]]))
        #expect(c.tick(now: 10, .init(mp: ["trafo": [300_000]])).sites[0].boundBy == .override)
        c.sources["hub"]!.override = Lease(watts: 200_000, expiresAt: 100)
        #expect(c.tick(now: 20, .init(mp: ["trafo": [300_000]])).sites[0].boundBy == .remote)
        #expect(c.tick(now: 60, .init(mp: ["trafo": [300_000]])).sites[0].boundBy == .override)  // remote stale
        #expect(c.tick(now: 100, .init(mp: ["trafo": [300_000]])).sites[0].boundBy == .ceiling)  // override expired
    }

    @Test func dropFastRiseSlowly() throws {
        var site = quickSite()
        site.rampUpWPerSecond = 1_000
        var c = try HeadroomController(mode: .direct, mps: [trafoMP()], sites: [site])
        var sp: [Double] = []
        for t in 0..<5 { sp.append(c.tick(now: Double(t), .init(mp: ["trafo": [300_000]], siteImportW: ["hub": 150_000])).sites[0].setPointW) }
        #expect(sp == [150_000, 151_000, 152_000, 153_000, 154_000])
        let down = c.tick(now: 5, .init(mp: ["trafo": [510_000]], siteImportW: ["hub": 154_000])).sites[0]
        #expect(down.setPointW == 150_000) // 154 − (510 − 495) = 139 → the floor, at once
    }

    @Test func lifoCurtailsTheLatestConnectionFirst() throws {
        let early = quickSite("early", floor: 50_000, ceiling: 150_000, order: 1)
        let late = quickSite("late", floor: 50_000, ceiling: 150_000, order: 2)
        var c = try HeadroomController(mode: .direct, mps: [trafoMP()], sites: [late, early])
        _ = c.tick(now: 0, .init(mp: ["trafo": [300_000]], siteImportW: ["early": 50_000, "late": 50_000]))
        _ = c.tick(now: 1, .init(mp: ["trafo": [300_000]], siteImportW: ["early": 150_000, "late": 150_000]))
        // 520 kVA with both at 150 kW: the group may import 300 − 25 = 275 kW.
        let d = c.tick(now: 2, .init(mp: ["trafo": [520_000]], siteImportW: ["early": 150_000, "late": 150_000]))
        let byID = Dictionary(uniqueKeysWithValues: d.sites.map { ($0.site, $0.setPointW) })
        #expect(byID["early"] == 150_000)
        #expect(byID["late"] == 125_000)
        #expect(d.sites.first { $0.site == "late" }!.boundBy == .measurementPoint("trafo"))
        // Deeper: the late one goes to its floor before the early one gives anything up.
        let deeper = c.tick(now: 8, .init(mp: ["trafo": [600_000]], siteImportW: ["early": 150_000, "late": 125_000]))
        let deeperByID = Dictionary(uniqueKeysWithValues: deeper.sites.map { ($0.site, $0.setPointW) })
        #expect(deeperByID["late"] == 50_000)
        #expect(deeperByID["early"]! < 150_000 && deeperByID["early"]! >= 50_000)
    }

    @Test func configErrorsNameEverything() {
        #expect(throws: ConfigError.self) { _ = try HeadroomController(mode: .direct, mps: [trafoMP(), trafoMP()], sites: []) }
        do {
            _ = try HeadroomController(mode: .direct, mps: [trafoMP()], sites: [quickSite(floor: 300_000, ceiling: 250_000)])
            Issue.record("accepted a floor above the ceiling")
        } catch {
            #expect(error.description.contains("site hub: rated 250000.0 W is below firm 300000.0 W"))
        }
        #expect(throws: ProfileError.self) { _ = try HalfHourProfile(watts: [1, 2, 3]) }
    }

    // MARK: Properties

    @Test func setPointAlwaysWithinFloorAndCeiling() async {
        let loads = Gen.double(in: 0...800_000).array(of: 1...80)
        await propertyCheck(count: 150, input: loads, Gen<HeadroomController.Mode>.case, Gen.double(in: 0...400_000)) { loads, mode, dsc in
            var site = quickSite()
            site.rampUpWPerSecond = 3_000
            var c = try! HeadroomController(mode: mode, mps: [trafoMP()], sites: [site], sources: ["hub": SiteSources(dscW: dsc)])
            for (i, load) in loads.enumerated() {
                let d = c.tick(now: Double(i), .init(mp: ["trafo": [load]], siteImportW: ["hub": min(load, 250_000)])).sites[0]
                #expect(d.setPointW >= 150_000 - 1e-6 && d.setPointW <= 250_000 + 1e-6, "\(d)")
            }
        }
    }

    @Test func increasesNeverFasterThanTheRamp() async {
        await propertyCheck(count: 150, input: Gen.double(in: 200_000...520_000).array(of: 2...60)) { loads in
            var site = quickSite()
            site.rampUpWPerSecond = 2_000
            var c = try! HeadroomController(mode: .direct, mps: [trafoMP()], sites: [site])
            var last: Double?
            for (i, load) in loads.enumerated() {
                let sp = c.tick(now: Double(i) * 0.5, .init(mp: ["trafo": [load]], siteImportW: ["hub": 150_000])).sites[0].setPointW
                if let l = last { #expect(sp - l <= 1_000 + 1e-6) }
                last = sp
            }
        }
    }
}
