/// One thing wrong with a config file: where (line and key path), the value, and why.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var line: Int?
    public var path: String
    public var message: String

    public var description: String {
        (line.map { "line \($0): " } ?? "") + "\(path): \(message)"
    }
}

/// Collects issues so `lmc config check` can print all of them at once, like `nginx -t`.
final class IssueList {
    var items: [ConfigIssue] = []
    func add(_ line: Int?, _ path: String, _ message: String) { items.append(ConfigIssue(line: line, path: path, message: message)) }
}

/// Reads one table, remembering which keys were asked for, so that an unknown key — a typo that would
/// silently drop a threshold — is an error.
struct Section {
    let table: TOMLTable
    let path: String
    let line: Int?
    let issues: IssueList
    private let used = Box()

    final class Box { var keys = Set<String>() }

    init(_ table: TOMLTable, path: String, line: Int?, issues: IssueList) {
        self.table = table
        self.path = path
        self.line = line
        self.issues = issues
    }

    /// The top-level section of a TOML text, or its syntax error as a config issue.
    static func root(of text: String) -> Result<Section, ConfigErrors> {
        do {
            return .success(Section(try TOML.parse(text), path: "", line: nil, issues: IssueList()))
        } catch {
            return .failure(ConfigErrors(issues: [ConfigIssue(line: error.line, path: "(syntax)", message: error.message)]))
        }
    }

    private func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    func has(_ k: String) -> Bool { table[k] != nil }

    func number(_ k: String, default d: Double? = nil, min: Double? = nil, max: Double? = nil, positive: Bool = false) -> Double? {
        used.keys.insert(k)
        guard let v = table[k] else {
            if d == nil { issues.add(line, key(k), "missing (required)") }
            return d
        }
        let x: Double
        switch v {
        case .integer(let i): x = Double(i)
        case .float(let f): x = f
        default:
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected a number")
            return d
        }
        if positive && x <= 0 { issues.add(table.line(of: k), key(k), "= \(x): must be positive"); return d }
        if let min, x < min { issues.add(table.line(of: k), key(k), "= \(x): must be at least \(min)"); return d }
        if let max, x > max { issues.add(table.line(of: k), key(k), "= \(x): must be at most \(max)"); return d }
        return x
    }

    func optionalNumber(_ k: String, min: Double? = nil, max: Double? = nil, positive: Bool = false) -> Double? {
        has(k) ? number(k, default: nil, min: min, max: max, positive: positive) : { used.keys.insert(k); return nil }()
    }

    func string(_ k: String, default d: String? = nil, oneOf choices: [String]? = nil) -> String? {
        used.keys.insert(k)
        guard let v = table[k] else {
            if d == nil { issues.add(line, key(k), "missing (required)") }
            return d
        }
        guard case .string(let s) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected a string in quotes")
            return d
        }
        if let choices, !choices.contains(s) {
            issues.add(table.line(of: k), key(k), "= \"\(s)\": must be one of \(choices.map { "\"\($0)\"" }.joined(separator: ", "))")
            return d
        }
        return s
    }

    func bool(_ k: String, default d: Bool) -> Bool {
        used.keys.insert(k)
        guard let v = table[k] else { return d }
        guard case .bool(let b) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected true or false")
            return d
        }
        return b
    }

    func numbers(_ k: String, count: Int? = nil) -> [Double]? {
        used.keys.insert(k)
        guard let v = table[k] else { return nil }
        guard case .array(let items) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected an array of numbers")
            return nil
        }
        var out: [Double] = []
        for (i, item) in items.enumerated() {
            switch item {
            case .integer(let n): out.append(Double(n))
            case .float(let f): out.append(f)
            default:
                issues.add(table.line(of: k), "\(key(k))[\(i)]", "is \(item.typeName), expected a number")
                return nil
            }
        }
        if let count, out.count != count {
            issues.add(table.line(of: k), key(k), "has \(out.count) values, expected \(count)")
            return nil
        }
        return out
    }

    func table(_ k: String) -> Section? {
        used.keys.insert(k)
        guard let v = table[k] else { return nil }
        guard case .table(let t) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected a [\(key(k))] table")
            return nil
        }
        return Section(t, path: key(k), line: table.line(of: k), issues: issues)
    }

    func tables(_ k: String) -> [Section] {
        used.keys.insert(k)
        guard let v = table[k] else { return [] }
        guard case .array(let items) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected [[\(key(k))]] tables")
            return []
        }
        return items.enumerated().compactMap { i, item in
            guard case .table(let t) = item else {
                issues.add(table.line(of: k), "\(key(k))[\(i)]", "is \(item.typeName), expected a table")
                return nil
            }
            return Section(t, path: "\(key(k))[\(i)]", line: t.entries.first?.line ?? table.line(of: k), issues: issues)
        }
    }

    /// For keys read directly from `table`.
    func markUsed(_ k: String) { used.keys.insert(k) }

    /// Call last: every key not asked for is reported with the keys that are allowed.
    func rejectUnknownKeys() {
        for e in table.entries where !used.keys.contains(e.key) {
            let near = used.keys.sorted().filter { similar($0, e.key) }
            let hint = near.isEmpty ? "allowed here: \(used.keys.sorted().joined(separator: ", "))" : "did you mean \(near.joined(separator: " or "))?"
            issues.add(e.line, key(e.key), "unknown key (\(hint))")
        }
    }
}

/// A typo is close: same after dropping one character, or shares a long prefix.
private func similar(_ a: String, _ b: String) -> Bool {
    if a == b { return false }
    let x = Array(a), y = Array(b)
    let prefix = zip(x, y).prefix { $0 == $1 }.count
    if prefix >= max(4, min(x.count, y.count) - 2) { return true }
    if abs(x.count - y.count) > 1 { return false }
    var diff = 0, i = 0, j = 0
    while i < x.count && j < y.count {
        if x[i] != y[j] {
            diff += 1
            if x.count > y.count { i += 1 } else if y.count > x.count { j += 1 } else { i += 1; j += 1 }
        } else { i += 1; j += 1 }
    }
    return diff + (x.count - i) + (y.count - j) <= 1
}
