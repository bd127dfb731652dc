import FailSafe
import Headroom

extension ExampleSite {
    /// The constraint meter and the hub's PoC meter of the example.
    public static let mpMeterID = "trafo_meter"
    public static let pocMeterID = "hub_poc"

    /// The example box's cycle: the hub's set point in kVA at unity power factor, in whole kVA.
    public static func cycleConfig(mode: HeadroomController.Mode = .direct, supervisor: SupervisorConfig = SupervisorConfig()) -> CycleConfig {
        CycleConfig(mode: mode, periodSeconds: 1, measurementPoints: [measurementPoint()], sites: [site()],
                    mpMeter: [mpID: mpMeterID], sitePocMeter: [siteID: pocMeterID], supervisor: supervisor,
                    shapers: [siteID: ShaperConfig(unit: .kVA(powerFactor: 1), quantum: 1, hysteresis: 0.5)])
    }

    public static func cycle(mode: HeadroomController.Mode = .direct) -> ControlCycle {
        try! ControlCycle(cycleConfig(mode: mode))
    }
}
