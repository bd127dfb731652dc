import DigitalIO
import FailSafe
import LMCPlatform
import Synchronization

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

/// The breaker's own thread. The control loop posts a command and goes on; the coil pulse (up to
/// `pulse_ms`, 10 s at most) runs here, never on the control thread. The loop reads the auxiliary
/// contact itself (one line read) and, from here, whether the last command could not be carried out.
///
/// The driver's lines are used from two threads: the coils only here, the auxiliary contact only by
/// the loop — separate line requests, which the kernel serves independently.
public final class BreakerWorker: @unchecked Sendable {
    public let driver: BreakerDriver
    private struct State { var queue: [BreakerCommand] = []; var busy = false; var failure: String?; var done = 0 }
    private let state = Mutex(State())
    private let loop = LoopThread()

    public init(_ driver: BreakerDriver) { self.driver = driver }

    public func start() { loop.start { [self] in run() } }

    /// Waits for a pulse in progress to end (the lines are released after it, so a new driver on the
    /// same lines can take them).
    public func stop() { loop.stop() }

    /// Queues a command; carried out in order, at once unless a pulse is still running.
    public func post(_ command: BreakerCommand) { state.withLock { $0.queue.append(command) } }

    /// Why the last command could not be carried out (nil: it was, or none was given yet). Cleared by
    /// the next command that succeeds.
    public var failure: String? { state.withLock { $0.failure } }

    /// True while a command is queued or its pulse runs.
    public var busy: Bool { state.withLock { $0.busy || !$0.queue.isEmpty } }

    /// Commands carried out so far (with or without success).
    public var commandsDone: Int { state.withLock { $0.done } }

    /// The auxiliary contact: true closed, false open, nil not wired.
    public func isClosed() throws(GPIOError) -> Bool? { try driver.isClosed() }

    private func run() {
        while !loop.isStopping || busy {
            let next = state.withLock { s -> BreakerCommand? in
                guard !s.queue.isEmpty else { return nil }
                s.busy = true
                return s.queue.removeFirst()
            }
            guard let command = next else { usleep(2_000); continue }
            var failure: String? = nil
            do { try driver.execute(command) } catch { failure = "\(command == .trip ? "trip" : "close") coil: \(error)" }
            state.withLock { $0.busy = false; $0.failure = failure; $0.done += 1 }
        }
    }
}
