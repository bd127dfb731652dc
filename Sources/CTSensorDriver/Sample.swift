/// Why a measurement can or cannot be trusted. A bad sample is never turned into zero or into the
/// last good value without saying so (STYLE.md: "absence of data is never zero").
public enum Quality: Sendable, Equatable, CustomStringConvertible {
    case good
    /// Derived rather than measured (apparent power from nominal voltage on a CT-only meter, S0 average).
    case estimated(String)
    case bad(BadReason)

    public enum BadReason: Sendable, Equatable, CustomStringConvertible {
        case timeout, crc, exception(UInt8), disconnected, invalidReply(String)
        case notFinite(String), outOfRange(String), implausibleStep(String), frozen(polls: Int), stale
        public var description: String {
            switch self {
            case .timeout: "timeout"
            case .crc: "CRC error"
            case .exception(let c): "Modbus exception 0x\(String(c, radix: 16))"
            case .disconnected: "disconnected"
            case .invalidReply(let why): "invalid reply: \(why)"
            case .notFinite(let q): "\(q) is NaN or infinite"
            case .outOfRange(let why): "out of range: \(why)"
            case .implausibleStep(let why): "implausible step: \(why)"
            case .frozen(let n): "frozen for \(n) polls"
            case .stale: "stale"
            }
        }
    }

    public var isUsable: Bool {
        switch self {
        case .good, .estimated: true
        case .bad: false
        }
    }

    public var description: String {
        switch self {
        case .good: "good"
        case .estimated(let how): "estimated (\(how))"
        case .bad(let r): "bad: \(r)"
        }
    }
}

/// One reading of a quantity, stamped with the monotonic time at which the device's reply arrived —
/// not the time we copied it (EVerest PR #2673: a dead meter re-published with fresh timestamps).
public struct Sample: Sendable, Equatable {
    /// SI units: A, V, W, VA, Hz, Wh.
    public var value: Double
    public var monotonicNs: UInt64
    public var quality: Quality

    public init(value: Double, monotonicNs: UInt64, quality: Quality) {
        self.value = value
        self.monotonicNs = monotonicNs
        self.quality = quality
    }
}
