import Testing
import Headroom
import LMCConfig
import LMCWiring
import TOMLReader

/// lmc.toml is read as plain data (`LMCConfig`, which depends on the TOML reader only) and then wired into
/// the parts' own types (`LMCWiring`). These pin what joins the two.
@Suite struct WiringTests {
    @Test func thePlainChoicesAreTheCoresOwn() {
        #expect(ConfigFile.Mode.allCases.map(\.rawValue) == HeadroomController.Mode.allCases.map(\.rawValue))
        #expect(ConfigFile.Kind.allCases.map(\.rawValue) == MeasurementPointConfig.Kind.allCases.map(\.rawValue))
    }

    @Test func theReaderAloneReportsKeyProblemsAndTheWiringAddsWhatThePartsRefuse() throws {
        // A meter profile that does not exist is found only by the driver's profile loader (wiring);
        // the misspelt key by the reader. Both come back in one list, each at its line.
        let text = """
        [[bus]]
        id = "b"
        tcp = "127.0.0.1:1502"
        [[meter]]
        id = "m"
        bus = "b"
        profile = "no-such-meter"
        pol_ms = 100
        [[measurement_point]]
        id = "trafo"
        kind = "apparent_power"
        meter = "m"
        sensitivity_per_kw = 1
        [measurement_point.upper]
        limit_kva = 500
        release_zone_kva = 492
        release_trigger_kva = 488
        [[site]]
        id = "hub"
        firm_kw = 150
        rated_kw = 250
        """
        var plain: [ConfigIssue] = []
        let file = try #require(ConfigFile.read(text, issues: &plain))
        #expect(plain.map(\.path) == ["meter[0].pol_ms"])
        #expect(file.meters.first?.profile == "no-such-meter")
        #expect(file.measurementPoints.first?.upper?.limit == 500_000)
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("accepted"); return }
        #expect(e.issues.map(\.path) == ["meter[0].pol_ms", "meter[0].profile"])
        #expect(e.issues.last?.line == 7)
    }
}
