import ArgumentParser
import LMCPlatform
import ModbusBridge

/// The `lmc` executable: one binary for the daemon, the console tools and commissioning.
@main
struct LMC: ParsableCommand {
    static let version = "0.2.0"

    static let configuration = CommandConfiguration(
        commandName: "lmc",
        abstract: "LMC field controller: measures a network constraint and relays a safe import limit to an EV charging site.",
        discussion: """
        Commissioning tools talk to real devices; nothing here changes the running daemon.
        Addresses are 0-based register numbers as sent on the wire (decimal or 0x hex):
        a meter manual's "30001" or "40001" is address 0.

        Examples:
          lmc modbus read --tcp 192.168.1.20:502 --input 0 --count 3 --type f32
          lmc modbus read --rtu /dev/ttyS1 --parity E --unit 2 --input 52 --type i32
          lmc modbus write --tcp 192.168.1.30:502 1210 16 --type f32 --yes
          lmc gpio info
          lmc demo
        """,
        version: version,
        subcommands: [RingTestWriter.self, RunCommand.self, LogCommand.self, StatusCommand.self, WatchCommand.self, AlarmsCommand.self, OverrideCommand.self, ResetLockoutCommand.self, TestCommand.self, SimulateCommand.self, ConfigCommand.self, DoctorCommand.self, MeterCommand.self, ChargerCommand.self, ModbusCommand.self, GPIOCommand.self, DemoCommand.self]
    )

    /// Every command may open Modbus connections: descriptors stay where libmodbus's select() can
    /// watch them (OpenFileLimit), whatever limit lmc was started with.
    /// No transparent huge pages (StartupPages.declineHugePages): first, before a thread or the heap grows.
    static func main() {
        StartupPages.declineHugePages()
        OpenFileLimit.capAtSelectable()
        main(nil)
    }
}
