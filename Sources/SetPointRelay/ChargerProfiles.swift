import ModbusBridge
import TOMLReader

/// Charger set-point maps as data (`hw/chargers/NAME.toml`); the format is in hw/README.md.
public enum ChargerProfiles {
    public static func load(_ nameOrPath: String) -> Result<ChargerProfile, ConfigErrors> {
        ProfileFiles.load(nameOrPath, folder: "chargers", kind: "charger", parse: parse)
    }

    public static func parse(_ text: String, name: String) -> Result<ChargerProfile, ConfigErrors> {
        let top: Section
        switch Section.root(of: text) {
        case .failure(let e): return .failure(e)
        case .success(let s): top = s
        }
        let issues = top.issues
        let description = top.string("description", default: name)!
        let unit = top.number("default_unit", default: 1, min: 0, max: 255)!
        let minA = top.number("min_current_a", default: 6, min: 0)!
        let maxA = top.number("max_current_a", default: 32, positive: true)!
        let validity = top.number("validity_s", default: 60, min: 1, max: 65_535)!
        func register(_ key: String, required: Bool = false) -> ChargerProfile.Register? {
            guard let t = top.table(key) else {
                if required { issues.add(nil, key, "missing: the [\(key)] table is required") }
                return nil
            }
            defer { t.rejectUnknownKeys() }
            guard let address = t.number("address", min: 0, max: 65_534) else { return nil }
            let type = t.string("type", default: "u16", oneOf: RegisterCodec.ValueType.allCases.map(\.rawValue))!
            let words = t.string("word_order", default: "big", oneOf: ["big", "little"])!
            let function = t.number("function", default: 16)!
            if function != 6 && function != 16 { issues.add(t.table.line(of: "function"), "\(key).function", "= \(Int(function)): must be 6 or 16") }
            let codec = RegisterCodec(.init(rawValue: type)!, wordOrder: .init(rawValue: words)!)
            if function == 6 && codec.registerCount > 1 {
                issues.add(t.table.line(of: "function"), "\(key).function", "function 6 writes one register; a \(type) needs function 16")
            }
            let ma = t.bool("milliamps", default: false)
            return ChargerProfile.Register(address: UInt16(address), codec: codec, writeFunction: Int(function), milliamps: ma)
        }
        let limit = register("limit", required: true)
        let safe = register("safe_current")
        let timeout = register("timeout")
        let readback = register("readback")
        let life = register("life_bit")
        top.rejectUnknownKeys()
        guard issues.items.isEmpty, let limit else { return .failure(ConfigErrors(issues: issues.items)) }
        return .success(ChargerProfile(name: name, description: description, defaultUnit: UInt8(unit), minCurrentA: minA, maxCurrentA: maxA,
                                       limit: limit, safeCurrent: safe, timeout: timeout, validitySeconds: validity,
                                       readback: readback, lifeBit: life))
    }
}
