import ArgumentParser
import ModbusBridge

struct ModbusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modbus",
        abstract: "Read and write Modbus registers on a meter or charger (like mbpoll), for commissioning.",
        subcommands: [Read.self, Write.self]
    )
}

/// Where and how to reach the device; shared by read and write.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("tcp"), help: ArgumentHelp("Modbus TCP device.", valueName: "host:port"))
    var tcp: String?

    @Option(name: .customLong("rtu"), help: ArgumentHelp("Modbus RTU serial device, e.g. /dev/ttyS1 or /dev/ttyUSB0.", valueName: "device"))
    var rtu: String?

    @Option(help: "RTU baud rate.")
    var baud: Int = 9600

    @Option(help: ArgumentHelp("RTU parity: N (none), E (even) or O (odd).", valueName: "N|E|O"))
    var parity: String = "N"

    @Option(name: .customLong("data-bits"), help: "RTU data bits.")
    var dataBits: Int = 8

    @Option(name: .customLong("stop-bits"), help: "RTU stop bits.")
    var stopBits: Int = 1

    @Flag(help: "Ask the UART driver to drive the RS-485 direction pin (TIOCSRS485). Not needed with auto-direction USB adapters.")
    var rs485 = false

    @Option(help: "Unit id (slave address): 1–247 on RTU; TCP devices often use 1 or 255.")
    var unit: Int = 1

    @Option(name: .customLong("timeout-ms"), help: "Response timeout in milliseconds.")
    var timeoutMilliseconds: Int = 1000

    func validate() throws {
        if (tcp == nil) == (rtu == nil) {
            throw ValidationError("give exactly one of --tcp HOST:PORT or --rtu DEVICE")
        }
        guard SerialLine.Parity(rawValue: parity.uppercased()) != nil else {
            throw ValidationError("--parity '\(parity)' is not N, E or O")
        }
        guard (0...255).contains(unit) else { throw ValidationError("--unit \(unit) is outside 0–255") }
        guard (1...60_000).contains(timeoutMilliseconds) else {
            throw ValidationError("--timeout-ms \(timeoutMilliseconds) is outside 1–60000")
        }
        if let tcp { do { _ = try ModbusEndpoint.parseTCP(tcp) } catch { throw ValidationError("--tcp \(error)") } }
    }

    var endpoint: ModbusEndpoint {
        if let tcp { return try! ModbusEndpoint.parseTCP(tcp) }
        return .rtu(SerialLine(device: rtu!, baud: baud, parity: SerialLine.Parity(rawValue: parity.uppercased())!,
                               dataBits: dataBits, stopBits: stopBits, rs485: rs485))
    }

    func client() throws -> ModbusClient {
        try ModbusClient(endpoint, options: .init(responseTimeoutMilliseconds: timeoutMilliseconds,
                                                   byteTimeoutMilliseconds: min(timeoutMilliseconds, 100),
                                                   reconnect: .init(initialMilliseconds: 0)))
    }
}

/// How the values are laid out in registers.
struct LayoutOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Value type: \(RegisterCodec.ValueType.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "type"))
    var type: String = "u16"

    @Option(name: .customLong("word-order"), help: ArgumentHelp("Register order of 32/64-bit values: big (high word first) or little.", valueName: "big|little"))
    var wordOrder: String = "big"

    @Option(name: .customLong("byte-order"), help: ArgumentHelp("Byte order inside each register: big (Modbus standard) or little (swapped).", valueName: "big|little"))
    var byteOrder: String = "big"

    @Option(help: "Engineering value = raw × scale (e.g. 0.1 for tenths).")
    var scale: Double = 1

    func validate() throws {
        guard RegisterCodec.ValueType(rawValue: type) != nil else {
            throw ValidationError("--type '\(type)' is not one of \(RegisterCodec.ValueType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard RegisterCodec.WordOrder(rawValue: wordOrder) != nil else { throw ValidationError("--word-order '\(wordOrder)' is not big or little") }
        guard RegisterCodec.ByteOrder(rawValue: byteOrder) != nil else { throw ValidationError("--byte-order '\(byteOrder)' is not big or little") }
        guard scale.isFinite && scale != 0 else { throw ValidationError("--scale \(scale) must be a finite, non-zero number") }
    }

    var codec: RegisterCodec {
        RegisterCodec(.init(rawValue: type)!, wordOrder: .init(rawValue: wordOrder)!, byteOrder: .init(rawValue: byteOrder)!, scale: scale)
    }
}

enum TableFlag: String, EnumerableFlag {
    case holding, input, coils, discrete

    static func help(for value: TableFlag) -> ArgumentHelp? {
        switch value {
        case .holding: "Holding registers (function 3; written with 6/16)."
        case .input: "Input registers (function 4)."
        case .coils: "Coils (function 1; written with 5/15)."
        case .discrete: "Discrete inputs (function 2)."
        }
    }

    var table: RegisterTable {
        switch self {
        case .holding: .holding
        case .input: .input
        case .coils: .coils
        case .discrete: .discreteInputs
        }
    }
}

/// Parses "123" or "0x7B".
func parseAddress(_ text: String) -> UInt16? {
    let t = text.lowercased()
    if t.hasPrefix("0x") { return UInt16(t.dropFirst(2), radix: 16) }
    return UInt16(t)
}

func formatValue(_ v: Double, _ type: RegisterCodec.ValueType, scaled: Bool) -> String {
    if !v.isFinite { return "\(v)" }
    if !type.isFloat && !scaled { return String(Int64(v)) }
    return "\(v)"
}

extension ModbusCommand {
    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read and decode registers or bits.",
            discussion: """
            --count is the number of values of --type (a f32 takes 2 registers). Output: one line per
            value with its address, the raw registers in hex and the decoded value; --json prints one
            JSON object. Exit status 1 with the reason on a Modbus error.

            Example (Eastron SDM630 phase 1 voltage, input register 30001):
              lmc modbus read --rtu /dev/ttyUSB0 --baud 9600 --unit 1 --input 0 --type f32
            """
        )

        @OptionGroup var connection: ConnectionOptions
        @Flag(exclusivity: .exclusive) var table: TableFlag = .holding
        @Argument(help: ArgumentHelp("First register or bit address, 0-based (decimal or 0x hex).", valueName: "address"))
        var address: String
        @Option(help: "Number of values to read.")
        var count: Int = 1
        @OptionGroup var layout: LayoutOptions
        @Flag(help: "Print JSON instead of text.")
        var json = false

        func validate() throws {
            guard parseAddress(address) != nil else { throw ValidationError("address '\(address)' is not a number 0–65535 (decimal or 0x hex)") }
            guard (1...2000).contains(count) else { throw ValidationError("--count \(count) is outside 1–2000") }
        }

        func run() throws {
            let start = parseAddress(address)!
            let client = try connection.client()
            let codec = layout.codec
            let t = table.table
            var rows: [(UInt16, [UInt16], Double)] = []
            do {
                if t == .coils || t == .discreteInputs {
                    let bits = try client.readBits(t, unit: UInt8(connection.unit), address: start, count: count)
                    for (i, b) in bits.enumerated() { rows.append((start &+ UInt16(i), [b ? 1 : 0], b ? 1 : 0)) }
                } else {
                    let per = codec.registerCount
                    guard count * per <= 125 else {
                        throw ValidationError("--count \(count) × \(per) registers exceeds the 125 registers one request can read")
                    }
                    let regs = try client.readRegisters(t, unit: UInt8(connection.unit), address: start, count: count * per)
                    for i in 0..<count {
                        let slice = Array(regs[(i * per)..<((i + 1) * per)])
                        rows.append((start &+ UInt16(i * per), slice, try codec.decode(slice)))
                    }
                }
            } catch let e as ModbusError {
                printError(e.description)
                throw ExitCode(1)
            }
            if json {
                let values: [JSON.Value] = rows.map { r in
                    .object([("address", .int(Int(r.0))), ("registers", .array(r.1.map { .int(Int($0)) })),
                             ("value", r.2.isFinite ? .number(r.2) : .null),
                             ("finite", .bool(r.2.isFinite))])
                }
                print(JSON.render(.object([
                    ("endpoint", .string(connection.endpoint.description)), ("unit", .int(connection.unit)),
                    ("table", .string(t.rawValue)), ("type", .string(codec.type.rawValue)),
                    ("word_order", .string(codec.wordOrder.rawValue)), ("byte_order", .string(codec.byteOrder.rawValue)),
                    ("scale", .number(codec.scale)), ("values", .array(values)),
                ])))
            } else {
                let what = (t == .coils || t == .discreteInputs) ? t.rawValue : "\(t.rawValue) registers, \(codec)"
                print("\(connection.endpoint) unit \(connection.unit): \(what)")
                for r in rows {
                    let raw = r.1.map { "0x" + pad(String($0, radix: 16, uppercase: true), 4) }.joined(separator: " ")
                    print("\(pad(String(r.0), 5, right: true)) (0x\(pad(String(r.0, radix: 16, uppercase: true), 4)))  \(raw)  \(formatValue(r.2, codec.type, scaled: codec.scale != 1))")
                }
            }
        }
    }

    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode and write values to holding registers or coils.",
            discussion: """
            Several values are written to consecutive addresses in one request (function 16 or 15).
            A single one-register value uses function 6 (5 for a coil) unless --fc16 is given; values of
            two or more registers always use function 16, as chargers such as the Alfen NG9xx require.
            Writing changes a live device, so --yes is required.

            Example (Alfen NG9xx max current, 16 A, float32 at 1210 on socket unit 1):
              lmc modbus write --tcp 192.168.1.30:502 --unit 1 1210 16 --type f32 --yes
            """
        )

        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Write coils instead of holding registers (values 0 or 1).")
        var coils = false
        @Argument(help: ArgumentHelp("First register or coil address, 0-based (decimal or 0x hex).", valueName: "address"))
        var address: String
        @Argument(help: ArgumentHelp("Values to write, in engineering units.", valueName: "value"))
        var values: [Double]
        @OptionGroup var layout: LayoutOptions
        @Flag(help: "Use function 16 even for a single one-register value.")
        var fc16 = false
        @Flag(help: "Confirm: this changes a live device.")
        var yes = false

        func validate() throws {
            guard parseAddress(address) != nil else { throw ValidationError("address '\(address)' is not a number 0–65535 (decimal or 0x hex)") }
            guard !values.isEmpty else { throw ValidationError("give at least one value to write") }
            if coils, let bad = values.first(where: { $0 != 0 && $0 != 1 }) {
                throw ValidationError("coil value \(bad) is not 0 or 1")
            }
            guard yes else { throw ValidationError("writing changes a live device: add --yes to confirm") }
        }

        func run() throws {
            let start = parseAddress(address)!
            let codec = layout.codec
            let client = try connection.client()
            let unit = UInt8(connection.unit)
            do {
                if coils {
                    if values.count == 1 && !fc16 {
                        try client.writeCoil(unit: unit, address: start, value: values[0] == 1)
                    } else {
                        try client.writeCoils(unit: unit, address: start, values: values.map { $0 == 1 })
                    }
                } else {
                    var regs: [UInt16] = []
                    for v in values {
                        do { regs += try codec.encode(v) } catch {
                            throw ValidationError("value \(v): \(error)")
                        }
                    }
                    if regs.count == 1 && !fc16 {
                        try client.writeRegister(unit: unit, address: start, value: regs[0])
                    } else {
                        try client.writeRegisters(unit: unit, address: start, values: regs)
                    }
                }
            } catch let e as ModbusError {
                printError(e.description)
                throw ExitCode(1)
            }
            print("wrote \(values.count) value\(values.count == 1 ? "" : "s") at \(start) on \(connection.endpoint) unit \(unit)")
        }
    }
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: right ? " " : "0", count: max(0, width - s.count))
    return fill + s
}

/// An error for the person at the terminal ("lmc: …"), or at priority err in the journal.
func printError(_ message: String) {
    Journal.write(.err, message)
}

private func writeStandardError(_ string: String) {
    var s = string
    s.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        writeStandardError(string)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
