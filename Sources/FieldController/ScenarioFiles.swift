#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where `lmc simulate --scenario NAME` finds load profiles (scenarios/README.md): `$LMC_SCENARIOS`,
/// the package's `/usr/share/lmc/scenarios`, and in a development build the source tree's `scenarios/`.
/// Never the current directory: a name means the same file wherever the engineer happens to stand.
enum ScenarioFiles {
    static let installed = "/usr/share/lmc/scenarios"

    /// The source tree's folder, found from this file's path at build time. Only in debug builds: a
    /// release binary on a box must not look into whatever path the build machine had.
    static var sourceTree: String? {
        #if DEBUG
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count > 3 else { return nil }
        parts.removeLast(3)   // Sources/FieldController/ScenarioFiles.swift
        return parts.joined(separator: "/") + "/scenarios"
        #else
        return nil
        #endif
    }

    /// The directories searched, in order.
    static func searchPath(environment env: String? = getenv("LMC_SCENARIOS").map { String(cString: $0) }) -> [String] {
        var dirs: [String] = []
        if let env, !env.isEmpty { dirs.append(env) }
        dirs.append(installed)
        if let sourceTree { dirs.append(sourceTree) }
        return dirs
    }

    enum Resolution: Equatable {
        case found(String)
        /// No file of that name anywhere on the search path; the directories looked in.
        case notFound(searched: [String])
    }

    /// A path (anything with a `/`) is taken as given; a name, with or without `.csv`, is looked up.
    static func resolve(_ nameOrPath: String, searchPath dirs: [String] = searchPath()) -> Resolution {
        if nameOrPath.contains("/") { return .found(nameOrPath) }
        let file = nameOrPath.hasSuffix(".csv") ? nameOrPath : nameOrPath + ".csv"
        for dir in dirs where access(dir + "/" + file, R_OK) == 0 {
            return .found(dir + "/" + file)
        }
        return .notFound(searched: dirs)
    }

    /// Every scenario name on the search path with the directory it comes from; an earlier directory
    /// hides a later one's file of the same name, as `resolve` does.
    static func available(searchPath dirs: [String] = searchPath()) -> [(name: String, directory: String)] {
        var seen: Set<String> = []
        var out: [(String, String)] = []
        for dir in dirs {
            guard let d = opendir(dir) else { continue }
            var names: [String] = []
            while let e = readdir(d) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if n.hasSuffix(".csv") && !n.hasPrefix(".") { names.append(String(n.dropLast(4))) }
            }
            closedir(d)
            for n in names.sorted() where seen.insert(n).inserted { out.append((n, dir)) }
        }
        return out
    }

    /// For `lmc simulate --help` (fits 80 columns): the search path and what it holds now.
    static func helpText() -> String {
        // For the manual page (generate-manual reads --experimental-dump-help): what is true on a box,
        // not what the build machine happens to have.
        if CommandLine.arguments.contains("--experimental-dump-help") {
            return """
            Scenarios by name are looked up in $LMC_SCENARIOS, then in \(installed), where the
            package installs seed-example-day and semiurban-january.
            """
        }
        let env = getenv("LMC_SCENARIOS").map { String(cString: $0) }
        let dirs = searchPath(environment: env)
        var lines = ["Scenarios by name are looked up in, in order:"]
        for d in dirs {
            let why = d == installed ? "the package" : d == sourceTree ? "this build's source tree" : "$LMC_SCENARIOS"
            lines.append("  \(d)  (\(why))")
        }
        let found = available(searchPath: dirs)
        if found.isEmpty {
            lines.append("None found there now.")
        } else {
            lines.append("Found now:")
            let w = found.map(\.name.count).max() ?? 0
            for (name, dir) in found { lines.append("  " + name + String(repeating: " ", count: w - name.count) + "  \(dir)") }
        }
        return lines.joined(separator: "\n")
    }
}
