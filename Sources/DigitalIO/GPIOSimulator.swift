import LMCPlatform
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

#if LMC_TEST_HOOKS

/// A stand-in for the kernel's GPIO character device, bound at DigitalIO's one C seam.
///
/// Machines without a GPIO chip (CI, a developer's laptop, the demo) bind a simulator with
/// ``with(_:_:)``; every DigitalIO call made inside then goes to it instead of libgpiod. It keeps the
/// physical level of each line, records each output transition with its monotonic time (so a test can
/// check a trip pulse's width), lets a test drive inputs (an auxiliary contact, S0 pulses), and can
/// force an errno on the Nth call of a given kind.
public final class GPIOSimulator: Sendable {
    public struct Chip: Sendable {
        public var name: String
        public var label: String
        public var lineNames: [String]
        public init(name: String, label: String = "lmc-sim", lineNames: [String]) {
            self.name = name
            self.label = label
            self.lineNames = lineNames
        }
    }

    public enum Call: String, Sendable, CaseIterable {
        case chipOpen, getLine, request, getValue, setValue, eventWait, eventRead
    }

    /// One change of a line's physical level.
    public struct Transition: Sendable, Equatable {
        public var high: Bool
        public var monotonicNs: UInt64
    }

    private struct Line {
        var name: String
        var consumer: String?
        var output = false
        var activeLow = false
        var edges = false
        var high = false
        var events: [(rising: Bool, ts: UInt64)] = []
        var transitions: [Transition] = []
    }

    private struct Rule { var call: Call; var nth: Int; var times: Int; var errno: Int32 }

    private struct State {
        var chips: [Chip]
        var open: Set<Int> = []
        var lines: [[Line]]
        var counts: [Call: Int] = [:]
        var rules: [Rule] = []
    }

    private let state: Mutex<State>

    public init(chips: [Chip]) {
        state = Mutex(State(chips: chips, lines: chips.map { $0.lineNames.map { Line(name: $0) } }))
    }

    @TaskLocal static var current: GPIOSimulator?

    /// Runs `body` with every DigitalIO call going to this simulator.
    public static func with<R>(_ sim: GPIOSimulator, _ body: () throws -> R) rethrows -> R {
        try $current.withValue(sim) { try body() }
    }

    public static func with<R>(_ sim: GPIOSimulator, _ body: () async throws -> R) async rethrows -> R {
        try await $current.withValue(sim) { try await body() }
    }

    // MARK: Test controls

    /// Forces `errno` on the `nth` call of `call` (1-based, counted since the simulator was made) and the
    /// `times − 1` following ones.
    public func fail(_ call: Call, onCall nth: Int = 1, times: Int = 1, errno e: Int32) {
        state.withLock { $0.rules.append(Rule(call: call, nth: nth, times: times, errno: e)) }
    }

    public func calls(of call: Call) -> Int { state.withLock { $0.counts[call, default: 0] } }

    /// Drives an input line from outside (a contact closing, a pulse arriving), at its physical level.
    public func drive(chip: String, offset: Int, high: Bool) {
        state.withLock { s in
            guard let c = s.chips.firstIndex(where: { $0.name == chip }) else { return }
            var l = s.lines[c][offset]
            guard l.high != high else { return }
            l.high = high
            let now = monotonicNanoseconds()
            l.transitions.append(Transition(high: high, monotonicNs: now))
            if l.edges {
                // Edge sense is logical: an active-low line rises when the physical level falls.
                l.events.append((rising: high != l.activeLow, ts: now))
            }
            s.lines[c][offset] = l
        }
    }

    /// The physical level of a line now.
    public func level(chip: String, offset: Int) -> Bool {
        state.withLock { s in
            guard let c = s.chips.firstIndex(where: { $0.name == chip }) else { return false }
            return s.lines[c][offset].high
        }
    }

    /// Every change of the line's physical level so far.
    public func transitions(chip: String, offset: Int) -> [Transition] {
        state.withLock { s in
            guard let c = s.chips.firstIndex(where: { $0.name == chip }) else { return [] }
            return s.lines[c][offset].transitions
        }
    }

    /// Who holds the line (nil if free).
    public func consumer(chip: String, offset: Int) -> String? {
        state.withLock { s in
            guard let c = s.chips.firstIndex(where: { $0.name == chip }) else { return nil }
            return s.lines[c][offset].consumer
        }
    }

    // MARK: Seam side (handles are small integers dressed as pointers)

    private static func chipHandle(_ c: Int) -> OpaquePointer { OpaquePointer(bitPattern: (c + 1) << 16)! }
    private static func lineHandle(_ c: Int, _ o: Int) -> OpaquePointer { OpaquePointer(bitPattern: ((c + 1) << 16) | (o + 1))! }
    private static func decode(_ p: OpaquePointer) -> (chip: Int, line: Int) {
        let v = Int(bitPattern: UnsafeRawPointer(p))
        return ((v >> 16) - 1, (v & 0xFFFF) - 1)
    }

    private func intercept(_ s: inout State, _ call: Call) -> Bool {
        s.counts[call, default: 0] += 1
        let n = s.counts[call]!
        for r in s.rules where r.call == call && n >= r.nth && n - r.nth < r.times {
            errno = r.errno
            return true
        }
        return false
    }

    func chipOpen(_ descr: String) -> OpaquePointer? {
        state.withLock { s in
            if intercept(&s, .chipOpen) { return nil }
            let name = descr.hasPrefix("/dev/") ? String(descr.dropFirst(5)) : descr
            // Like gpiod_chip_open_lookup: a path, a name, a label or a number.
            let byNumber = Int(name).flatMap { s.chips.indices.contains($0) ? $0 : nil }
            guard let c = byNumber ?? s.chips.firstIndex(where: { $0.name == name || $0.label == name }) else {
                errno = ENOENT
                return nil
            }
            s.open.insert(c)
            return Self.chipHandle(c)
        }
    }

    func chipClose(_ chip: OpaquePointer) {
        state.withLock { s in
            let c = Self.decode(chip).chip
            s.open.remove(c)
            for i in s.lines[c].indices { s.lines[c][i].consumer = nil; s.lines[c][i].edges = false }
        }
    }

    func chipName(_ chip: OpaquePointer) -> String { state.withLock { $0.chips[Self.decode(chip).chip].name } }
    func chipLabel(_ chip: OpaquePointer) -> String { state.withLock { $0.chips[Self.decode(chip).chip].label } }
    func chipLineCount(_ chip: OpaquePointer) -> Int { state.withLock { $0.lines[Self.decode(chip).chip].count } }

    func chipGetLine(_ chip: OpaquePointer, _ offset: Int) -> OpaquePointer? {
        state.withLock { s in
            if intercept(&s, .getLine) { return nil }
            let c = Self.decode(chip).chip
            guard offset >= 0 && offset < s.lines[c].count else { errno = EINVAL; return nil }
            return Self.lineHandle(c, offset)
        }
    }

    func lineName(_ line: OpaquePointer) -> String? {
        let (c, o) = Self.decode(line)
        return state.withLock { s in s.lines[c][o].name.isEmpty ? nil : s.lines[c][o].name }
    }

    func lineConsumer(_ line: OpaquePointer) -> String? {
        let (c, o) = Self.decode(line)
        return state.withLock { $0.lines[c][o].consumer }
    }

    func lineIsOutput(_ line: OpaquePointer) -> Bool {
        let (c, o) = Self.decode(line)
        return state.withLock { $0.lines[c][o].output }
    }

    func request(_ line: OpaquePointer, consumer: String, flags: Int32, output: Bool, edges: Bool, initial: Int32) -> Int32 {
        let (c, o) = Self.decode(line)
        return state.withLock { s in
            if intercept(&s, .request) { return -1 }
            var l = s.lines[c][o]
            guard l.consumer == nil else { errno = EBUSY; return -1 }
            l.consumer = consumer
            l.output = output
            l.edges = edges
            l.activeLow = flags & Seam.flagActiveLow != 0
            l.events = []
            if output {
                let high = (initial != 0) != l.activeLow
                if high != l.high || l.transitions.isEmpty {
                    l.high = high
                    l.transitions.append(Transition(high: high, monotonicNs: monotonicNanoseconds()))
                }
            }
            s.lines[c][o] = l
            return 0
        }
    }

    func release(_ line: OpaquePointer) {
        let (c, o) = Self.decode(line)
        state.withLock { s in
            s.lines[c][o].consumer = nil
            s.lines[c][o].edges = false
        }
    }

    func getValue(_ line: OpaquePointer) -> Int32 {
        let (c, o) = Self.decode(line)
        return state.withLock { s in
            if intercept(&s, .getValue) { return -1 }
            let l = s.lines[c][o]
            guard l.consumer != nil else { errno = EPERM; return -1 }
            return (l.high != l.activeLow) ? 1 : 0
        }
    }

    func setValue(_ line: OpaquePointer, _ value: Int32) -> Int32 {
        let (c, o) = Self.decode(line)
        return state.withLock { s in
            if intercept(&s, .setValue) { return -1 }
            var l = s.lines[c][o]
            guard l.consumer != nil, l.output else { errno = EPERM; return -1 }
            let high = (value != 0) != l.activeLow
            if high != l.high {
                l.high = high
                l.transitions.append(Transition(high: high, monotonicNs: monotonicNanoseconds()))
            }
            s.lines[c][o] = l
            return 0
        }
    }

    func eventWait(_ line: OpaquePointer, _ timeoutNs: Int) -> Int32 {
        let (c, o) = Self.decode(line)
        let deadline = monotonicNanoseconds() + UInt64(max(timeoutNs, 0))
        while true {
            let r: Int32? = state.withLock { s in
                if intercept(&s, .eventWait) { return -1 }
                guard s.lines[c][o].edges else { errno = EPERM; return -1 }
                return s.lines[c][o].events.isEmpty ? nil : 1
            }
            if let r { return r }
            if monotonicNanoseconds() >= deadline { return 0 }
            usleep(500)
        }
    }

    func eventRead(_ line: OpaquePointer) -> (rising: Bool, timestampNs: UInt64)? {
        let (c, o) = Self.decode(line)
        return state.withLock { s in
            if intercept(&s, .eventRead) { return nil }
            guard !s.lines[c][o].events.isEmpty else { errno = EAGAIN; return nil }
            let e = s.lines[c][o].events.removeFirst()
            return (e.rising, e.ts)
        }
    }
}

#else
/// Release builds (no LMC_TEST_HOOKS): there is no simulator, and the seam's backend is always libgpiod.
/// The type stays, without values, so the seam keeps one shape.
public enum GPIOSimulator: Sendable {
    static var current: GPIOSimulator? { nil }
}
#endif
