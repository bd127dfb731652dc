/// The Charge Project worked example (DESIGN.md §1): a 500 kVA transformer whose load is measured as
/// apparent power, one EV hub rated 250 kVA with 150 kVA firm, set point in kVA at unity power factor.
/// The defaults of `lmc simulate` and `lmc demo`, and the fixture of the replay tests.
public enum ExampleSite {
    public static let mpID = "trafo"
    public static let siteID = "hub"

    public static func measurementPoint() -> MeasurementPointConfig {
        MeasurementPointConfig(
            id: mpID, kind: .apparentPower, sensitivity: 1,
            upper: .init(trip: 550_000, tripDelay: 30, limit: 500_000, releaseZone: 498_000, releaseTrigger: 496_000),
            regulateMargin: 2_000, rideThrough: 3, regulateInterval: 20, releaseInterval: 60, rampW: .infinity,
            filterTimeConstant: 5)
    }

    public static func site() -> SiteConfig {
        SiteConfig(id: siteID, floorW: 150_000, ceilingW: 250_000, rampUpWPerSecond: 2_000)
    }

    public static func controller(mode: HeadroomController.Mode = .direct) -> HeadroomController {
        try! HeadroomController(mode: mode, mps: [measurementPoint()], sites: [site()])
    }
}
