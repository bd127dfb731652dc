import Testing
import TOMLReader
@testable import LMCConfig
import LMCWiring

/// A table left out and the same table without the key give the same value (issue 15, item 4): the
/// defaults have one source. Before, a config without `[failsafe]` re-closed a tripped breaker by itself
/// after 300 s (SupervisorConfig's init default) and one with `[failsafe]` never did.
@Suite struct DefaultsTests {
    let minimal = """
    [[measurement_point]]
    id = "trafo"
    kind = "apparent_power"
    sensitivity_per_kw = 1
    [measurement_point.upper]
    limit_kva = 500
    release_zone_kva = 490
    release_trigger_kva = 480
    [[site]]
    id = "hub"
    firm_kw = 150
    rated_kw = 250

    """

    @Test func aMissingFailsafeTableAndAnEmptyOneGiveTheSameSupervisor() throws {
        let without = try Configuration.parse(minimal).get().runtime.supervisor
        let empty = try Configuration.parse(minimal + "[failsafe]\n").get().runtime.supervisor
        #expect(without == empty)
        // docs/config.md: auto_close_delay_s has no default; closing is manual unless the engineer sets it.
        #expect(without.autoCloseDelay == nil, "without [failsafe]: \(String(describing: without.autoCloseDelay))")
        #expect(empty.autoCloseDelay == nil)
        let set = try Configuration.parse(minimal + "[failsafe]\nauto_close_delay_s = 300\n").get().runtime.supervisor
        #expect(set.autoCloseDelay == 300)
    }

    @Test func theOtherOptionalTablesToo() throws {
        let without = try Configuration.parse(minimal).get()
        let empty = try Configuration.parse(minimal + "[control]\n[box]\n[log]\n").get()
        #expect(without.runtime.log == empty.runtime.log)
        #expect(without.runtime.boxID == empty.runtime.boxID && without.runtime.socketPath == empty.runtime.socketPath)
        #expect(without.mode == empty.mode && without.periodMilliseconds == empty.periodMilliseconds)
        #expect(without.tccTimezone == empty.tccTimezone && without.requireSynchronisedClock == empty.requireSynchronisedClock)
    }
}
