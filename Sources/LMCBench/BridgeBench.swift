import ArgumentParser
import ModbusBridge

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// ModbusBridge against libmodbus called directly from C, for the same reads of the same server.
struct BridgeBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bridge", abstract: "ModbusBridge vs a C client calling libmodbus directly.")
    @Option(help: "Transactions per client per round.") var count: Int = 20_000
    @Option(help: "Rounds (alternating; the best of each counts).") var rounds: Int = 5
    @Option(help: "The C client (bench/modbus_c_client.c, built by make bench).") var cClient: String = ".build/bench/modbus_c_client"

    func run() throws {
        let server = try ModbusServer.tcp(layout: .init(input: 0..<16))
        defer { server.stop() }
        try server.set(400_000, as: RegisterCodec(.f32), in: .input, address: 0)
        var swiftBest = Double.infinity, cBest = Double.infinity
        for _ in 0..<rounds {
            // Ours: the same read, through the seam, the typed errors and the bounds checks.
            let client = try ModbusClient(.tcp(host: "127.0.0.1", port: server.port))
            for _ in 0..<100 { _ = try client.readInputRegisters(unit: 1, address: 0, count: 2) }
            let t0 = nowSeconds()
            for _ in 0..<count { _ = try client.readInputRegisters(unit: 1, address: 0, count: 2) }
            swiftBest = min(swiftBest, (nowSeconds() - t0) / Double(count))
            client.close()

            let out = "/tmp/lmc-bench-c-\(getpid())"
            guard spawn(cClient, [String(server.port), String(count)], stdout: out) == 0, let ns = readFirstLine(out).flatMap(Double.init) else {
                printError("the C client \(cClient) failed (build it with make bench)")
                throw ExitCode(1)
            }
            unlink(out)
            cBest = min(cBest, ns / 1e9)
        }
        row("Modbus TCP read transaction (2 registers, loopback)", "\(fmt(swiftBest * 1e6)) µs", "C client on libmodbus: \(fmt(cBest * 1e6)) µs",
            "\(fmt(swiftBest / cBest, 2))×", "best of \(rounds) rounds of \(count) reads each, same libmodbus server in this process")
    }
}

func readFirstLine(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var buf = [CChar](repeating: 0, count: 256)
    guard fgets(&buf, 256, f) != nil else { return nil }
    return String(decoding: buf.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
