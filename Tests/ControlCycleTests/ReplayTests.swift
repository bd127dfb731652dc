import Foundation
import Testing
import ControlCycle
import Headroom

/// A scenario of the project's `scenarios/` folder; a missing file fails the test that asked for it.
func scenario(_ name: String) throws -> Scenario {
    var u = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { u.deleteLastPathComponent() }
    let path = u.appendingPathComponent("scenarios/\(name)").path
    try #require(FileManager.default.isReadableFile(atPath: path), "scenario \(path) is missing (scenarios/README.md)")
    return try Scenario.parse(csv: String(contentsOfFile: path, encoding: .utf8))
}

@Suite struct ReplayTests {
    @Test(arguments: [HeadroomController.Mode.direct, .incremental])
    func exampleDay(mode: HeadroomController.Mode) throws {
        let s = try scenario("seed-example-day.csv")
        var c = ExampleSite.cycle(mode: mode)
        let r = simulate(s, cycle: &c, mpID: ExampleSite.mpID, plant: PlantModel())
        print("\(mode) day: above \(r.secondsAboveLimit) s, above tol \(r.secondsAboveTolerance) s, overshoot \(r.largestOvershootVA / 1000) kVA, oracle \(r.shareOfOracle), firm \(r.shareOfFirm), changes/h \(r.changesPerHour), reversals/h \(r.reversalsPerHour)")
        #expect(r.secondsAboveTolerance == 0)
        #expect(r.shareOfOracle >= 0.97)
        #expect(r.reversalsPerHour <= 2)
    }
}

extension ReplayTests {
    @Test(arguments: [HeadroomController.Mode.direct, .incremental])
    func semiurbanJanuary(mode: HeadroomController.Mode) throws {
        let s = try scenario("semiurban-january.csv")
        var c = ExampleSite.cycle(mode: mode)
        let r = simulate(s, cycle: &c, mpID: ExampleSite.mpID, plant: PlantModel(seed: 7))
        print("\(mode) month: above \(r.secondsAboveLimit) s, above tol \(r.secondsAboveTolerance) s, overshoot \(r.largestOvershootVA / 1000) kVA, oracle \(r.shareOfOracle), firm \(r.shareOfFirm), changes/h \(r.changesPerHour), reversals/h \(r.reversalsPerHour)")
        #expect(r.secondsAboveTolerance == 0)
        #expect(r.shareOfOracle >= 0.97)
        #expect(r.reversalsPerHour <= 2)
    }
}
