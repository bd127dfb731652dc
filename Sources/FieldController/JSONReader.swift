/// A small JSON reader for what lmc itself writes (the daemon's `status-json`, read by `lmc doctor`):
/// objects, arrays, strings with the escapes JSONWriter produces (and \uXXXX), numbers, true, false,
/// null. No Foundation in the binary for this (design.md §7). Depth is bounded.
enum JSONReader {
    indirect enum Value: Equatable {
        case string(String), number(Double), bool(Bool), null
        case array([Value]), object([String: Value])

        subscript(key: String) -> Value? { if case .object(let o) = self { o[key] } else { nil } }
        var string: String? { if case .string(let s) = self { s } else { nil } }
        var number: Double? { if case .number(let d) = self { d } else { nil } }
        var array: [Value]? { if case .array(let a) = self { a } else { nil } }
    }

    struct ParseError: Error, CustomStringConvertible {
        var offset: Int
        var description: String { "not JSON at byte \(offset)" }
    }

    static func parse(_ text: String) throws(ParseError) -> Value {
        var p = Parser(bytes: Array(text.utf8))
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.i == p.bytes.count else { throw ParseError(offset: p.i) }
        return v
    }

    private struct Parser {
        let bytes: [UInt8]
        var i = 0

        mutating func skipSpace() { while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 } }

        mutating func literal(_ word: String, _ v: Value) throws(ParseError) -> Value {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<i + w.count]) == w else { throw ParseError(offset: i) }
            i += w.count
            return v
        }

        mutating func value(depth: Int) throws(ParseError) -> Value {
            skipSpace()
            guard i < bytes.count, depth < 64 else { throw ParseError(offset: i) }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var o: [String: Value] = [:]
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skipSpace()
                    guard case .string(let k) = try value(depth: depth + 1) else { throw ParseError(offset: i) }
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw ParseError(offset: i) }
                    i += 1
                    o[k] = try value(depth: depth + 1)
                    skipSpace()
                    guard i < bytes.count else { throw ParseError(offset: i) }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                    throw ParseError(offset: i)
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [Value] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    a.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw ParseError(offset: i) }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    throw ParseError(offset: i)
                }
            case UInt8(ascii: "\""):
                i += 1
                var out: [UInt8] = []
                while i < bytes.count {
                    let c = bytes[i]
                    i += 1
                    if c == UInt8(ascii: "\"") { return .string(String(decoding: out, as: UTF8.self)) }
                    guard c == UInt8(ascii: "\\") else { out.append(c); continue }
                    guard i < bytes.count else { break }
                    let e = bytes[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard i + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16) else {
                            throw ParseError(offset: i)
                        }
                        i += 4
                        out += Array(String(Unicode.Scalar(code).map(Character.init) ?? "\u{FFFD}").utf8)
                    default: out.append(e)
                    }
                }
                throw ParseError(offset: i)
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default:
                let start = i
                while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
                guard i > start, let d = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else { throw ParseError(offset: start) }
                return .number(d)
            }
        }
    }
}
