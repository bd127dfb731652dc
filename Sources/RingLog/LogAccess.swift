#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the DNO's SSH account may run (`lmc log ssh-command`, the sshd ForceCommand) and the time
/// syntax of the log commands. Pure, so it can be fuzzed (lmc-fuzz ssh, lmc-fuzz time).
public enum LogAccess {
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    static let allowedCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:T ")

    /// Splits and checks SSH_ORIGINAL_COMMAND: plain words only, from the allowed commands and options.
    /// Returns the words after "log".
    public static func check(_ text: String) -> Result<[String], Refusal> {
        if text.isEmpty { return .failure(.init("no command given")) }
        if let bad = text.first(where: { !allowedCharacters.contains($0) }) {
            return .failure(.init("character '\(bad)' is not allowed (no shell here)"))
        }
        var words = text.split(separator: " ").map(String.init)
        if words.first == "lmc" { words.removeFirst() }
        guard words.first == "log", words.count >= 2 else { return .failure(.init("only 'log …' commands are allowed")) }
        words.removeFirst()
        switch words[0] {
        case "info":
            guard words.count == 1 || words == ["info", "--json"] else { return .failure(.init("'log info' takes no arguments but --json")) }
        case "export", "audit", "plot", "trips":
            let flags: Set<String> = words[0] == "audit" || words[0] == "trips" ? ["--json"] : []
            let options: Set<String> = switch words[0] {
            case "export": ["--ring", "--from", "--to", "--format", "--trip"]
            case "trips": []
            case "audit": ["--day", "--month"]
            default: ["--from", "--to", "--width"]
            }
            var i = 1
            while i < words.count {
                if flags.contains(words[i]) { i += 1; continue }
                guard options.contains(words[i]), i + 1 < words.count else {
                    return .failure(.init("'\(words[i])' is not an allowed option of log \(words[0])"))
                }
                i += 2
            }
        default:
            return .failure(.init("'log \(words[0])' is not allowed"))
        }
        return .success(words)
    }

    /// "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" (UTC, 1970 to 2200) as Unix seconds; nil for anything
    /// else, including a day the month does not have.
    public static func parseUTC(_ text: String) -> Int? {
        let parts = text.split(separator: "T", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2 else { return nil }
        func numbers(_ s: Substring, _ sep: Character, _ widths: [Int]) -> [Int]? {
            let f = s.split(separator: sep, omittingEmptySubsequences: false)
            guard widths.contains(f.count) else { return nil }
            var out: [Int] = []
            for x in f {
                guard !x.isEmpty, x.count <= 4, x.allSatisfy(\.isASCII), let v = Int(x), v >= 0 else { return nil }
                out.append(v)
            }
            return out
        }
        // Years up to 2200: nanoseconds since 1970 must fit in 64 bits (until 2262) wherever a time is used.
        guard let d = numbers(parts[0], "-", [3]), (1970...2200).contains(d[0]), (1...12).contains(d[1]) else { return nil }
        // A day the month does not have (2026-02-31) is refused, not shifted into the next month.
        let leap = d[0] % 4 == 0 && (d[0] % 100 != 0 || d[0] % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][d[1] - 1]
        guard (1...days).contains(d[2]) else { return nil }
        var t = [0, 0, 0]
        if parts.count == 2 {
            guard let hms = numbers(parts[1], ":", [2, 3]), hms[0] <= 23, hms[1] <= 59, hms.count == 2 || hms[2] <= 59 else { return nil }
            t = hms + (hms.count == 2 ? [0] : [])
        }
        var tmv = tm()
        tmv.tm_year = Int32(d[0] - 1900)
        tmv.tm_mon = Int32(d[1] - 1)
        tmv.tm_mday = Int32(d[2])
        tmv.tm_hour = Int32(t[0])
        tmv.tm_min = Int32(t[1])
        tmv.tm_sec = Int32(t[2])
        return Int(timegm(&tmv))
    }
}
