/// A minimal JSON writer for `--json` output: no Foundation in the binary for a few objects
/// (docs/design.md §7: every megabyte counts on the box).
enum JSON {
    // Sendable said, not inferred: Swift 6.2 (Debian's, the arm64 build) reports inferring it through
    // [(String, Value)] as a circular reference in debug builds.
    indirect enum Value: Sendable {
        case string(String)
        case number(Double)
        case int(Int)
        case bool(Bool)
        case null
        case array([Value])
        case object([(String, Value)])
    }

    static func render(_ v: Value) -> String {
        var out = ""
        write(v, into: &out)
        return out
    }

    private static func write(_ v: Value, into out: inout String) {
        switch v {
        case .string(let s): quote(s, into: &out)
        case .number(let d): out += d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)") : "null"
        case .int(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                write(e, into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, (k, e)) in o.enumerated() {
                if i > 0 { out += "," }
                quote(k, into: &out)
                out += ":"
                write(e, into: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
}
