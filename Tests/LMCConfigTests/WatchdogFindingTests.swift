import Testing
import LMCWiring

/// `lmc doctor`'s watchdog check (the doctor's own tests can hold the system checks only to their form).
@Suite struct WatchdogFindingTests {
    /// lmc petting the hardware watchdog itself is not "nothing arms it"; both lmc and systemd claiming it is.
    @Test func theWatchdogCheckKnowsWhoPetsTheHardwareWatchdog() {
        let lmcOnly = WatchdogFinding(unit: "lmc", unitWatchdog: "5s", manager: "0", hardwarePresent: true, lmcPets: "/dev/watchdog0")
        #expect(lmcOnly.status == .ok && lmcOnly.detail.contains("lmc pets the hardware watchdog /dev/watchdog0"), "\(lmcOnly)")
        let both = WatchdogFinding(unit: "lmc", unitWatchdog: "5s", manager: "30s", hardwarePresent: true, lmcPets: "/dev/watchdog0")
        #expect(both.status == .warn && both.detail.contains("only one can open it") && both.fix?.contains("leave one") == true, "\(both)")
        let none = WatchdogFinding(unit: "lmc", unitWatchdog: "5s", manager: "", hardwarePresent: true, lmcPets: nil)
        #expect(none.status == .warn && none.fix?.contains("hardware_watchdog") == true, "\(none)")
        #expect(WatchdogFinding(unit: "lmc", unitWatchdog: "5s", manager: "30s", hardwarePresent: true, lmcPets: nil).status == .ok)
        #expect(WatchdogFinding(unit: "lmc", unitWatchdog: "infinity", manager: "30s", hardwarePresent: true, lmcPets: nil).status == .fail)
    }

}
