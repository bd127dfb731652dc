import CTSensorDriver
import ModbusBridge

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Meter register maps as data (`hw/meters/NAME.toml`); the format is in hw/README.md.
public enum MeterProfiles {
    /// Where profiles are looked for, in order: $LMC_HW_DIR, /etc/lmc/hw, /usr/share/lmc/hw, ./hw.
    public static var searchPath: [String] {
        var dirs: [String] = []
        if let env = getenv("LMC_HW_DIR") { dirs.append(String(cString: env)) }
        return dirs + ["/etc/lmc/hw", "/usr/share/lmc/hw", "hw"]
    }

    /// Loads a profile by name (`eastron-sdm630`) from the search path, or from a path to a .toml file.
    public static func load(_ nameOrPath: String) -> Result<MeterProfile, ConfigErrors> {
        loadProfile(nameOrPath, folder: "meters", parse: parse) { "no such meter profile (looked in \($0)); available: \(available().joined(separator: ", "))" }
    }

    /// Profile names found on the search path.
    public static func available() -> [String] {
        var names = Set<String>()
        for dir in searchPath {
            guard let d = opendir("\(dir)/meters") else { continue }
            defer { closedir(d) }
            while let e = readdir(d) {
                let n = withUnsafePointer(to: e.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
                if n.hasSuffix(".toml") { names.insert(String(n.dropLast(5))) }
            }
        }
        return names.sorted()
    }

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

/// Finds `folder/NAME.toml` on the search path (or takes a .toml path) and parses it; every issue
/// is prefixed with the file's path.
func loadProfile<P>(_ nameOrPath: String, folder: String, parse: (String, String) -> Result<P, ConfigErrors>,
                    notFound: (String) -> String) -> Result<P, ConfigErrors> {
    let candidates = nameOrPath.hasSuffix(".toml") ? [nameOrPath] : MeterProfiles.searchPath.map { "\($0)/\(folder)/\(nameOrPath).toml" }
    for path in candidates {
        guard let text = readText(path) else { continue }
        let name = String(path.split(separator: "/").last!.dropLast(5))
        return parse(text, name).mapError { e in
            ConfigErrors(issues: e.issues.map { var i = $0; i.path = "\(path): \(i.path)"; return i })
        }
    }
    return .failure(ConfigErrors(issues: [ConfigIssue(line: nil, path: nameOrPath, message: notFound(candidates.joined(separator: ", ")))]))
}

/// A whole text file, or nil when it cannot be opened.
public func readText(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 16_384)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        bytes += buf[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
