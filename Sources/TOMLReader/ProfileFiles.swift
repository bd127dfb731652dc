#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The hw/ profile files (meter and charger maps as data): where they are looked for, and how one is
/// found and read with its issues named by its path.
public enum ProfileFiles {
    /// Where profiles are looked for, in order: $LMC_HW_DIR, /etc/lmc/hw, /usr/share/lmc/hw, ./hw.
    public static var searchPath: [String] {
        var dirs: [String] = []
        if let env = getenv("LMC_HW_DIR") { dirs.append(String(cString: env)) }
        return dirs + ["/etc/lmc/hw", "/usr/share/lmc/hw", "hw"]
    }

    /// Profile names found on the search path.
    public static func available(in folder: String) -> [String] {
        var names = Set<String>()
        for dir in searchPath {
            guard let d = opendir("\(dir)/\(folder)") else { continue }
            defer { closedir(d) }
            while let e = readdir(d) {
                let n = withUnsafePointer(to: e.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
                if n.hasSuffix(".toml") { names.insert(String(n.dropLast(5))) }
            }
        }
        return names.sorted()
    }

    /// Finds `folder/NAME.toml` on the search path (or takes a .toml path) and parses it; every issue
    /// is prefixed with the file's path. `kind` names the profile in the error when it is not found
    /// ("meter", "charger"): the error lists the profiles installed, or says that none are and how to
    /// install them.
    public static func load<P>(_ nameOrPath: String, folder: String, kind: String,
                               parse: (String, String) -> Result<P, ConfigErrors>) -> Result<P, ConfigErrors> {
        let candidates = nameOrPath.hasSuffix(".toml") ? [nameOrPath] : searchPath.map { "\($0)/\(folder)/\(nameOrPath).toml" }
        for path in candidates {
            guard let text = readText(path) else { continue }
            let name = String(path.split(separator: "/").last!.dropLast(5))
            return parse(text, name).mapError { e in
                ConfigErrors(issues: e.issues.map { var i = $0; i.path = "\(path): \(i.path)"; return i })
            }
        }
        let found = available(in: folder)
        let listed = found.isEmpty
            ? "no \(kind) profiles are installed there: install the lmc package, or set LMC_HW_DIR to a folder holding \(folder)/ (the source tree's hw)"
            : "available: \(found.joined(separator: ", "))"
        return .failure(ConfigErrors(issues: [ConfigIssue(line: nil, path: nameOrPath,
                                                          message: "no such \(kind) profile (looked in \(candidates.joined(separator: ", "))); \(listed)")]))
    }
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
