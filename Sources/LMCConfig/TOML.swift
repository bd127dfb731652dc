/// A small TOML reader for lmc's configuration: tables, arrays of tables, dotted keys, strings,
/// integers, floats, booleans and arrays. Every value remembers its line, so an error can name the
/// key path, the line and the value. (No Foundation, no C++: the binary stays small, and each error
/// says exactly where it is.) Not supported, and reported as such: dates, inline tables, multi-line
/// strings.
public enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case array([TOMLValue])
    case table(TOMLTable)

    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .bool: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A table with its keys in file order and the line of each.
public struct TOMLTable: Sendable, Equatable {
    public var entries: [(key: String, value: TOMLValue, line: Int)] = []

    public static func == (a: TOMLTable, b: TOMLTable) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public subscript(key: String) -> TOMLValue? { entries.first { $0.key == key }?.value }
    public func line(of key: String) -> Int? { entries.first { $0.key == key }?.line }
    public var keys: [String] { entries.map(\.key) }

    mutating func set(_ key: String, _ value: TOMLValue, line: Int) {
        if let i = entries.firstIndex(where: { $0.key == key }) { entries[i] = (key, value, line) } else { entries.append((key, value, line)) }
    }
}

public struct TOMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

public enum TOML {
    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var root = TOMLTable()
        var current: [PathStep] = []
        var definedTables = Set<String>()
        var n = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            n += 1
            var p = Parser(chars: Array(raw.unicodeScalars), line: n)
            p.skipSpace()
            if p.atEnd || p.peek == "#" { continue }
            if p.peek == "[" {
                let isArray = p.peekAt(1) == "["
                p.advance(isArray ? 2 : 1)
                let keys = try p.key()
                p.skipSpace()
                guard p.expect("]") && (!isArray || p.expect("]")) else { throw TOMLError(line: n, message: "expected ']' to close the table header") }
                try p.endOfLine()
                let name = keys.joined(separator: ".")
                if isArray {
                    try appendTable(&root, keys, line: n)
                    // A new element: its sub-tables may be defined again.
                    definedTables = definedTables.filter { !$0.hasPrefix(name + ".") }
                    current = keys.map { .key($0) } + [.last]
                } else {
                    guard !definedTables.contains(name) else { throw TOMLError(line: n, message: "table [\(name)] is defined twice") }
                    definedTables.insert(name)
                    try ensureTable(&root, keys[...], line: n)
                    current = keys.map { .key($0) }
                }
                continue
            }
            let keys = try p.key()
            p.skipSpace()
            guard p.expect("=") else { throw TOMLError(line: n, message: "expected '=' after key '\(keys.joined(separator: "."))'") }
            p.skipSpace()
            let value = try p.value()
            try p.endOfLine()
            try insert(&root, path: current, keys: keys, value: value, line: n)
        }
        return root
    }

    enum PathStep { case key(String), last }

    private static func ensureTable(_ t: inout TOMLTable, _ keys: ArraySlice<String>, line: Int) throws(TOMLError) {
        guard let k = keys.first else { return }
        var child: TOMLTable
        switch t[k] {
        case nil: child = TOMLTable()
        case .table(let c)?: child = c
        case .array(var a)? where a.last.map({ if case .table = $0 { true } else { false } }) == true:
            guard case .table(var last) = a.removeLast() else { return }
            try ensureTable(&last, keys.dropFirst(), line: line)
            a.append(.table(last))
            t.set(k, .array(a), line: t.line(of: k)!)
            return
        case let v?: throw TOMLError(line: line, message: "'\(k)' is already \(v.typeName), not a table")
        }
        try ensureTable(&child, keys.dropFirst(), line: line)
        t.set(k, .table(child), line: t.line(of: k) ?? line)
    }

    private static func appendTable(_ t: inout TOMLTable, _ keys: [String], line: Int) throws(TOMLError) {
        if keys.count > 1 {
            let k = keys[0]
            switch t[k] {
            case nil:
                var c = TOMLTable()
                try appendTable(&c, Array(keys.dropFirst()), line: line)
                t.set(k, .table(c), line: line)
            case .table(var c)?:
                try appendTable(&c, Array(keys.dropFirst()), line: line)
                t.set(k, .table(c), line: t.line(of: k)!)
            case .array(var a)?:
                guard case .table(var last)? = a.last else { throw TOMLError(line: line, message: "'\(k)' is not an array of tables") }
                try appendTable(&last, Array(keys.dropFirst()), line: line)
                a[a.count - 1] = .table(last)
                t.set(k, .array(a), line: t.line(of: k)!)
            case let v?:
                throw TOMLError(line: line, message: "'\(k)' is already \(v.typeName), not a table")
            }
            return
        }
        let k = keys[0]
        switch t[k] {
        case nil: t.set(k, .array([.table(TOMLTable())]), line: line)
        case .array(var a)?:
            a.append(.table(TOMLTable()))
            t.set(k, .array(a), line: t.line(of: k)!)
        case let v?: throw TOMLError(line: line, message: "'\(k)' is already \(v.typeName), not an array of tables")
        }
    }

    private static func insert(_ t: inout TOMLTable, path: [PathStep], keys: [String], value: TOMLValue, line: Int) throws(TOMLError) {
        if let step = path.first {
            switch step {
            case .key(let k):
                switch t[k] {
                case .table(var c)?:
                    try insert(&c, path: Array(path.dropFirst()), keys: keys, value: value, line: line)
                    t.set(k, .table(c), line: t.line(of: k)!)
                case .array(var a)?:
                    guard case .table(var c)? = a.last else { throw TOMLError(line: line, message: "'\(k)' is not a table") }
                    let rest = Array(path.dropFirst())
                    let tail = rest.first.map { if case .last = $0 { true } else { false } } ?? false
                    try insert(&c, path: tail ? Array(rest.dropFirst()) : rest, keys: keys, value: value, line: line)
                    a[a.count - 1] = .table(c)
                    t.set(k, .array(a), line: t.line(of: k)!)
                default:
                    throw TOMLError(line: line, message: "'\(k)' is not a table")
                }
            case .last:
                try insert(&t, path: Array(path.dropFirst()), keys: keys, value: value, line: line)
            }
            return
        }
        if keys.count > 1 {
            let k = keys[0]
            var c: TOMLTable
            switch t[k] {
            case nil: c = TOMLTable()
            case .table(let x)?: c = x
            case let v?: throw TOMLError(line: line, message: "'\(k)' is already \(v.typeName), not a table")
            }
            try insert(&c, path: [], keys: Array(keys.dropFirst()), value: value, line: line)
            t.set(k, .table(c), line: t.line(of: k) ?? line)
            return
        }
        guard t[keys[0]] == nil else { throw TOMLError(line: line, message: "key '\(keys[0])' is set twice") }
        t.set(keys[0], value, line: line)
    }
}

private struct Parser {
    var chars: [Unicode.Scalar]
    var depth = 0
    static let maxArrayDepth = 8, maxKeyDepth = 16
    var i = 0
    let line: Int

    init(chars: [Unicode.Scalar], line: Int) {
        self.chars = chars
        self.line = line
    }

    var atEnd: Bool { i >= chars.count }
    var peek: Unicode.Scalar? { atEnd ? nil : chars[i] }
    func peekAt(_ k: Int) -> Unicode.Scalar? { i + k < chars.count ? chars[i + k] : nil }
    mutating func advance(_ k: Int = 1) { i += k }
    mutating func skipSpace() { while let c = peek, c == " " || c == "\t" { i += 1 } }
    mutating func expect(_ c: Unicode.Scalar) -> Bool {
        skipSpace()
        if peek == c { i += 1; return true }
        return false
    }

    func fail(_ m: String) -> TOMLError { TOMLError(line: line, message: m) }

    mutating func endOfLine() throws(TOMLError) {
        skipSpace()
        if atEnd || peek == "#" { return }
        throw fail("unexpected '\(String(String.UnicodeScalarView(chars[i...])))' after the value (one key = value per line)")
    }

    mutating func key() throws(TOMLError) -> [String] {
        var keys: [String] = []
        repeat {
            skipSpace()
            if peek == "\"" {
                keys.append(try basicString())
            } else {
                var k = ""
                while let c = peek, c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-" {
                    k.unicodeScalars.append(c)
                    i += 1
                }
                guard !k.isEmpty else { throw fail("expected a key, found '\(peek.map { String($0) } ?? "end of line")'") }
                keys.append(k)
            }
            skipSpace()
            guard keys.count <= Self.maxKeyDepth else { throw fail("keys nested deeper than \(Self.maxKeyDepth) levels") }
        } while peek == "." && { i += 1; return true }()
        return keys
    }

    mutating func basicString() throws(TOMLError) -> String {
        i += 1
        var s = ""
        while let c = peek {
            i += 1
            if c == "\"" { return s }
            if c == "\\" {
                guard let e = peek else { break }
                i += 1
                switch e {
                case "n": s += "\n"
                case "t": s += "\t"
                case "\"": s += "\""
                case "\\": s += "\\"
                default: throw fail("unsupported escape '\\\(e)' in a string")
                }
            } else {
                s.unicodeScalars.append(c)
            }
        }
        throw fail("string not closed with '\"' on this line")
    }

    mutating func value() throws(TOMLError) -> TOMLValue {
        skipSpace()
        guard let c = peek else { throw fail("missing value after '='") }
        switch c {
        case "\"":
            if peekAt(1) == "\"" && peekAt(2) == "\"" { throw fail("multi-line strings are not supported") }
            return .string(try basicString())
        case "'":
            i += 1
            var s = ""
            while let c = peek, c != "'" { s.unicodeScalars.append(c); i += 1 }
            guard peek == "'" else { throw fail("string not closed with \"'\" on this line") }
            i += 1
            return .string(s)
        case "[":
            // Nesting is bounded: each level is a recursion, and lmc's schema never nests deeper than 2.
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxArrayDepth else { throw fail("arrays nested deeper than \(Self.maxArrayDepth) levels") }
            i += 1
            var items: [TOMLValue] = []
            while true {
                skipSpace()
                if peek == "]" { i += 1; return .array(items) }
                if atEnd || peek == "#" { throw fail("arrays must be on one line") }
                items.append(try value())
                skipSpace()
                if peek == "," { i += 1; continue }
                if peek == "]" { i += 1; return .array(items) }
                throw fail("expected ',' or ']' in the array")
            }
        case "{":
            throw fail("inline tables are not supported: use a [table] header")
        default:
            var word = ""
            while let c = peek, c != " ", c != "\t", c != ",", c != "]", c != "#" { word.unicodeScalars.append(c); i += 1 }
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            let digits = word.replacingUnderscores()
            if let v = Int64(digits) { return .integer(v) }
            if digits.hasPrefix("0x"), let v = Int64(digits.dropFirst(2), radix: 16) { return .integer(v) }
            if let v = Double(digits), v.isFinite, digits.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true { return .float(v) }
            throw fail("'\(word)' is not a value (strings need quotes: \"\(word)\")")
        }
    }
}

extension String {
    func replacingUnderscores() -> String { String(unicodeScalars.filter { $0 != "_" }.map(Character.init)) }
}
