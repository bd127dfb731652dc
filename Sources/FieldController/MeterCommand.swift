import ArgumentParser
import CTSensorDriver
import LMCConfig
import LMCWiring
import ModbusBridge

struct MeterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter",
        abstract: "Commission a CT meter with its register map (hw/meters/*.toml).",
        subcommands: [Probe.self, Profiles.self]
    )

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read every value of a meter's profile once and print it with units and quality.",
            discussion: """
            The profile is a name from hw/meters (see `lmc meter profiles`) or a path to a .toml file.
            Exit status 0 when the reading is good, 1 when it is bad (the reason is printed).
            Example: lmc meter probe --profile eastron-sdm630 --rtu /dev/ttyUSB0 --baud 9600 --unit 1
            """
        )

        @Option(help: ArgumentHelp("Meter profile name or .toml path.", valueName: "name"))
        var profile: String
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .customLong("ct-rating-a"), help: "CT primary rating in A, for the plausibility check.")
        var ctRating: Double?
        @Option(name: .customLong("nominal-v"), help: "Nominal phase voltage.")
        var nominalVoltage: Double = 230
        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() throws {
            let p: MeterProfile
            switch MeterProfiles.load(profile) {
            case .failure(let e):
                printError(e.description)
                throw ExitCode(2)
            case .success(let x): p = x
            }
            let client = try connection.client()
            let poller = MeterPoller(name: p.name, profile: p, unit: UInt8(connection.unit),
                                     rules: QualityRules(ctRatingA: ctRating, nominalVoltage: nominalVoltage), scope: .all)
            let r = poller.poll(client)
            let values = r.values.sorted { $0.key < $1.key }
            if json {
                print(JSON.render(.object([
                    ("meter", .string(p.name)), ("endpoint", .string(connection.endpoint.description)), ("unit", .int(connection.unit)),
                    ("quality", .string(r.quality.description)), ("usable", .bool(r.quality.isUsable)),
                    ("error", r.error.map { .string($0) } ?? .null),
                    ("values", .object(values.map { ($0.key.rawValue, $0.value.isFinite ? .number($0.value) : .null) })),
                    ("units", .object(values.map { ($0.key.rawValue, .string($0.key.unit)) })),
                    ("estimated", .array(r.estimated.sorted().map { .string($0.rawValue) })),
                ])))
            } else {
                print("\(p.name) on \(connection.endpoint) unit \(connection.unit): \(r.quality)")
                if let e = r.error { print("  \(e)") }
                for (q, v) in values {
                    let text = v.isFinite ? "\((v * 1000).rounded() / 1000)" : "\(v)"
                    print("  \(q.rawValue.padding(22))\(String(repeating: " ", count: max(0, 14 - text.count)))\(text) \(q.unit)\(r.estimated.contains(q) ? "  (estimated)" : "")")
                }
            }
            if !r.quality.isUsable { throw ExitCode(1) }
        }
    }

    struct Profiles: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the meter profiles found on the search path.")
        func run() throws {
            for name in MeterProfiles.available() {
                if case .success(let p) = MeterProfiles.load(name) {
                    print("\(name.padding(24))\(p.description)")
                } else {
                    print("\(name.padding(24))(invalid: run lmc meter probe --profile \(name) to see why)")
                }
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(1, width - count)) }
}
