import ArgumentParser
import LMCConfig
import LMCWiring
import TOMLReader

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check a configuration file.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a config file and print every problem with its line, key and reason (like nginx -t).",
            discussion: """
            Exit status 0 when the file is valid, 2 when it is not (each problem on its own line).
            Example: lmc config check --config /etc/lmc/lmc.toml
            """
        )

        @Option(help: ArgumentHelp("The config file.", valueName: "file"))
        var config: String = "/etc/lmc/lmc.toml"

        @Flag(help: "Print JSON on stdout, valid or not (docs/json.md); the exit status is the same.")
        var json = false

        func run() throws {
            if json { return try runJSON() }
            let text = try readFile(config, what: "config")
            switch Configuration.parse(text) {
            case .failure(let e):
                for issue in e.issues { printError("\(config): \(issue)") }
                printError("\(config): \(e.issues.count) problem\(e.issues.count == 1 ? "" : "s"); nothing was changed")
                throw ExitCode(2)
            case .success(let c):
                do { _ = try c.controller() } catch {
                    printError("\(config): \(error)")
                    throw ExitCode(2)
                }
                for w in c.warnings { printError("\(config): warning: \(w)") }
                print("\(config): ok — \(c.measurementPoints.count) measurement point\(c.measurementPoints.count == 1 ? "" : "s"), \(c.sites.count) site\(c.sites.count == 1 ? "" : "s"), \(c.mode.rawValue) mode, \(c.periodMilliseconds) ms period")
            }
        }

        func runJSON() throws {
            func issue(_ line: Int?, _ path: String, _ message: String) -> JSON.Value {
                .object([("line", line.map { .int($0) } ?? .null), ("key", .string(path)), ("message", .string(message))])
            }
            func report(_ issues: [JSON.Value], _ summary: [(String, JSON.Value)] = []) -> String {
                JSON.render(.object([("file", .string(config)), ("ok", .bool(issues.isEmpty)), ("issues", .array(issues))] + summary))
            }
            guard let text = readText(config) else {
                print(report([issue(nil, "", "cannot read: \(String(cString: strerror(errno)))")]))
                throw ExitCode(2)
            }
            switch Configuration.parse(text) {
            case .failure(let e):
                print(report(e.issues.map { issue($0.line, $0.path, $0.message) }))
                throw ExitCode(2)
            case .success(let c):
                do { _ = try c.controller() } catch {
                    print(report([issue(nil, "", "\(error)")]))
                    throw ExitCode(2)
                }
                print(report([], [("warnings", .array(c.warnings.map { .string($0) })),
                                  ("measurement_points", .array(c.measurementPoints.map { .string($0.id) })),
                                  ("sites", .array(c.sites.map { .string($0.id) })),
                                  ("mode", .string(c.mode.rawValue)), ("period_ms", .int(c.periodMilliseconds))]))
            }
        }
    }
}
