import ArgumentParser
import DigitalIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Commissioning of the box's digital lines: prove the trip and close relays, the breaker's auxiliary
/// contact and S0 pulse inputs are wired to the lines the config names.
struct GPIOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gpio",
        abstract: "Inspect and exercise GPIO lines (relays, breaker contact, S0 pulses) for commissioning.",
        discussion: """
        Stop the lmc service first: a line held by the daemon reports "busy".
        Examples:
          lmc gpio info
          lmc gpio get --chip gpiochip0 --line 17 --active-low
          lmc gpio pulse --chip gpiochip0 --line 23 --width-ms 200 --yes     (trip relay)
          lmc gpio watch --chip gpiochip0 --line 22 --seconds 30             (press the breaker's aux contact)
        """,
        subcommands: [Info.self, Get.self, Set.self, Pulse.self, Watch.self]
    )
}

struct LineSelection: ParsableArguments {
    @Option(help: ArgumentHelp("Chip: path, name, label or number.", valueName: "chip"))
    var chip: String = "gpiochip0"

    @Option(help: ArgumentHelp("Line offset on the chip.", valueName: "offset"))
    var line: Int

    @Flag(name: .customLong("active-low"), help: "Logical 1 is the low physical level.")
    var activeLow = false

    @Option(help: ArgumentHelp("Bias: as-is, disabled, pull-up, pull-down.", valueName: "bias"))
    var bias: String = "as-is"

    func validate() throws {
        guard line >= 0 else { throw ValidationError("--line \(line) must be 0 or more") }
        guard LineOptions.Bias(rawValue: bias) != nil else {
            throw ValidationError("--bias '\(bias)' is not one of \(LineOptions.Bias.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    var options: LineOptions { LineOptions(activeLow: activeLow, bias: LineOptions.Bias(rawValue: bias)!) }
}

func runGPIO(_ body: () throws -> Void) throws {
    do { try body() } catch let error as GPIOError {
        printError(error.description)
        throw ExitCode(1)
    }
}

extension GPIOCommand {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the lines of a chip with their names, users and directions.")

        @Option(help: ArgumentHelp("Chip: path, name, label or number.", valueName: "chip"))
        var chip: String = "gpiochip0"

        func run() throws {
            try runGPIO {
                let c = try GPIOChip(chip)
                print("\(c.name) [\(c.label)] \(c.lineCount) lines")
                for l in try c.lines() {
                    print("  line \(pad(String(l.offset), 3, right: true)): \(l.name ?? "unnamed")  \(l.isOutput ? "output" : "input ")  \(l.consumer.map { "used by \"\($0)\"" } ?? "free")")
                }
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read an input line's logical value (prints 0 or 1).")
        @OptionGroup var sel: LineSelection

        func run() throws {
            try runGPIO {
                let c = try GPIOChip(sel.chip)
                let l = try c.input(sel.line, consumer: "lmc-commissioning", options: sel.options)
                print(try l.value() ? 1 : 0)
            }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drive an output line and hold it for a time, then release it.",
            discussion: "The kernel keeps the last level after release; set the line back to its safe level when done."
        )
        @OptionGroup var sel: LineSelection
        @Option(help: "Logical value to drive: 0 or 1.")
        var value: Int
        @Option(name: .customLong("hold-ms"), help: "How long to hold the line before releasing it.")
        var holdMilliseconds: Int = 1000
        @Flag(help: "Confirm: this may operate a relay.")
        var yes = false

        func validate() throws {
            guard value == 0 || value == 1 else { throw ValidationError("--value \(value) is not 0 or 1") }
            guard (0...600_000).contains(holdMilliseconds) else { throw ValidationError("--hold-ms \(holdMilliseconds) is outside 0–600000") }
            guard yes else { throw ValidationError("driving an output may operate a relay: add --yes to confirm") }
        }

        func run() throws {
            try runGPIO {
                let c = try GPIOChip(sel.chip)
                let l = try c.output(sel.line, consumer: "lmc-commissioning", options: sel.options, initial: value == 1)
                print("line \(sel.line) on \(c.name) = \(value) for \(holdMilliseconds) ms")
                usleep(UInt32(holdMilliseconds) * 1000)
                _ = l
            }
        }
    }

    struct Pulse: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pulse an output line 0 → 1 → 0, as a breaker trip or close coil is driven.",
            discussion: "This operates the relay on that line. A trip pulse opens the site's breaker."
        )
        @OptionGroup var sel: LineSelection
        @Option(name: .customLong("width-ms"), help: "Pulse width in milliseconds.")
        var widthMilliseconds: Int = 200
        @Flag(help: "Confirm: this operates a relay.")
        var yes = false

        func validate() throws {
            guard (1...10_000).contains(widthMilliseconds) else { throw ValidationError("--width-ms \(widthMilliseconds) is outside 1–10000") }
            guard yes else { throw ValidationError("a pulse operates the relay on that line: add --yes to confirm") }
        }

        func run() throws {
            try runGPIO {
                let c = try GPIOChip(sel.chip)
                let l = try c.output(sel.line, consumer: "lmc-commissioning", options: sel.options, initial: false)
                try l.pulse(widthMilliseconds: widthMilliseconds)
                print("pulsed line \(sel.line) on \(c.name) for \(widthMilliseconds) ms")
            }
        }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each edge on an input line with its time, for a number of seconds.")
        @OptionGroup var sel: LineSelection
        @Option(help: "How long to watch.")
        var seconds: Int = 10

        func run() throws {
            try runGPIO {
                let c = try GPIOChip(sel.chip)
                let l = try c.input(sel.line, consumer: "lmc-commissioning", options: sel.options, edges: true)
                print("watching line \(sel.line) on \(c.name) for \(seconds) s; now \(try l.value() ? 1 : 0)")
                var count = 0
                var last: UInt64 = 0
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                let end = Int(ts.tv_sec) + seconds
                while true {
                    clock_gettime(CLOCK_MONOTONIC, &ts)
                    let left = (end - Int(ts.tv_sec)) * 1000
                    if left <= 0 { break }
                    guard let e = try l.nextEdge(timeoutMilliseconds: min(left, 1000)) else { continue }
                    count += 1
                    let gap = last == 0 ? "" : String(format3((Double(e.timestampNs - last)) / 1e6)) + " ms after previous"
                    last = e.timestampNs
                    print("\(e.rising ? "rising " : "falling") \(gap)")
                }
                print("\(count) edge\(count == 1 ? "" : "s")")
            }
        }
    }
}

func format3(_ v: Double) -> String {
    let r = (v * 1000).rounded() / 1000
    return "\(r)"
}
