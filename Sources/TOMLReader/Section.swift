// The checking reader over a TOML table (lmc.toml and the hw/ profiles).

/// Reads one table, remembering which keys were asked for, so that an unknown key — a typo that would
/// silently drop a threshold — is an error.
///
/// A section of lmc.toml has a `schema` (its table path without indexes, "" at the top): then every key
/// read must be declared in `ConfigKeys`, which gives its type, range, choices and default; the caller
/// passes none of these (a `default:` only for a key whose declared default is `.contextual`; asserted).
/// Profile files (hw/meters, hw/chargers) have no schema and pass them at the call.
public struct Section {
    public let table: TOMLTable
    public let path: String
    public let line: Int?
    public let issues: IssueList
    public let schema: String?
    /// The declarations the schema names (nil for a profile section).
    public let declarations: KeySchema?
    private let used = Box()

    final class Box { var keys = Set<String>() }

    public init(_ table: TOMLTable, path: String, line: Int?, issues: IssueList, schema: String? = nil, declarations: KeySchema? = nil) {
        self.table = table
        self.path = path
        self.line = line
        self.issues = issues
        self.schema = declarations == nil ? nil : schema
        self.declarations = declarations
    }

    /// The top-level section of a TOML text, or its syntax error as a config issue.
    public static func root(of text: String, schema: String? = nil, declarations: KeySchema? = nil) -> Result<Section, ConfigErrors> {
        do {
            return .success(Section(try TOML.parse(text), path: "", line: nil, issues: IssueList(), schema: schema, declarations: declarations))
        } catch {
            return .failure(ConfigErrors(issues: [ConfigIssue(line: error.line, path: "(syntax)", message: error.message)]))
        }
    }

    private func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    private func childSchema(_ k: String) -> String? { schema.map { $0.isEmpty ? k : "\($0).\(k)" } }

    /// The declaration of `k` in this section's schema (nil for a profile section). Reading an undeclared
    /// key is a programming error: the declarations are the single list of keys. Debug builds (the tests)
    /// stop; a release build refuses the config with an internal error rather than crash on a reload.
    private func declaration(_ k: String, _ type: (ConfigKey.ValueType) -> Bool) -> ConfigKey? {
        guard let schema else { return nil }
        guard let d = declarations?.find(table: schema, name: k) else {
            programmingError(k, "is read but not declared in ConfigKeys")
            return nil
        }
        guard type(d.type) else {
            programmingError(k, "is read as another type than its declaration in ConfigKeys")
            return nil
        }
        return d
    }

    private func programmingError(_ k: String, _ why: String) {
        assertionFailure("lmc.toml key \(key(k)) \(why)")
        issues.add(line, key(k), "internal error: \(why) (please report)")
    }

    public func has(_ k: String) -> Bool { table[k] != nil }

    /// The default to use: the declaration's, or (contextual defaults only) the caller's.
    private func declaredDefault<T>(_ d: ConfigKey, _ given: T?, _ pick: (ConfigKey.Default) -> T?) -> (value: T?, required: Bool) {
        switch d.defaultValue {
        case .required: assert(given == nil, "\(d.table).\(d.name) is required"); return (nil, true)
        case .none: assert(given == nil, "\(d.table).\(d.name) has no default"); return (nil, false)
        case .contextual: return (given, false)
        default:
            assert(given == nil, "\(d.table).\(d.name): its default is declared in ConfigKeys")
            return (pick(d.defaultValue), false)
        }
    }

    public func number(_ k: String, default d: Double? = nil, min: Double? = nil, max: Double? = nil, positive: Bool = false) -> Double? {
        var (d, min, max, positive, required) = (d, min, max, positive, d == nil)
        if let decl = declaration(k, { $0 == .number }) {
            assert(min == nil && max == nil && !positive, "\(decl.table).\(decl.name): its range is declared in ConfigKeys")
            (d, required) = declaredDefault(decl, d) { if case .number(let x) = $0 { x } else { nil } }
            (min, max, positive) = (decl.min, decl.max, decl.positive)
        }
        used.keys.insert(k)
        guard let v = table[k] else {
            if required { issues.add(line, key(k), "missing (required)") }
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

    /// Profile sections only: a number that may be left out.
    public func optionalNumber(_ k: String, min: Double? = nil, max: Double? = nil, positive: Bool = false) -> Double? {
        assert(schema == nil, "in lmc.toml, number(_:) reads an optional key (declared default .none)")
        return has(k) ? number(k, default: nil, min: min, max: max, positive: positive) : { used.keys.insert(k); return nil }()
    }

    public func string(_ k: String, default d: String? = nil, oneOf choices: [String]? = nil) -> String? {
        var (d, choices, required) = (d, choices, d == nil)
        if let decl = declaration(k, { if case .string = $0 { true } else if case .choice = $0 { true } else { false } }) {
            assert(choices == nil, "\(decl.table).\(decl.name): its choices are declared in ConfigKeys")
            (d, required) = declaredDefault(decl, d) { if case .string(let s) = $0 { s } else { nil } }
            if case .choice(let c) = decl.type { choices = c }
        }
        used.keys.insert(k)
        guard let v = table[k] else {
            if required { issues.add(line, key(k), "missing (required)") }
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

    /// A boolean; in lmc.toml its default is declared (pass none).
    public func bool(_ k: String, default given: Bool? = nil) -> Bool {
        var d = given
        if let decl = declaration(k, { $0 == .bool }) {
            d = declaredDefault(decl, given) { if case .bool(let b) = $0 { b } else { nil } }.value
        }
        guard let d else { programmingError(k, "is a bool without a default"); return false }
        used.keys.insert(k)
        guard let v = table[k] else { return d }
        guard case .bool(let b) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected true or false")
            return d
        }
        return b
    }

    public func numbers(_ k: String, count: Int? = nil) -> [Double]? {
        var count = count
        if let decl = declaration(k, { if case .numbers = $0 { true } else { false } }), case .numbers(let c) = decl.type {
            assert(count == nil, "\(decl.table).\(decl.name): its count is declared in ConfigKeys")
            count = c
        }
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

    public func table(_ k: String) -> Section? {
        _ = declaration(k) { $0 == .table }
        used.keys.insert(k)
        guard let v = table[k] else { return nil }
        guard case .table(let t) = v else {
            issues.add(table.line(of: k), key(k), "is \(v.typeName), expected a [\(key(k))] table")
            return nil
        }
        return Section(t, path: key(k), line: table.line(of: k), issues: issues, schema: childSchema(k), declarations: declarations)
    }

    /// The table, or an empty one when the file has none, so that a missing table and a table without
    /// a key give the same (declared) default.
    public func tableOrEmpty(_ k: String) -> Section {
        table(k) ?? Section(TOMLTable(), path: key(k), line: nil, issues: issues, schema: childSchema(k), declarations: declarations)
    }

    public func tables(_ k: String) -> [Section] {
        _ = declaration(k) { $0 == .tables }
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
            return Section(t, path: "\(key(k))[\(i)]", line: t.entries.first?.line ?? table.line(of: k), issues: issues, schema: childSchema(k), declarations: declarations)
        }
    }

    /// A declared key whose value the caller reads directly from `table` (arrays of strings).
    public func claim(_ k: String) {
        _ = declaration(k) { _ in true }
        used.keys.insert(k)
    }

    /// For keys that are not this table's but are answered with their own message (keys that moved).
    public func markUsed(_ k: String) { used.keys.insert(k) }

    /// Call last: every key not asked for is reported, with the near declared keys ("did you mean") or
    /// the keys that are allowed.
    public func rejectUnknownKeys() {
        var known = used.keys
        if let schema {
            // Keys in a measurement point's unit are known by the one read (limit_kva), not limit_U.
            for d in declarations?.keys(in: schema) ?? [] where !d.name.hasSuffix("_U") { known.insert(d.name) }
        }
        for e in table.entries where !used.keys.contains(e.key) {
            let near = known.sorted().filter { similar($0, e.key) }
            let hint = near.isEmpty ? "allowed here: \(known.sorted().joined(separator: ", "))" : "did you mean \(near.joined(separator: " or "))?"
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
