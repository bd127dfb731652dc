import Testing
import TOMLReader
@testable import LMCConfig
import LMCWiring

/// `lmc config check` on a config that is valid but cannot work on its bus as written.
@Suite struct ConfigWarningsTests {
    func config(baud: Int, poll: Int, frozen: String = "frozen_after_s = 1") -> String {
        """
        [failsafe]
        blind_time_s = 1
        [[bus]]
        id = "rs485"
        rtu = "/dev/ttyUSB0"
        baud = \(baud)
        [[meter]]
        id = "trafo_meter"
        bus = "rs485"
        profile = "eastron-sdm630"
        poll_ms = \(poll)
        \(frozen)
        [[meter]]
        id = "hub_poc"
        bus = "rs485"
        unit = 2
        profile = "eastron-sdm630"
        poll_ms = \(poll)
        [[measurement_point]]
        id = "trafo"
        kind = "apparent_power"
        meter = "trafo_meter"
        sensitivity_per_kw = 1
        [measurement_point.upper]
        limit_kva = 500
        release_zone_kva = 492
        release_trigger_kva = 488
        [[site]]
        id = "hub"
        firm_kw = 150
        rated_kw = 250
        poc_meter = "hub_poc"
        """
    }

    @Test func incrementalModeWithoutAPoCMeterIsWarnedOf() throws {
        let metered = "[control]\nmode = \"incremental\"\n" + config(baud: 115_200, poll: 200)
        #expect(try Configuration.parse(metered).get().warnings.isEmpty)
        let unmetered = metered.replacingOccurrences(of: "poc_meter = \"hub_poc\"", with: "")
        let w = try Configuration.parse(unmetered).get().warnings
        #expect(w.count == 1 && w[0].hasPrefix("site hub: incremental mode without a poc_meter"), "\(w)")
    }

    @Test func twoMetersAt9600BaudCannotBePolledEvery100Ms() throws {
        let c = try Configuration.parse(config(baud: 9600, poll: 100)).get()
        let w = c.warnings
        #expect(w.count == 1, "\(w)")
        // Counted as the bus thread reads: V and I in one request, W and VA total in another, per meter
        // (2 × (55.8 + 43.3) ms); energy and frequency are no longer read (they made it three).
        #expect(w.first?.hasPrefix("bus rs485: 2 meters at 9600 baud need 199 ms for one poll each (trafo_meter: 2 reads, hub_poc: 2 reads)") == true, "\(w)")
        #expect(w.first?.contains("raise poll_ms to at least 248") == true, "\(w)")
        // The same meters at 9600 baud every 250 ms fit.
        #expect(try Configuration.parse(config(baud: 9600, poll: 250)).get().warnings.isEmpty)
        // At 115200 baud polled every 200 ms they fit.
        #expect(try Configuration.parse(config(baud: 115_200, poll: 200)).get().warnings.isEmpty)
    }

    @Test func aFrozenValueRecognisedAfterTheBlindTimeIsAWarning() throws {
        let w = try Configuration.parse(config(baud: 115_200, poll: 200, frozen: "frozen_after_s = 4")).get().warnings
        #expect(w == ["meter trafo_meter: a frozen value is recognised after frozen_after_s 4 s, later than failsafe.blind_time_s 1 s — lower frozen_after_s to 1 or less"], "\(w)")
    }

    @Test func frozenAfterSecondsIsRead() throws {
        let c = try Configuration.parse(config(baud: 115_200, poll: 200, frozen: "frozen_after_s = 0.6")).get()
        #expect(c.runtime.meters.first { $0.id == "trafo_meter" }?.rules.frozenAfterSeconds == 0.6)
        // Unset: 1 s.
        #expect(c.runtime.meters.first { $0.id == "hub_poc" }?.rules.frozenAfterSeconds == 1)
    }

    @Test func theDeprecatedFrozenPollsIsReadAsSecondsAndSaysWhatToWrite() throws {
        // 10 identical polls at 200 ms: the 10th is 1.8 s after the first of the run.
        let c = try Configuration.parse(config(baud: 115_200, poll: 200, frozen: "frozen_polls = 10")).get()
        #expect(c.runtime.meters.first { $0.id == "trafo_meter" }?.rules.frozenAfterSeconds == 1.8)
        #expect(c.warnings.contains("meter trafo_meter: frozen_polls is deprecated; frozen_polls 10 × poll_ms 200 is read as frozen_after_s = 1.8 (the 10th identical poll) — write frozen_after_s = 1.8 instead"), "\(c.warnings)")
        // Both: an error naming the key to keep.
        guard case .failure(let e) = Configuration.parse(config(baud: 115_200, poll: 200, frozen: "frozen_polls = 10\nfrozen_after_s = 1")) else {
            Issue.record("frozen_polls with frozen_after_s was accepted"); return
        }
        #expect(e.description.contains("frozen_polls is deprecated, delete it and keep frozen_after_s"), "\(e)")
    }
}
