import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sends one command to the daemon and prints its answer; an answer starting "error:" exits 1.
func sendToDaemon(_ line: String, socket: String) throws {
    let answer: String
    do { answer = try ControlSocket.request(line, path: socket) } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
    if answer.hasPrefix("error:") {
        printError(String(answer.dropFirst(7)).trimmingCharacters())
        throw ExitCode(1)
    }
    print(answer, terminator: "")
}

/// "30m", "90s", "2h", "45" (seconds).
func parseDuration(_ text: String) -> Double? {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
    if let last = text.last, let mult = units[last], let v = Double(text.dropLast()), v > 0 { return v * mult }
    if let v = Double(text), v > 0 { return v }
    return nil
}

struct SocketOption: ParsableArguments {
    @Option(help: ArgumentHelp("Control socket.", valueName: "path"))
    var socket: String = "/run/lmc/control.sock"
}

struct OverrideCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "override",
        abstract: "Limit a site by hand for a while (group lmc-admin). The most restrictive source still wins.",
        subcommands: [Set.self, Clear.self]
    )

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cap a site's set point until the override expires.",
            discussion: "Example: lmc override set --site hub --kw 180 --for 30m"
        )
        @Option(help: "Site id.") var site: String
        @Option(help: "The cap, kW.") var kw: Double
        @Option(name: .customLong("for"), help: ArgumentHelp("How long: 90s, 30m, 2h.", valueName: "duration")) var duration: String
        @OptionGroup var socket: SocketOption

        func validate() throws {
            guard kw >= 0 && kw.isFinite else { throw ValidationError("--kw \(kw) must be 0 or more") }
            guard let d = parseDuration(duration), d <= 7 * 86_400 else { throw ValidationError("--for '\(duration)' is not a duration up to 7 days (e.g. 90s, 30m, 2h)") }
        }

        func run() throws { try sendToDaemon("override set \(site) \(kw) \(Int(parseDuration(duration)!))", socket: socket.socket) }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a site's override now.", discussion: "Example: lmc override clear --site hub")
        @Option(help: "Site id.") var site: String
        @OptionGroup var socket: SocketOption
        func run() throws { try sendToDaemon("override clear \(site)", socket: socket.socket) }
    }
}

struct ResetLockoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset-lockout",
        abstract: "Release a breaker LOCKOUT after repeated trips (group lmc-admin); a close follows when conditions allow.",
        discussion: "Find and fix why the site kept tripping first. Example: lmc reset-lockout"
    )
    @OptionGroup var socket: SocketOption
    func run() throws { try sendToDaemon("reset-lockout", socket: socket.socket) }
}

struct AlarmsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alarms", abstract: "List the active alarms.",
                                                    discussion: "Example: lmc alarms; lmc alarms --json (docs/json.md)")
    @OptionGroup var socket: SocketOption
    @Flag(help: "Print JSON for scripts (docs/json.md).")
    var json = false

    func run() throws {
        guard json else { return try sendToDaemon("alarms", socket: socket.socket) }
        let answer: String
        do { answer = try ControlSocket.request("alarms", path: socket.socket) } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
        if answer.hasPrefix("error: ") {
            printError(String(answer.dropFirst(7).dropLast()))
            throw ExitCode(1)
        }
        print(JSON.render(Self.json(answer)))
    }

    /// The daemon's alarm lines ("CODE subject: message", or "no alarms") as JSON.
    static func json(_ answer: String) -> JSON.Value {
        let lines = answer.split(separator: "\n").map(String.init).filter { $0 != "no alarms" && !$0.isEmpty }
        return .object([("alarms", .array(lines.map { line in
            let code = line.prefix { $0 != " " }
            let rest = line.dropFirst(code.count).drop { $0 == " " }
            let colon = rest.firstRange(of: ": ")
            return .object([
                ("code", .string(String(code))),
                ("subject", .string(colon.map { String(rest[..<$0.lowerBound]) } ?? String(rest))),
                ("message", .string(colon.map { String(rest[$0.upperBound...]) } ?? "")),
                ("text", .string(line)),
            ])
        }))])
    }
}

struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "test", abstract: "Commissioning tests through the running daemon.", subcommands: [Trip.self])

    struct Trip: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Trip a site's breaker through the daemon (group lmc-admin). Asks for confirmation; logged.",
            discussion: "Example: lmc test trip --site hub"
        )
        @Option(help: "Site id.") var site: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var socket: SocketOption

        func run() throws {
            if !yes {
                guard isatty(0) != 0 else {
                    printError("this opens the breaker of site \(site): confirm with --yes (no terminal to ask on)")
                    throw ExitCode(1)
                }
                print("This opens the breaker of site \(site). Type the site id to confirm: ", terminator: "")
                guard readLine() == site else {
                    printError("not confirmed; nothing was done")
                    throw ExitCode(1)
                }
            }
            try sendToDaemon("test-trip \(site)", socket: socket.socket)
        }
    }
}
