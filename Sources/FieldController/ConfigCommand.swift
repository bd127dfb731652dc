import ArgumentParser
import LMCConfig

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

        func run() throws {
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
                print("\(config): ok — \(c.measurementPoints.count) measurement point\(c.measurementPoints.count == 1 ? "" : "s"), \(c.sites.count) site\(c.sites.count == 1 ? "" : "s"), \(c.mode.rawValue) mode, \(c.periodMilliseconds) ms period")
            }
        }
    }
}
