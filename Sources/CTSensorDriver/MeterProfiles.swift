import ModbusBridge
import TOMLReader

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Meter register maps as data (`hw/meters/NAME.toml`); the format is in hw/README.md.
public enum MeterProfiles {
    /// Loads a profile by name (`eastron-sdm630`) from the search path, or from a path to a .toml file.
    public static func load(_ nameOrPath: String) -> Result<MeterProfile, ConfigErrors> {
        ProfileFiles.load(nameOrPath, folder: "meters", kind: "meter", parse: parse)
    }

    /// Profile names found on the search path.
    public static func available() -> [String] { ProfileFiles.available(in: "meters") }

    public static func parse(_ text: String, name: String) -> Result<MeterProfile, ConfigErrors> {
        let top: Section
        switch Section.root(of: text) {
        case .failure(let e): return .failure(e)
        case .success(let s): top = s
        }
        let issues = top.issues
        let description = top.string("description", default: name)!
        let function = top.string("function", oneOf: ["input", "holding"]) ?? "input"
        let type = top.string("type", default: "f32", oneOf: RegisterCodec.ValueType.allCases.map(\.rawValue))!
        let words = top.string("word_order", default: "big", oneOf: ["big", "little"])!
        let bytes = top.string("byte_order", default: "big", oneOf: ["big", "little"])!
        let maxRead = top.number("max_registers_per_read", default: 100, min: 2, max: 125)!
        let maxGap = top.number("max_gap_registers", default: 8, min: 0, max: 123)!
        var specs: [RegisterSpec] = []
        for r in top.tables("register") {
            let q = r.string("quantity", oneOf: Quantity.allCases.map(\.rawValue)).flatMap(Quantity.init(rawValue:))
            let address = r.number("address", min: 0, max: 65_534)
            let t = r.string("type", default: type, oneOf: RegisterCodec.ValueType.allCases.map(\.rawValue))!
            let wo = r.string("word_order", default: words, oneOf: ["big", "little"])!
            let bo = r.string("byte_order", default: bytes, oneOf: ["big", "little"])!
            let scale = r.number("scale", default: 1)!
            if scale == 0 { issues.add(r.table.line(of: "scale"), "\(r.path).scale", "= 0: a scale must not be zero") }
            r.rejectUnknownKeys()
            if let q, let address {
                if specs.contains(where: { $0.quantity == q }) { issues.add(r.line, "\(r.path).quantity", "\(q.rawValue) is mapped twice") }
                specs.append(RegisterSpec(quantity: q, address: UInt16(address),
                                          codec: RegisterCodec(.init(rawValue: t)!, wordOrder: .init(rawValue: wo)!, byteOrder: .init(rawValue: bo)!, scale: scale)))
            }
        }
        if specs.isEmpty { issues.add(nil, "register", "a profile needs at least one [[register]]") }
        top.rejectUnknownKeys()
        guard issues.items.isEmpty else { return .failure(ConfigErrors(issues: issues.items)) }
        return .success(MeterProfile(name: name, description: description, table: function == "holding" ? .holding : .input,
                                     registers: specs, maxRegistersPerRead: Int(maxRead), maxGapRegisters: Int(maxGap)))
    }
}
