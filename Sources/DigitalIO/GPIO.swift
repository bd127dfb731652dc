#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed GPIO operation: what was tried, on which chip and line, and why.
public struct GPIOError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No chip by that name, path, label or number.
        case chipNotFound
        /// The offset is past the chip's last line.
        case noSuchLine(count: Int)
        /// Another consumer holds the line (EBUSY).
        case busy(holder: String?)
        /// Not allowed: not in the gpio group, or not requested in that direction.
        case permission
        case system(Int32)
    }

    public var kind: Kind
    public var operation: String
    public var chip: String

    public var description: String {
        let why: String
        switch kind {
        case .chipNotFound: why = "no such GPIO chip (list them with `lmc gpio info` or `ls /dev/gpiochip*`)"
        case .noSuchLine(let n): why = "no such line (the chip has lines 0–\(n - 1))"
        case .busy(let holder): why = "line is busy\(holder.map { " (held by \"\($0)\")" } ?? "") — stop the other user first"
        case .permission: why = "permission denied (is the service user in the gpio group?)"
        case .system(let e): why = "\(String(cString: strerror(e))) (errno \(e))"
        }
        return "\(operation) on \(chip): \(why)"
    }

    static func from(errno e: Int32, _ op: String, _ chip: String) -> GPIOError {
        let kind: Kind
        switch e {
        case ENOENT, ENODEV: kind = .chipNotFound
        case EBUSY: kind = .busy(holder: nil)
        case EACCES, EPERM: kind = .permission
        default: kind = .system(e)
        }
        return GPIOError(kind: kind, operation: op, chip: chip)
    }
}

/// Electrical options of a requested line.
public struct LineOptions: Sendable, Equatable {
    public enum Bias: String, Sendable, CaseIterable { case asIs = "as-is", disabled, pullUp = "pull-up", pullDown = "pull-down" }
    public enum Drive: String, Sendable, CaseIterable { case pushPull = "push-pull", openDrain = "open-drain", openSource = "open-source" }

    /// Logical 1 is the low physical level (e.g. a normally-closed contact pulled up).
    public var activeLow: Bool
    public var bias: Bias
    public var drive: Drive

    public init(activeLow: Bool = false, bias: Bias = .asIs, drive: Drive = .pushPull) {
        self.activeLow = activeLow
        self.bias = bias
        self.drive = drive
    }

    var flags: Int32 {
        var f: Int32 = 0
        if activeLow { f |= Seam.flagActiveLow }
        switch bias {
        case .asIs: break
        case .disabled: f |= Seam.flagBiasDisable
        case .pullUp: f |= Seam.flagPullUp
        case .pullDown: f |= Seam.flagPullDown
        }
        switch drive {
        case .pushPull: break
        case .openDrain: f |= Seam.flagOpenDrain
        case .openSource: f |= Seam.flagOpenSource
        }
        return f
    }
}

/// What one line looks like from outside, for `lmc gpio info`.
public struct LineInfo: Sendable, Equatable {
    public var offset: Int
    public var name: String?
    public var consumer: String?
    public var isOutput: Bool
}

/// A GPIO chip (`/dev/gpiochipN`). The corresponding C function is `gpiod_chip_open_lookup`.
public final class GPIOChip {
    private let handle: OpaquePointer
    /// The backend the chip was opened on (nil: libgpiod).
    let sim: GPIOSimulator?
    /// The kernel name, e.g. "gpiochip0".
    public let name: String
    /// The driver's label, e.g. "pinctrl-bcm2711".
    public let label: String
    public let lineCount: Int

    /// Opens a chip by path (`/dev/gpiochip0`), name (`gpiochip0`), label or number.
    public init(_ chip: String) throws(GPIOError) {
        let sim = GPIOSimulator.current
        guard let h = Seam.chipOpen(chip, sim) else { throw GPIOError.from(errno: errno, "open chip", chip) }
        self.sim = sim
        handle = h
        name = Seam.chipName(h, sim)
        label = Seam.chipLabel(h, sim)
        lineCount = Seam.chipLineCount(h, sim)
    }

    deinit { Seam.chipClose(handle, sim) }

    private func line(_ offset: Int, _ op: String) throws(GPIOError) -> OpaquePointer {
        guard offset >= 0 && offset < lineCount else {
            throw GPIOError(kind: .noSuchLine(count: lineCount), operation: "\(op) line \(offset)", chip: name)
        }
        guard let l = Seam.chipGetLine(handle, offset, sim) else { throw GPIOError.from(errno: errno, "\(op) line \(offset)", name) }
        return l
    }

    /// Name, consumer and direction of every line (`gpiod_line_name`, `gpiod_line_consumer`).
    public func lines() throws(GPIOError) -> [LineInfo] {
        var out: [LineInfo] = []
        for o in 0..<lineCount {
            let l = try line(o, "inspect")
            out.append(LineInfo(offset: o, name: Seam.lineName(l, sim), consumer: Seam.lineConsumer(l, sim), isOutput: Seam.lineIsOutput(l, sim)))
        }
        return out
    }

    /// Requests an input line; with `edges`, rising and falling edges are queued by the kernel with
    /// timestamps (`gpiod_line_request_both_edges_events_flags`), else it is read on demand
    /// (`gpiod_line_request_input_flags`).
    public func input(_ offset: Int, consumer: String = "lmc", options: LineOptions = .init(), edges: Bool = false) throws(GPIOError) -> InputLine {
        let l = try line(offset, "request input")
        let rc = edges ? Seam.requestBothEdges(l, consumer, options.flags, sim) : Seam.requestInput(l, consumer, options.flags, sim)
        if rc == -1 { throw requestError(l, offset, "request input") }
        return InputLine(chip: self, line: l, offset: offset, edges: edges)
    }

    /// Requests an output line, driven to `initial` (logical) at once (`gpiod_line_request_output_flags`).
    public func output(_ offset: Int, consumer: String = "lmc", options: LineOptions = .init(), initial: Bool) throws(GPIOError) -> OutputLine {
        let l = try line(offset, "request output")
        if Seam.requestOutput(l, consumer, options.flags, initial ? 1 : 0, sim) == -1 {
            throw requestError(l, offset, "request output")
        }
        return OutputLine(chip: self, line: l, offset: offset, value: initial)
    }

    private func requestError(_ l: OpaquePointer, _ offset: Int, _ op: String) -> GPIOError {
        var e = GPIOError.from(errno: errno, "\(op) line \(offset)", name)
        if case .busy = e.kind { e.kind = .busy(holder: Seam.lineConsumer(l, sim)) }
        return e
    }
}

/// An edge seen on an input line.
public struct Edge: Sendable, Equatable {
    public var rising: Bool
    /// Kernel timestamp (CLOCK_MONOTONIC on current kernels), in nanoseconds.
    public var timestampNs: UInt64
}

/// A requested input line. Released on deinit (`gpiod_line_release`).
public final class InputLine {
    private let chip: GPIOChip
    private let line: OpaquePointer
    public let offset: Int
    public let edges: Bool

    init(chip: GPIOChip, line: OpaquePointer, offset: Int, edges: Bool) {
        self.chip = chip
        self.line = line
        self.offset = offset
        self.edges = edges
    }

    deinit { Seam.release(line, chip.sim) }

    /// The logical value (`gpiod_line_get_value`).
    public func value() throws(GPIOError) -> Bool {
        let v = Seam.getValue(line, chip.sim)
        if v == -1 { throw GPIOError.from(errno: errno, "read line \(offset)", chip.name) }
        return v == 1
    }

    /// Waits up to `timeoutMilliseconds` for an edge (`gpiod_line_event_wait`, `gpiod_line_event_read`);
    /// nil on timeout. The line must have been requested with `edges: true`.
    public func nextEdge(timeoutMilliseconds: Int) throws(GPIOError) -> Edge? {
        let w = Seam.eventWait(line, timeoutMilliseconds * 1_000_000, chip.sim)
        if w == 0 { return nil }
        if w == -1 { throw GPIOError.from(errno: errno, "wait for edge on line \(offset)", chip.name) }
        guard let e = Seam.eventRead(line, chip.sim) else { throw GPIOError.from(errno: errno, "read edge on line \(offset)", chip.name) }
        return Edge(rising: e.rising, timestampNs: e.timestampNs)
    }
}

/// A requested output line. Released on deinit; the kernel then keeps the last level, so callers set
/// a safe level first.
public final class OutputLine {
    private let chip: GPIOChip
    private let line: OpaquePointer
    public let offset: Int
    /// The logical value last written successfully.
    public private(set) var value: Bool

    init(chip: GPIOChip, line: OpaquePointer, offset: Int, value: Bool) {
        self.chip = chip
        self.line = line
        self.offset = offset
        self.value = value
    }

    deinit { Seam.release(line, chip.sim) }

    /// Sets the logical value (`gpiod_line_set_value`).
    public func set(_ on: Bool) throws(GPIOError) {
        if Seam.setValue(line, on ? 1 : 0, chip.sim) == -1 { throw GPIOError.from(errno: errno, "set line \(offset) to \(on ? 1 : 0)", chip.name) }
        value = on
    }

    /// Drives the line to logical 1 for `widthMilliseconds`, then back to 0 — a breaker trip or close
    /// coil pulse. Blocks for the width. If setting it back fails the error is thrown and the line is
    /// left active: the caller must treat that as a failed output.
    public func pulse(widthMilliseconds: Int) throws(GPIOError) {
        try set(true)
        var request = timespec(tv_sec: widthMilliseconds / 1000, tv_nsec: (widthMilliseconds % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
        try set(false)
    }
}
