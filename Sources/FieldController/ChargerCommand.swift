import ArgumentParser
import LMCConfig
import LMCWiring
import LMCPlatform
import ModbusBridge
import SetPointRelay

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ChargerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charger",
        abstract: "Commission a hub charger with its profile (hw/chargers/*.toml).",
        subcommands: [Probe.self, Set.self]
    )

    struct Target: ParsableArguments {
        @Option(help: ArgumentHelp("Charger profile name or .toml path.", valueName: "name"))
        var profile: String
        @OptionGroup var connection: ConnectionOptions

        func load() throws -> ChargerProfile {
            switch ChargerProfiles.load(profile) {
            case .failure(let e):
                printError(e.description)
                throw ExitCode(2)
            case .success(let p): return p
            }
        }
    }

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read the charger's limit, fallback and applied current (changes nothing).",
            discussion: """
            Exit status 1 when a mapped register cannot be read.
            Example: lmc charger probe --profile alfen-ng9xx --tcp 192.168.1.30:502 --unit 1
            """
        )
        @OptionGroup var target: Target
        @Flag(help: "Print JSON instead of text (docs/json.md).")
        var json = false

        func run() throws {
            let p = try target.load()
            let client = try target.connection.client()
            let unit = UInt8(target.connection.unit)
            if !json { print("\(p.name) on \(target.connection.endpoint) unit \(unit): \(p.description)") }
            var failed = false
            var readings: [(String, JSON.Value)] = []
            func show(_ key: String, _ label: String, _ r: ChargerProfile.Register?, table: RegisterTable = .holding, amps: Bool = true) {
                guard let r else {
                    readings.append((key, .object([("mapped", .bool(false))])))
                    if !json { print("  \(label.padding(22))not mapped") }
                    return
                }
                do {
                    let regs = try client.readRegisters(table, unit: unit, address: r.address, count: r.codec.registerCount)
                    let v = try r.codec.decode(regs)
                    let shown = amps ? (r.milliamps ? v / 1000 : v) : v
                    readings.append((key, .object([("mapped", .bool(true)), ("register", .int(Int(r.address))), ("value", shown.isFinite ? .number(shown) : .null),
                                                   ("unit", .string(amps ? "A" : "s")), ("error", .null)])))
                    if !json { print("  \(label.padding(22))\(shown) \(amps ? "A" : "s")   (register \(r.address))") }
                } catch {
                    failed = true
                    readings.append((key, .object([("mapped", .bool(true)), ("register", .int(Int(r.address))), ("value", .null),
                                                   ("unit", .string(amps ? "A" : "s")), ("error", .string("\(error)"))])))
                    if !json { print("  \(label.padding(22))\(error)") }
                }
            }
            show("limit", "limit", p.limit)
            show("safe_current", "safe current", p.safeCurrent)
            show("timeout", "timeout", p.timeout, amps: false)
            show("applied", "applied (readback)", p.readback, table: p.readbackTable)
            if json {
                print(JSON.render(.object([
                    ("charger", .string(p.name)), ("description", .string(p.description)), ("endpoint", .string(target.connection.endpoint.description)),
                    ("unit", .int(Int(unit))), ("ok", .bool(!failed)), ("registers", .object(readings)),
                    ("validity_s", .number(p.validitySeconds)), ("refresh_s", .number(p.refreshSeconds)),
                    ("min_current_a", .number(p.minCurrentA)), ("max_current_a", .number(p.maxCurrentA)),
                ])))
            } else {
                print("  validity \(p.validitySeconds) s; lmc refreshes every \(p.refreshSeconds) s; min \(p.minCurrentA) A, max \(p.maxCurrentA) A")
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Program the charger's fallback, write a limit, and read back what it applies.",
            discussion: """
            Programs the safe current and timeout first (as lmc always does), then the limit, then reads
            back. The limit holds only for the charger's validity time: this is a commissioning check,
            not a way to run a site. Requires --yes.
            Example: lmc charger set --profile alfen-ng9xx --tcp 192.168.1.30:502 --amps 16 --safe-amps 10 --yes
            """
        )
        @OptionGroup var target: Target
        @Option(help: "Limit to write, A per phase.")
        var amps: Double
        @Option(name: .customLong("safe-amps"), help: "The charger's own fallback current, A per phase.")
        var safeAmps: Double
        @Flag(help: "Confirm: this changes what the charger delivers.")
        var yes = false

        func validate() throws {
            guard amps >= 0 && amps <= 1000 else { throw ValidationError("--amps \(amps) is outside 0–1000") }
            guard safeAmps >= 0 && safeAmps <= 1000 else { throw ValidationError("--safe-amps \(safeAmps) is outside 0–1000") }
            guard yes else { throw ValidationError("this changes what the charger delivers: add --yes to confirm") }
        }

        func run() throws {
            let p = try target.load()
            let relay = try ModbusChargerRelay(profile: p, endpoint: target.connection.endpoint, unit: UInt8(target.connection.unit),
                                               conversion: .init(), safeCurrentA: safeAmps, maxCurrentA: max(amps, p.maxCurrentA),
                                               options: .init(responseTimeoutMilliseconds: target.connection.timeoutMilliseconds))
            let st = relay.apply(amps: amps, nowNs: monotonicNanoseconds())
            if let e = st.lastError {
                printError(e)
                throw ExitCode(1)
            }
            print("fallback programmed: safe \(safeAmps) A\(p.timeout != nil ? ", timeout \(p.validitySeconds) s" : "")")
            print("limit \(st.writtenA ?? 0) A written\(st.appliedA.map { "; charger applies \($0) A" } ?? " (no readback)")")
        }
    }
}
