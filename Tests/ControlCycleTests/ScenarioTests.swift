import Testing

/// Every scenario file in Scenarios/ drives whole control cycles; a failing file names the first
/// cycle where an output differs from what it expects.
@Suite struct ScenarioTests {
    @Test(arguments: ScenarioRun.files())
    func scenario(_ file: String) throws {
        let run = try ScenarioRun.load(file)
        if let first = run.failures.first {
            Issue.record("\(file): first difference at \(first)\(run.failures.count > 1 ? " (and \(run.failures.count - 1) more)" : "")")
        }
    }

    @Test func theFolderHoldsTheFaultTable() {
        // One file per row of the fail-safe table (docs/control.md) that a cycle can show.
        let rows = ["startup", "meter-lost", "meter-nan", "meter-frozen", "meter-silent", "relay-failing", "non-response", "lockout",
                    "heartbeat-lapse", "clock-jump", "lifo-non-response"]
        let files = Set(ScenarioRun.files())
        for r in rows { #expect(files.contains("\(r).toml"), "Scenarios/\(r).toml is missing") }
    }

    /// The runner itself must be able to fail: a wrong expectation is reported at its first cycle.
    @Test func aWrongExpectationIsReportedAtItsFirstCycle() throws {
        let text = """
        config = "box.toml"
        duration_s = 5
        [[set]]
        t = 0
        meter = "trafo_meter"
        kva = 300
        [[expect]]
        from = 2
        to = 5
        mode = "NORMAL"
        """
        let run = try ScenarioRun.run(text: text, name: "wrong.toml")
        let first = try #require(run.failures.first)
        #expect(first.t == 2 && first.cycle == 21)
        #expect(first.message.contains("expected mode NORMAL, got STARTUP"), "\(first)")
    }
}
