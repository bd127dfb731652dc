import DigitalIO
import FailSafe

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the site breaker's lines are wired.
public struct BreakerWiring: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        public var chip: String
        public var offset: Int
        public var activeLow: Bool
        public init(chip: String = "gpiochip0", offset: Int, activeLow: Bool = false) {
            self.chip = chip
            self.offset = offset
            self.activeLow = activeLow
        }
    }

    /// Output to the trip coil relay.
    public var trip: Line
    /// Output to the close coil relay (nil: closing is manual).
    public var close: Line?
    /// Input from the breaker's auxiliary contact, logical 1 = closed (nil: not wired).
    public var auxiliary: Line?
    /// Pulse width for the coils; 0 = latched (the output stays active until the opposite command).
    public var pulseMilliseconds: Int

    public init(trip: Line, close: Line? = nil, auxiliary: Line? = nil, pulseMilliseconds: Int = 200) {
        self.trip = trip
        self.close = close
        self.auxiliary = auxiliary
        self.pulseMilliseconds = pulseMilliseconds
    }
}

/// The thin GPIO side of the supervisor's breaker commands. Outputs are put in their inactive state as
/// soon as they are requested, so a restart never leaves a pulse coil energised — except a latched trip
/// (pulse_ms = 0) whose breaker reads open: that trip was held, and a restart does not release it.
public final class BreakerDriver {
    public let wiring: BreakerWiring
    private var chips: [String: GPIOChip] = [:]
    private let tripLine: OutputLine
    private let closeLine: OutputLine?
    private let auxLine: InputLine?

    public init(_ wiring: BreakerWiring, consumer: String = "lmc-breaker") throws(GPIOError) {
        self.wiring = wiring
        var chips: [String: GPIOChip] = [:]
        func chip(_ name: String) throws(GPIOError) -> GPIOChip {
            if let c = chips[name] { return c }
            let c = try GPIOChip(name)
            chips[name] = c
            return c
        }
        // The auxiliary contact is read before anything is assumed: a latched trip (pulse_ms = 0) whose
        // breaker is open when lmc starts was held by the process before this one, and stays held.
        if let a = wiring.auxiliary {
            auxLine = try chip(a.chip).input(a.offset, consumer: consumer + "-aux", options: .init(activeLow: a.activeLow))
        } else {
            auxLine = nil
        }
        let holdTrip = wiring.pulseMilliseconds == 0 && (try? auxLine?.value()) == false
        tripLine = try chip(wiring.trip.chip).output(wiring.trip.offset, consumer: consumer + "-trip",
                                                      options: .init(activeLow: wiring.trip.activeLow), initial: holdTrip)
        if let c = wiring.close {
            closeLine = try chip(c.chip).output(c.offset, consumer: consumer + "-close", options: .init(activeLow: c.activeLow), initial: false)
        } else {
            closeLine = nil
        }
        self.chips = chips
    }

    /// Carries out a supervisor command: a pulse on the coil's line (or a latch, with the other
    /// line released first).
    public func execute(_ command: BreakerCommand) throws(GPIOError) {
        switch command {
        case .trip:
            if wiring.pulseMilliseconds > 0 {
                try tripLine.pulse(widthMilliseconds: wiring.pulseMilliseconds)
            } else {
                try closeLine?.set(false)
                try tripLine.set(true)
            }
        case .close:
            guard let closeLine else { return }
            if wiring.pulseMilliseconds > 0 {
                try closeLine.pulse(widthMilliseconds: wiring.pulseMilliseconds)
            } else {
                try tripLine.set(false)
                try closeLine.set(true)
            }
        }
    }

    /// The auxiliary contact: true closed, false open, nil not wired.
    public func isClosed() throws(GPIOError) -> Bool? {
        try auxLine?.value()
    }
}
