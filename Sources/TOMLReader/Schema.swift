// What a config or profile reader checks values against, and how it reports what is wrong.

/// One key of lmc.toml, declared once: where it lives, what it takes, its default and one line of doc.
/// The reader (`Section`) takes ranges, choices and defaults from here, and may read no key that is not
/// declared; docs/config.md is kept in step by `ConfigKeyDocTests`.
public struct ConfigKey: Sendable {
    public enum ValueType: Sendable, Equatable {
        case number
        case string
        case bool
        /// One of these strings.
        case choice([String])
        /// An array of numbers (with this many values, when given).
        case numbers(count: Int?)
        /// An array of strings.
        case strings
        /// A `[table]` inside this one.
        case table
        /// `[[tables]]` inside this one.
        case tables
    }

    public enum Default: Sendable, Equatable {
        /// Must be given.
        case required
        /// May be left out; then it is not set.
        case none
        case number(Double)
        case string(String)
        case bool(Bool)
        /// An empty array.
        case empty
        /// Depends on other keys: the reader supplies it; the text is what the doc says.
        case contextual(String)
    }

    /// The table's path without array indexes: "" (top level), "failsafe", "site.charger",
    /// "measurement_point.upper".
    public var table: String
    /// The key; `_U` at the end stands for the unit of a measurement point's kind (`_a`, `_kva`, `_v`).
    public var name: String
    public var type: ValueType
    /// Unit of the value, for people ("s", "kW"); "" when it has none.
    public var unit: String
    public var min: Double?
    public var max: Double?
    /// Must be > 0.
    public var positive: Bool
    public var defaultValue: Default
    public var doc: String

    public init(table: String, name: String, type: ValueType, unit: String, min: Double?, max: Double?, positive: Bool,
                defaultValue: Default, doc: String) {
        self.table = table; self.name = name; self.type = type; self.unit = unit; self.min = min; self.max = max
        self.positive = positive; self.defaultValue = defaultValue; self.doc = doc
    }

    /// The default as docs/config.md writes it in the "default" column.
    public var docDefault: String {
        switch defaultValue {
        case .required: "required"
        case .none: "none"
        case .number(let x): "`\(formatNumber(x))`"
        case .string(let s): "`\"\(s)\"`"
        case .bool(let b): "`\(b)`"
        case .empty: "`[]`"
        case .contextual(let text): text
        }
    }

    /// The range as docs/config.md writes it ("0.05–60", "≥ 0", "> 0"), or nil without one.
    public var docRange: String? {
        switch (min, max, positive) {
        case (let lo?, let hi?, _): "\(formatNumber(lo))–\(formatNumber(hi))"
        case (let lo?, nil, _): "≥ \(formatNumber(lo))"
        case (nil, _, true): "> 0"
        default: nil
        }
    }
}

public func formatNumber(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(x)
}


/// One thing wrong with a config file: where (line and key path), the value, and why.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    public var line: Int?
    public var path: String
    public var message: String

    public init(line: Int?, path: String, message: String) { self.line = line; self.path = path; self.message = message }

    public var description: String {
        (line.map { "line \($0): " } ?? "") + "\(path): \(message)"
    }
}

/// Collects issues so `lmc config check` can print all of them at once, like `nginx -t`.
public final class IssueList {
    public var items: [ConfigIssue] = []
    public init() {}
    public func add(_ line: Int?, _ path: String, _ message: String) { items.append(ConfigIssue(line: line, path: path, message: message)) }
}

/// The declarations a `Section` reads against: lmc.toml's (`ConfigKeys` in LMCConfig). Profile files
/// (hw/meters, hw/chargers) have none: their readers pass defaults and ranges at the call.
public struct KeySchema: Sendable {
    public let all: [ConfigKey]
    private let index: [String: ConfigKey]

    public init(_ all: [ConfigKey]) {
        self.all = all
        index = Dictionary(all.map { ("\($0.table)|\($0.name)", $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The declaration of `name` in `table` ("limit_kva" finds "limit_U").
    public func find(table: String, name: String) -> ConfigKey? {
        if let k = index["\(table)|\(name)"] { return k }
        for u in ["_a", "_kva", "_v"] where name.hasSuffix(u) {
            if let k = index["\(table)|\(name.dropLast(u.count))_U"] { return k }
        }
        return nil
    }

    /// The keys declared for one table.
    public func keys(in table: String) -> [ConfigKey] { all.filter { $0.table == table } }
}

public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public init(issues: [ConfigIssue]) { self.issues = issues }
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}
