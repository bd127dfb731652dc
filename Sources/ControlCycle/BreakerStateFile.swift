import FailSafe

/// `breakers.state` in the log directory: the breaker memory that outlives `lmc run` (docs/ringlog.md).
/// Written (atomically, off the control thread) whenever a trip, an open, a lockout or a close changes
/// it; read once at start. Plain text, one fact per line, tab-separated:
///
///     # lmc breaker state: written by lmc run, read at its start
///     hub	lockout	3 trips within 3600 s; last: non-response: imports 310 kW against 150 kW for 30 s
///     hub	trip	1764412345.2
///
/// `lockout`, `open` or `tripping` with its reason; `trip` with the UTC time (seconds) of a trip still
/// inside the trip window. Times are stored as wall-clock times and read back as ages, so a restart or
/// a reboot (a new monotonic clock) keeps them; a trip that seems to lie in the future counts as now.
public enum BreakerStateFile {
    public static let name = "breakers.state"

    public static func encode(_ memory: [String: BreakerMemory], wallSeconds: Double) -> String {
        var lines = ["# lmc breaker state: written by lmc run, read at its start"]
        for (site, m) in memory.sorted(by: { $0.key < $1.key }) {
            if let state = m.state { lines.append("\(site)\t\(state.rawValue)\t\(clean(m.reason))") }
            for age in m.tripAges.sorted(by: >) {
                let t = ((wallSeconds - age) * 10).rounded() / 10
                lines.append("\(site)\ttrip\t\(t)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The memory, and a line for each line that could not be read (it is left out, never guessed).
    public static func decode(_ text: String, wallSeconds: Double) -> (memory: [String: BreakerMemory], problems: [String]) {
        var memory: [String: BreakerMemory] = [:]
        var problems: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            guard f.count == 3, !f[0].isEmpty else { problems.append("line \(i + 1): not 'site<TAB>fact<TAB>value'"); continue }
            var m = memory[f[0]] ?? BreakerMemory(state: nil)
            if f[1] == "trip" {
                guard let t = Double(f[2]), t.isFinite else { problems.append("line \(i + 1): trip time '\(f[2].prefix(40))' is not a number"); continue }
                m.tripAges.append(max(0, wallSeconds - t))
            } else if let state = BreakerMemory.State(rawValue: f[1]) {
                m.state = state
                m.reason = f[2]
            } else {
                problems.append("line \(i + 1): '\(f[1].prefix(40))' is not lockout, open, tripping or trip")
                continue
            }
            memory[f[0]] = m
        }
        return (memory, problems)
    }

    private static func clean(_ s: String) -> String {
        String(s.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\r" { s = s.dropLast() }
        return s
    }
}
