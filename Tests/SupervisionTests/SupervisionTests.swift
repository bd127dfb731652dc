import DigitalIO
import FailSafe
import Foundation
import Testing
@testable import Supervision

/// The GPIO side of the supervisor through DigitalIO's simulator seam, and the watchdogs against
/// real sockets and files.
@Suite struct BreakerDriverTests {
    static func box() -> GPIOSimulator {
        GPIOSimulator(chips: [.init(name: "gpiochip0", lineNames: ["TRIP", "CLOSE", "BRK_AUX", "LED"])])
    }
    let wiring = BreakerWiring(trip: .init(offset: 0), close: .init(offset: 1),
                               auxiliary: .init(offset: 2, activeLow: true), pulseMilliseconds: 120)

    @Test func outputsStartInactive() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let b = try BreakerDriver(wiring)
            #expect(sim.level(chip: "gpiochip0", offset: 0) == false)
            #expect(sim.level(chip: "gpiochip0", offset: 1) == false)
            _ = b
        }
    }

    @Test func aTripIsAPulseOfTheConfiguredWidthOnTheTripLineOnly() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let b = try BreakerDriver(wiring)
            try b.execute(.trip)
            let t = sim.transitions(chip: "gpiochip0", offset: 0)
            #expect(t.map(\.high) == [false, true, false])
            let width = Double(t[2].monotonicNs - t[1].monotonicNs) / 1e6
            #expect(width >= 120 && width < 1000, "\(width) ms")
            #expect(sim.transitions(chip: "gpiochip0", offset: 1).map(\.high) == [false])
            try b.execute(.close)
            #expect(sim.transitions(chip: "gpiochip0", offset: 1).map(\.high) == [false, true, false])
        }
    }

    @Test func theAuxiliaryContactReadsClosedAndOpen() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let b = try BreakerDriver(wiring)
            sim.drive(chip: "gpiochip0", offset: 2, high: false)  // active low: contact made
            #expect(try b.isClosed() == true)
            sim.drive(chip: "gpiochip0", offset: 2, high: true)
            #expect(try b.isClosed() == false)
        }
    }

    /// A restart never de-energises a held trip: with a latched trip output (pulse_ms = 0) and the
    /// auxiliary contact reading open when lmc starts, the trip output comes up active, as it was held.
    /// Before: every output came up inactive, releasing a held trip on every restart or reload.
    @Test func aHeldTripSurvivesARestart() throws {
        var w = wiring
        w.pulseMilliseconds = 0
        let open = Self.box()
        open.drive(chip: "gpiochip0", offset: 2, high: true)    // active low: contact open, the breaker is open
        try GPIOSimulator.with(open) {
            let b = try BreakerDriver(w)
            #expect(open.level(chip: "gpiochip0", offset: 0) == true, "the held trip is kept")
            #expect(open.level(chip: "gpiochip0", offset: 1) == false)
            _ = b
        }
        let closed = Self.box()
        closed.drive(chip: "gpiochip0", offset: 2, high: false)  // contact made: the breaker is closed
        try GPIOSimulator.with(closed) {
            let b = try BreakerDriver(w)
            #expect(closed.level(chip: "gpiochip0", offset: 0) == false)
            _ = b
        }
    }

    @Test func latchedModeHoldsTheCoilAndReleasesTheOther() throws {
        let sim = Self.box()
        var w = wiring
        w.pulseMilliseconds = 0
        try GPIOSimulator.with(sim) {
            let b = try BreakerDriver(w)
            try b.execute(.trip)
            #expect(sim.level(chip: "gpiochip0", offset: 0) == true)
            try b.execute(.close)
            #expect(sim.level(chip: "gpiochip0", offset: 0) == false && sim.level(chip: "gpiochip0", offset: 1) == true)
        }
    }

    @Test func aFailingTripLineIsAnErrorTheCallerSees() throws {
        let sim = Self.box()
        sim.fail(.setValue, onCall: 1, errno: EIO)
        try GPIOSimulator.with(sim) {
            let b = try BreakerDriver(wiring)
            #expect(throws: GPIOError.self) { try b.execute(.trip) }
        }
    }

    /// The control loop posts and goes on: the pulse is still on the line after post returns, and a
    /// coil that cannot be driven is a failure the loop reads (BREAKER_UNAVAILABLE), cleared by the
    /// next command that works.
    @Test func theWorkerPulsesOnItsOwnThreadAndReportsACoilFailure() throws {
        let sim = Self.box()
        sim.fail(.setValue, onCall: 1, errno: EIO)
        try GPIOSimulator.with(sim) {
            let w = BreakerWorker(try BreakerDriver(BreakerWiring(trip: .init(offset: 0), close: .init(offset: 1),
                                                                  auxiliary: .init(offset: 2, activeLow: true), pulseMilliseconds: 400)))
            w.start()
            defer { w.stop() }
            w.post(.trip)
            while w.commandsDone < 1 { usleep(1_000) }
            #expect(w.failure?.hasPrefix("trip coil: ") == true, "\(String(describing: w.failure))")
            w.post(.trip)
            #expect(w.busy, "post returned before the pulse ended")
            var sawHigh = false
            while w.commandsDone < 2 { sawHigh = sawHigh || sim.level(chip: "gpiochip0", offset: 0); usleep(1_000) }
            #expect(sawHigh, "the trip line went high while the loop was free")
            #expect(sim.level(chip: "gpiochip0", offset: 0) == false, "and low after the pulse")
            #expect(w.failure == nil, "a command that worked clears the failure")
        }
    }

    @Test func theSupervisorsTripCommandDrivesTheLine() throws {
        // End to end through the pure supervisor: non-response → trip command → pulse → contact opens.
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let b = try BreakerDriver(wiring)
            sim.drive(chip: "gpiochip0", offset: 2, high: false)  // closed
            var sup = Supervisor(SupervisorConfig(goodSamplesToRecover: 1, startupDelayWindow: 0...0, responseTime: 1))
            var t = 0.0
            var tripped = false
            while t < 5 {
                let closed = try b.isClosed()
                let out = sup.tick(SupervisorInputs(now: t, meters: [MeterStatus(id: "m", lastGoodAt: t, goodNow: true)],
                                                    sites: [SiteInputs(id: "hub", requestedW: 100_000, safe: SafeSetPoint(firmW: 100_000),
                                                                       pocImportW: 200_000, breakerClosed: closed)]))
                if let cmd = out.breaker["hub"] {
                    try b.execute(cmd)
                    sim.drive(chip: "gpiochip0", offset: 2, high: true) // the breaker opens
                }
                if out.mode == .tripped { tripped = true; break }
                t += 0.1
            }
            #expect(tripped)
            #expect(sim.transitions(chip: "gpiochip0", offset: 0).filter(\.high).count == 1)
        }
    }
}

@Suite struct WatchdogTests {
    @Test func notifyReachesTheSocket() throws {
        let path = "/tmp/lmc-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(rc == 0)
        let n = SystemdNotifier(socketPath: path)
        n.ready(status: "control loop running")
        n.watchdog()
        var buf = [UInt8](repeating: 0, count: 256)
        let a = recv(fd, &buf, 256, 0)
        #expect(String(decoding: buf[0..<a], as: UTF8.self) == "READY=1\nSTATUS=control loop running")
        let b = recv(fd, &buf, 256, 0)
        #expect(String(decoding: buf[0..<b], as: UTF8.self) == "WATCHDOG=1")
    }

    @Test func withoutSystemdNothingIsSent() {
        #expect(!SystemdNotifier(socketPath: nil).send("WATCHDOG=1"))
        #expect(!SystemdNotifier(socketPath: "").isEnabled)
    }

    @Test func hardwareWatchdogPetsAndClosesWithTheMagicCharacter() throws {
        let path = "/tmp/lmc-wdt-\(getpid())"
        FileManager.default.createFile(atPath: path, contents: nil)
        defer { unlink(path) }
        let w = try HardwareWatchdog(path: path)
        try w.pet()
        try w.pet()
        w.disarm()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "11V")
        #expect(throws: WatchdogError.self) { _ = try HardwareWatchdog(path: "/dev/lmc-no-watchdog") }
    }
}

@Suite struct RefusalLimiterTests {
    @Test func aFloodOfRefusalsLeavesFiveEventsAndOneSummaryPerMinute() {
        var l = RefusalLimiter(burst: 5, windowNs: 60_000_000_000)
        var logged = 0
        for i in 0..<10_000 { if l.admit(uid: 1000, nowNs: UInt64(i) * 1_000_000).log { logged += 1 } }
        #expect(logged == 5)
        #expect(l.admit(uid: 1001, nowNs: 10_000_000_000).log, "another user has its own budget")
        let next = l.admit(uid: 1000, nowNs: 61_000_000_000)
        #expect(next.log && next.suppressedBefore == 9_995)
    }
}
