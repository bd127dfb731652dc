import Foundation
import Testing
@testable import DigitalIO

/// DigitalIO through its one C seam: a GPIOSimulator stands in for the kernel (no GPIO chip on CI).
@Suite struct DigitalIOTests {
    // A box like ours: trip and close relays, the breaker's auxiliary contact, an S0 input, a LED.
    static func box() -> GPIOSimulator {
        GPIOSimulator(chips: [.init(name: "gpiochip0", label: "pinctrl-sim",
                                    lineNames: ["TRIP", "CLOSE", "BRK_AUX", "S0_1", "LED", "spare"])])
    }

    @Test func opensAChipByNamePathLabelOrNumber() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            for name in ["gpiochip0", "/dev/gpiochip0", "pinctrl-sim", "0"] {
                let c = try GPIOChip(name)
                #expect(c.name == "gpiochip0" && c.label == "pinctrl-sim" && c.lineCount == 6)
            }
        }
    }

    @Test func missingChipSaysWhatToDo() {
        let sim = Self.box()
        GPIOSimulator.with(sim) {
            let e = #expect(throws: GPIOError.self) { _ = try GPIOChip("gpiochip9") }
            #expect(e?.kind == .chipNotFound)
            #expect(e!.description.contains("gpiochip9") && e!.description.contains("lmc gpio info"))
        }
    }

    @Test func outputsStartAtTheirInitialLevelAndFollowSet() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let led = try chip.output(4, initial: true)
            #expect(sim.level(chip: "gpiochip0", offset: 4) == true)
            try led.set(false)
            #expect(sim.level(chip: "gpiochip0", offset: 4) == false)
            #expect(sim.transitions(chip: "gpiochip0", offset: 4).map(\.high) == [true, false])
        }
    }

    @Test func activeLowInvertsThePhysicalLevel() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            // Relay driver that energises on a low level: logical off = physical high.
            let trip = try chip.output(0, options: .init(activeLow: true), initial: false)
            #expect(sim.level(chip: "gpiochip0", offset: 0) == true)
            try trip.set(true)
            #expect(sim.level(chip: "gpiochip0", offset: 0) == false)
            // A normally-closed aux contact pulled up: physical low reads as logical 1.
            let aux = try chip.input(2, options: .init(activeLow: true, bias: .pullUp))
            sim.drive(chip: "gpiochip0", offset: 2, high: false)
            #expect(try aux.value() == true)
            sim.drive(chip: "gpiochip0", offset: 2, high: true)
            #expect(try aux.value() == false)
        }
    }

    @Test func aTripPulseHasTheConfiguredWidthOnTheRightLine() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let trip = try chip.output(0, consumer: "lmc-trip", initial: false)
            let close = try chip.output(1, consumer: "lmc-close", initial: false)
            try trip.pulse(widthMilliseconds: 150)
            let t = sim.transitions(chip: "gpiochip0", offset: 0)
            #expect(t.map(\.high) == [false, true, false])
            let widthMs = Double(t[2].monotonicNs - t[1].monotonicNs) / 1e6
            #expect(widthMs >= 150, "pulse was \(widthMs) ms")
            #expect(widthMs < 1000, "pulse was \(widthMs) ms")
            // The close line never moved.
            #expect(sim.transitions(chip: "gpiochip0", offset: 1).map(\.high) == [false])
            #expect(trip.value == false && close.value == false)
        }
    }

    @Test func edgesArriveWithTheirSense() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let s0 = try chip.input(3, edges: true)
            #expect(try s0.nextEdge(timeoutMilliseconds: 10) == nil)
            sim.drive(chip: "gpiochip0", offset: 3, high: true)
            sim.drive(chip: "gpiochip0", offset: 3, high: false)
            let e1 = try s0.nextEdge(timeoutMilliseconds: 100)
            let e2 = try s0.nextEdge(timeoutMilliseconds: 100)
            #expect(e1?.rising == true && e2?.rising == false)
            #expect(e2!.timestampNs >= e1!.timestampNs)
            #expect(try s0.nextEdge(timeoutMilliseconds: 10) == nil)
        }
    }

    @Test func aBusyLineNamesItsHolder() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let held = try chip.output(0, consumer: "lmc", initial: false)
            let e = #expect(throws: GPIOError.self) { _ = try chip.output(0, consumer: "lmc-commissioning", initial: false) }
            #expect(e?.kind == .busy(holder: "lmc"))
            _ = held
        }
    }

    @Test func releasingALineFreesIt() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            do { _ = try chip.output(5, consumer: "first", initial: false) }
            #expect(sim.consumer(chip: "gpiochip0", offset: 5) == nil)
            _ = try chip.output(5, consumer: "second", initial: false)
        }
    }

    @Test func lineOffsetOutOfRange() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let e = #expect(throws: GPIOError.self) { _ = try chip.input(6) }
            #expect(e?.kind == .noSuchLine(count: 6))
            #expect(e!.description.contains("lines 0–5"))
        }
    }

    @Test func forcedFailuresAtTheSeam() throws {
        let sim = Self.box()
        sim.fail(.setValue, onCall: 2, errno: EIO)
        sim.fail(.request, onCall: 3, errno: EACCES)
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let trip = try chip.output(0, initial: false)
            try trip.set(true)                                          // setValue #1
            let e = #expect(throws: GPIOError.self) { try trip.set(false) } // setValue #2 fails
            #expect(e?.kind == .system(EIO))
            #expect(trip.value == true, "a failed write must not be reported as applied")
            #expect(sim.level(chip: "gpiochip0", offset: 0) == true)
            _ = try chip.input(2)                                       // request #2
            let p = #expect(throws: GPIOError.self) { _ = try chip.input(3) } // request #3 fails
            #expect(p?.kind == .permission)
            #expect(p!.description.contains("gpio group"))
        }
    }

    @Test func aPulseWhoseReleaseFailsIsReportedNotHidden() throws {
        let sim = Self.box()
        sim.fail(.setValue, onCall: 2, errno: EIO)
        try GPIOSimulator.with(sim) {
            let trip = try GPIOChip("gpiochip0").output(0, initial: false)
            #expect(throws: GPIOError.self) { try trip.pulse(widthMilliseconds: 5) }
            #expect(trip.value == true)
        }
    }

    @Test func listsLinesForCommissioning() throws {
        let sim = Self.box()
        try GPIOSimulator.with(sim) {
            let chip = try GPIOChip("gpiochip0")
            let trip = try chip.output(0, consumer: "lmc", initial: false)
            let lines = try chip.lines()
            #expect(lines.count == 6)
            #expect(lines[0] == LineInfo(offset: 0, name: "TRIP", consumer: "lmc", isOutput: true))
            #expect(lines[2] == LineInfo(offset: 2, name: "BRK_AUX", consumer: nil, isOutput: false))
            _ = trip
        }
    }

    @Test func withoutASimulatorTheRealLibraryIsCalled() {
        // No GPIO chip on CI: libgpiod itself answers "not found", through the same code path.
        let e = #expect(throws: GPIOError.self) { _ = try GPIOChip("/dev/gpiochip-lmc-test-absent") }
        #expect(e?.kind == .chipNotFound)
    }
}
