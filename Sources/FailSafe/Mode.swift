/// The supervisor's operating modes (DESIGN.md §4). The supervisor itself — pure logic that takes
/// time and inputs as arguments — is built on these in its own issue; the console and the log show a
/// mode together with the reason it was entered.
public enum Mode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Just started or power restored: holding the safe set point until enough good samples.
    case startup = "STARTUP"
    /// Measuring and relaying normally.
    case normal = "NORMAL"
    /// Working on reduced information (one of two redundant meters lost); alarm raised.
    case degraded = "DEGRADED"
    /// Blind or deaf: the safe set point applies.
    case failsafe = "FAILSAFE"
    /// The site imports above its set point beyond tolerance; trip pending.
    case nonResponse = "NON_RESPONSE"
    /// The site breaker is open.
    case tripped = "TRIPPED"
    /// Too many trips: no automatic re-close until an engineer resets it.
    case lockout = "LOCKOUT"

    public var description: String { rawValue }
}

/// A mode with the reason it was entered, as shown on the console and written to the events ring.
public struct ModeState: Sendable, Equatable {
    public var mode: Mode
    public var reason: String
    public var sinceMonotonicNs: UInt64

    public init(mode: Mode, reason: String, sinceMonotonicNs: UInt64) {
        self.mode = mode
        self.reason = reason
        self.sinceMonotonicNs = sinceMonotonicNs
    }
}
