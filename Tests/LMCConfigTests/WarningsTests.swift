import Testing
import TOMLReader
@testable import LMCConfig

/// `lmc config check` on a config that is valid but cannot work on its bus as written.
@Suite struct ConfigWarningsTests {
    func config(baud: Int, poll: Int, frozen: Int = 5) -> String {
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
        frozen_polls = \(frozen)
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

    @Test func twoMetersAt9600BaudCannotBePolledEvery100Ms() throws {
        let c = try Configuration.parse(config(baud: 9600, poll: 100, frozen: 10)).get()
        let w = c.warnings
        #expect(w.count == 1, "\(w)")
        #expect(w.first?.hasPrefix("bus rs485: 2 meters at 9600 baud need") == true && w.first?.contains("raise poll_ms to at least") == true, "\(w)")
        // The same meters at 115200 baud polled every 200 ms (frozen after 5 polls = 1 s) fit.
        #expect(try Configuration.parse(config(baud: 115_200, poll: 200)).get().warnings.isEmpty)
    }

    @Test func aFrozenValueRecognisedAfterTheBlindTimeIsAWarning() throws {
        let w = try Configuration.parse(config(baud: 115_200, poll: 200, frozen: 20)).get().warnings
        #expect(w == ["meter trafo_meter: a frozen value is recognised after frozen_polls 20 × poll_ms 200 = 4.0 s, later than failsafe.blind_time_s 1.0 s — lower frozen_polls to 5 or poll faster"], "\(w)")
    }
}
