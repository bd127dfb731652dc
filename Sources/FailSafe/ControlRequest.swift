/// The control socket's requests (`lmc status`, `lmc override …` through /run/lmc/control.sock): one
/// line of words. Parsing is pure so that it can be fuzzed (lmc-fuzz control); permissions are the
/// socket's, acting is the daemon's.
public enum ControlRequest: Sendable, Equatable {
    case status, statusJSON, alarms
    case overrideSet(site: String, kW: Double, seconds: Double)
    case overrideClear(site: String)
    case resetLockout
    case testTrip(site: String)

    /// Longest override: a week. An operator who wants longer sets it again; nothing is held forever.
    public static let maxOverrideSeconds = 7 * 86_400.0
    public static let maxOverrideKW = 100_000.0

    /// Reading needs group lmc; changing needs lmc-admin.
    public var changes: Bool {
        switch self {
        case .status, .statusJSON, .alarms: false
        default: true
        }
    }

    public static func parse(_ line: String) -> Result<ControlRequest, Refusal> {
        let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        func site(_ s: String) -> Bool { !s.isEmpty && s.count <= 64 && s.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) } }
        switch (words.first ?? "", words.count) {
        case ("status", 1): return .success(.status)
        case ("status-json", 1): return .success(.statusJSON)
        case ("alarms", 1): return .success(.alarms)
        case ("override", 5) where words[1] == "set":
            guard site(words[2]) else { return .failure(.init("override set: '\(words[2])' is not a site id")) }
            guard let kw = Double(words[3]), kw.isFinite, (0...maxOverrideKW).contains(kw) else {
                return .failure(.init("override set: '\(words[3])' is not a power in kW (0–\(Int(maxOverrideKW)))"))
            }
            guard let s = Double(words[4]), s.isFinite, s > 0, s <= maxOverrideSeconds else {
                return .failure(.init("override set: '\(words[4])' is not a duration in seconds (up to \(Int(maxOverrideSeconds)), a week)"))
            }
            return .success(.overrideSet(site: words[2], kW: kw, seconds: s))
        case ("override", 3) where words[1] == "clear":
            guard site(words[2]) else { return .failure(.init("override clear: '\(words[2])' is not a site id")) }
            return .success(.overrideClear(site: words[2]))
        case ("reset-lockout", 1): return .success(.resetLockout)
        case ("test-trip", 2):
            guard site(words[1]) else { return .failure(.init("test-trip: '\(words[1])' is not a site id")) }
            return .success(.testTrip(site: words[1]))
        default:
            return .failure(.init("unknown request '\(String(line.prefix(80)))' (known: status, status-json, alarms, override set SITE KW SECONDS, override clear SITE, reset-lockout, test-trip SITE)"))
        }
    }

    /// The request as one line (what the CLI sends).
    public var line: String {
        switch self {
        case .status: "status"
        case .statusJSON: "status-json"
        case .alarms: "alarms"
        case .overrideSet(let s, let kw, let secs): "override set \(s) \(kw) \(secs)"
        case .overrideClear(let s): "override clear \(s)"
        case .resetLockout: "reset-lockout"
        case .testTrip(let s): "test-trip \(s)"
        }
    }

    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }
}

/// Refusals in the events ring and the journal: at most `burst` per user per `windowNs`; the rest are
/// counted and summed up in one event when the next window opens — nobody can flood the audit trail
/// (a ring of fixed size) with refused commands and push real events out of it. Pure.
public struct RefusalLimiter: Sendable {
    public var burst = 5
    public var windowNs: UInt64 = 60_000_000_000
    private var windows: [UInt32: (startNs: UInt64, logged: Int, suppressed: Int)] = [:]

    public init(burst: Int = 5, windowNs: UInt64 = 60_000_000_000) { self.burst = burst; self.windowNs = windowNs }

    /// Whether to log this refusal, and (when a window closes) how many were not logged in it.
    public mutating func admit(uid: UInt32, nowNs: UInt64) -> (log: Bool, suppressedBefore: Int?) {
        var w = windows[uid] ?? (nowNs, 0, 0)
        var summary: Int? = nil
        if nowNs &- w.startNs >= windowNs {
            summary = w.suppressed > 0 ? w.suppressed : nil
            w = (nowNs, 0, 0)
        }
        let log = w.logged < burst
        if log { w.logged += 1 } else { w.suppressed += 1 }
        windows[uid] = w
        if windows.count > 1024 { windows = windows.filter { nowNs &- $0.value.startNs < windowNs } }
        return (log, summary)
    }
}

