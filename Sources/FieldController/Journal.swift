import RingLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Levels for what `lmc run` writes to stderr, which systemd sends to the journal. Under systemd each
/// line starts with its sd-daemon(3) prefix (`<3>` … `<6>`), so `journalctl -p warning` shows trips,
/// failed trips, lockouts and fail-safe, `-p notice` adds mode changes, reloads and commands, and
/// routine lines stay at info. On a terminal the lines are plain. (docs/journal.md)
enum JournalPriority: Int, Comparable, CaseIterable, Sendable {
    case err = 3, warning = 4, notice = 5, info = 6

    var name: String {
        switch self {
        case .err: "err"
        case .warning: "warning"
        case .notice: "notice"
        case .info: "info"
        }
    }

    static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

enum Journal {
    /// Whether stderr is the journal: systemd sets JOURNAL_STREAM to the device and inode of the stream
    /// it connected (systemd.exec(5)); a child whose stderr was redirected elsewhere inherits the
    /// variable, so the descriptor itself must match.
    static let isJournal: Bool = streamIsJournal(getenv("JOURNAL_STREAM").map { String(cString: $0) }, fd: 2)

    static func streamIsJournal(_ variable: String?, fd: Int32) -> Bool {
        guard let variable else { return false }
        let parts = variable.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// The priority of an event of the events ring, from its kind and, where the kind alone does not
    /// say, its text (the text is what Runtime writes: "A → B: reason", "CODE subject: message",
    /// "site: trip (reason)").
    static func priority(of kind: EventRecord.Kind, _ text: String) -> JournalPriority {
        switch kind {
        case .breaker:
            // "hub: trip (reason)" — opening a breaker is the box's most serious act; closing is routine.
            return text.contains(": trip") ? .err : .notice
        case .alarmRaised:
            let code = text.prefix { $0 != " " }
            return ["TRIP_FAILED", "CLOSE_FAILED", "LOCKOUT"].contains(String(code)) ? .err : .warning
        case .alarmCleared:
            return .notice
        case .mode:
            // "NORMAL → FAILSAFE: reason": judged by the mode entered.
            let entered = text.firstRange(of: "→ ").map { text[$0.upperBound...].prefix { $0 != ":" && $0 != " " } } ?? ""
            switch entered {
            case "TRIPPED", "LOCKOUT": return .err
            case "FAILSAFE", "NON_RESPONSE": return .warning
            default: return .notice
            }
        case .config:
            return text.hasPrefix("reload refused") || text.contains("refus") ? .warning : .notice
        case .clockJump:
            return .warning
        case .log:
            return text.contains("overran") ? .warning : .info
        case .start, .stop, .command:
            return .notice
        }
    }

    /// The priority of a line `log(_:)` is given: an event's echo ("event KIND: text") by its kind,
    /// anything else by what it says.
    static func priority(ofLine message: String) -> JournalPriority {
        if message.hasPrefix("event ") {
            let rest = message.dropFirst(6)
            if let colon = rest.firstRange(of: ": "), let kind = EventRecord.Kind.allCases.first(where: { $0.name == rest[..<colon.lowerBound] }) {
                return priority(of: kind, String(rest[colon.upperBound...]))
            }
        }
        let m = message.lowercased()
        if ["not available", "not started", "failed", "refusing to start"].contains(where: m.contains) { return .err }
        if ["refused", "cannot", "moved aside", "simulated", "keeping"].contains(where: m.contains) { return .warning }
        return .info
    }

    /// The text as written to stderr: under the journal every line gets the prefix (journald reads the
    /// level line by line) and no "lmc: " (the journal names the unit and SyslogIdentifier=lmc).
    static func format(_ priority: JournalPriority, _ message: String, journal: Bool = isJournal) -> String {
        guard journal else { return "lmc: \(message)\n" }
        return message.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "<\(priority.rawValue)>\($0)\n" }.joined()
    }

    static func write(_ priority: JournalPriority, _ message: String) {
        writeToStandardError(format(priority, message))
    }
}

/// An event's line in the journal at the event's priority (what Runtime's `event()` echoes).
func journal(_ kind: EventRecord.Kind, _ text: String) {
    Journal.write(Journal.priority(of: kind, text), "event \(kind.name): \(text)")
}

private func writeToStandardError(_ string: String) {
    var s = string
    s.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
}
