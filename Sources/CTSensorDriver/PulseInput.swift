import DigitalIO

/// An S0 pulse output wired to a GPIO input: edges from the kernel (with its timestamps) feed a
/// PulseMeter. Call `drain` from the bus thread or the tick; it never blocks longer than asked.
public final class PulseInput {
    public let name: String
    private let line: InputLine
    public private(set) var meter: PulseMeter
    /// S0 pulses are closures of an opto-coupler: count rising (or, for active-low wiring, falling) edges.
    public let countRising: Bool

    /// Keeps the chip open as long as the line (a chip opened only for this input).
    private let chip: GPIOChip

    public init(name: String, chip: GPIOChip, offset: Int, activeLow: Bool = false, meter: PulseMeter) throws(GPIOError) {
        self.name = name
        self.chip = chip
        self.line = try chip.input(offset, consumer: "lmc-s0-\(name)", options: .init(activeLow: activeLow, bias: .pullUp), edges: true)
        self.meter = meter
        self.countRising = true
    }

    /// Takes every queued edge (waiting at most `timeoutMilliseconds` for the first), returns how many
    /// pulses were counted. Edge times are the kernel's, in seconds.
    @discardableResult
    public func drain(timeoutMilliseconds: Int = 0) throws(GPIOError) -> Int {
        var n = 0
        var wait = timeoutMilliseconds
        while let e = try line.nextEdge(timeoutMilliseconds: wait) {
            wait = 0
            if e.rising == countRising {
                meter.pulse(at: Double(e.timestampNs) / 1e9)
                n += 1
            }
        }
        return n
    }
}
