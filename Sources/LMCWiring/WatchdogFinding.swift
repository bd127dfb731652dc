/// `lmc doctor`'s watchdog finding, from what systemd and the config say: the unit's watchdog (a hung
/// loop restarts lmc) and the hardware one, armed by systemd (RuntimeWatchdogSec) or petted by lmc
/// (`[box] hardware_watchdog`) — never both: a watchdog device has one opener.
public struct WatchdogFinding: Sendable, Equatable {
    public enum Status: String, Sendable { case ok, warn, fail }
    public var status: Status
    public var detail: String
    public var fix: String?

    /// - Parameters:
    ///   - unitWatchdog: the unit's WatchdogUSec as systemctl shows it ("5s"; "", "0" or "infinity": off).
    ///   - manager: systemd's RuntimeWatchdogUSec, the same way.
    ///   - hardwarePresent: /dev/watchdog or /dev/watchdog0 exists.
    ///   - lmcPets: the config's `[box] hardware_watchdog`, if set.
    public init(unit: String, unitWatchdog: String, manager: String, hardwarePresent: Bool, lmcPets: String?) {
        func off(_ v: String) -> Bool { v.isEmpty || v == "0" || v == "infinity" }
        let restarted = "\(unit) restarted after \(unitWatchdog) without a cycle"
        if off(unitWatchdog) {
            (status, detail, fix) = (.fail, "\(unit).service has no WatchdogSec: a hung control loop is not restarted",
                                     "remove any drop-in that clears WatchdogSec (systemctl cat \(unit)); the packaged unit sets 5s")
            return
        }
        switch (lmcPets, off(manager)) {
        case (let dev?, true):
            (status, detail, fix) = (.ok, "\(restarted); lmc pets the hardware watchdog \(dev) from on-time cycles ([box] hardware_watchdog)", nil)
        case (let dev?, false):
            (status, detail, fix) = (.warn, "\(restarted); both lmc ([box] hardware_watchdog = \(dev)) and systemd (RuntimeWatchdogSec \(manager)) claim the hardware watchdog, and only one can open it",
                                     "leave one: remove RuntimeWatchdogSec from /etc/systemd/system.conf.d/, or hardware_watchdog from [box]")
        case (nil, true):
            (status, detail, fix) = (.warn, "\(restarted); nothing arms the hardware watchdog\(hardwarePresent ? " (/dev/watchdog exists)" : " (no /dev/watchdog)")",
                                     "set [box] hardware_watchdog = \"/dev/watchdog0\" (lmc pets it from on-time cycles), or RuntimeWatchdogSec=30s in /etc/systemd/system.conf.d/watchdog.conf, so a hung box reboots")
        case (nil, false):
            (status, detail, fix) = (.ok, "\(restarted); systemd pets the hardware watchdog (\(manager))", nil)
        }
    }
}
