import LMCPlatform
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CModbus

/// Which of the four Modbus data tables a request addresses.
public enum RegisterTable: String, Sendable, CaseIterable {
    /// Holding registers: function 3 to read, 6/16 to write.
    case holding
    /// Input registers: function 4, read-only.
    case input
    /// Coils: function 1 to read, 5/15 to write.
    case coils
    /// Discrete inputs: function 2, read-only.
    case discreteInputs = "discrete"
}

/// A Modbus master (client) on one TCP connection or one serial line.
///
/// libmodbus calls block, so a client belongs to the one thread that owns its bus (docs/design.md §6); it
/// is deliberately not `Sendable`. Several units on one RS-485 bus share one client, which serialises
/// them and keeps the inter-frame gap.
///
/// A lost connection (refused, reset, serial adapter unplugged) closes the context; the next request
/// reconnects, with a bounded exponential backoff between attempts (``ReconnectPolicy``). While
/// backing off, requests fail at once with ``ModbusError/Kind/notConnected(retryInMilliseconds:)``
/// without touching the wire, so a poll loop keeps its period.
public final class ModbusClient {
    public let endpoint: ModbusEndpoint
    public let options: ModbusClientOptions
    private let ctx: OpaquePointer
    private var connected = false
    private var failedAttempts = 0
    private var nextAttemptNs: UInt64 = 0
    private var lastFrameEndNs: UInt64 = 0

    /// Counters for health reporting.
    public private(set) var transactions = 0
    public private(set) var failures = 0
    public private(set) var reconnects = 0

    /// Creates the client; no traffic until ``connect()`` or the first request.
    public init(_ endpoint: ModbusEndpoint, options: ModbusClientOptions = .init()) throws(ModbusError) {
        self.endpoint = endpoint
        self.options = options
        let made: OpaquePointer?
        switch endpoint {
        case let .tcp(host, port):
            made = Seam.newTCP(host, String(port))
        case let .rtu(line):
            guard [5, 6, 7, 8].contains(line.dataBits), [1, 2].contains(line.stopBits), line.baud > 0 else {
                throw ModbusError(.invalidArgument("serial framing \(line.dataBits)\(line.parity.rawValue)\(line.stopBits) at \(line.baud) baud is not valid (use e.g. 9600 8N1)"),
                                  operation: "open", endpoint: endpoint.description)
            }
            made = Seam.newRTU(line.device, Int32(line.baud), CChar(UInt8(ascii: line.parity.rawValue.unicodeScalars.first!)),
                               Int32(line.dataBits), Int32(line.stopBits))
        }
        guard let made else {
            throw ModbusError(ModbusError.kind(fromErrno: errno), operation: "create context", endpoint: endpoint.description)
        }
        ctx = made
        _ = Seam.setResponseTimeout(ctx, milliseconds: options.responseTimeoutMilliseconds)
        _ = Seam.setByteTimeout(ctx, milliseconds: options.byteTimeoutMilliseconds)
    }

    deinit {
        if connected { Seam.close(ctx) }
        Seam.free(ctx)
    }

    public var isConnected: Bool { connected }

    /// Opens the TCP connection or serial port now. Throws on failure and arms the backoff.
    public func connect() throws(ModbusError) {
        if connected { return }
        if Seam.connect(ctx) == -1 {
            let e = errno
            failedAttempts += 1
            nextAttemptNs = monotonicNanoseconds() + UInt64(options.reconnect.delayMilliseconds(afterFailures: failedAttempts)) * 1_000_000
            throw error(ModbusError.kind(fromErrno: e), "connect")
        }
        if case let .rtu(line) = endpoint, line.rs485 {
            if Seam.setRS485(ctx) == -1 {
                let e = errno
                Seam.close(ctx)
                throw error(.system(e), "enable RS-485 mode (TIOCSRS485; the port or driver may not support it — use rs485 = false with an auto-direction adapter)")
            }
        }
        if failedAttempts > 0 || transactions > 0 { reconnects += 1 }
        failedAttempts = 0
        connected = true
    }

    /// Closes the connection; the next request reconnects.
    public func close() {
        if connected { Seam.close(ctx) }
        connected = false
    }

    // MARK: Reads

    /// Function 3. `count` ≤ 125.
    public func readHoldingRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        try readRegisters(.holding, unit: unit, address: address, count: count)
    }

    /// Function 4. `count` ≤ 125.
    public func readInputRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        try readRegisters(.input, unit: unit, address: address, count: count)
    }

    /// Function 3 or 4, by table.
    public func readRegisters(_ table: RegisterTable, unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        let op = "read \(table == .input ? "input" : "holding") registers \(hex(address))+\(count) (unit \(unit))"
        guard table == .holding || table == .input else { throw error(.invalidArgument("\(table.rawValue) holds bits, not registers"), op) }
        try check(count: count, max: 125, address: address, op)
        var buf = [UInt16](repeating: 0, count: count)
        let n = try transact(op, unit: unit) { ctx in
            buf.withUnsafeMutableBufferPointer { p in
                table == .input
                    ? Seam.readInputRegisters(ctx, Int32(address), Int32(count), p.baseAddress!)
                    : Seam.readRegisters(ctx, Int32(address), Int32(count), p.baseAddress!)
            }
        }
        guard n == count else { throw fail(.invalidReply("\(n) registers instead of \(count)"), op) }
        return buf
    }

    /// Function 1 (coils) or 2 (discrete inputs). `count` ≤ 2000.
    public func readBits(_ table: RegisterTable, unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [Bool] {
        let op = "read \(table == .coils ? "coils" : "discrete inputs") \(hex(address))+\(count) (unit \(unit))"
        guard table == .coils || table == .discreteInputs else { throw error(.invalidArgument("\(table.rawValue) holds registers, not bits"), op) }
        try check(count: count, max: 2000, address: address, op)
        var buf = [UInt8](repeating: 0, count: count)
        let n = try transact(op, unit: unit) { ctx in
            buf.withUnsafeMutableBufferPointer { p in
                table == .coils
                    ? Seam.readBits(ctx, Int32(address), Int32(count), p.baseAddress!)
                    : Seam.readInputBits(ctx, Int32(address), Int32(count), p.baseAddress!)
            }
        }
        guard n == count else { throw fail(.invalidReply("\(n) bits instead of \(count)"), op) }
        return buf.map { $0 != 0 }
    }

    /// Reads one value laid out as `codec` says, from holding or input registers.
    public func read(_ codec: RegisterCodec, from table: RegisterTable, unit: UInt8, address: UInt16) throws(ModbusError) -> Double {
        let regs = try readRegisters(table, unit: unit, address: address, count: codec.registerCount)
        do { return try codec.decode(regs) } catch {
            throw self.error(.invalidReply(error.description), "decode \(codec) at \(hex(address))")
        }
    }

    // MARK: Writes

    /// Function 6: one holding register.
    public func writeRegister(unit: UInt8, address: UInt16, value: UInt16) throws(ModbusError) {
        let op = "write register \(hex(address)) = \(value) (unit \(unit), function 6)"
        _ = try transact(op, unit: unit) { ctx in Seam.writeRegister(ctx, Int32(address), value) }
    }

    /// Function 16: consecutive holding registers. `values.count` ≤ 123. Multi-register values
    /// (float32 set points on Alfen chargers) must be written this way, never as two function-6 writes.
    public func writeRegisters(unit: UInt8, address: UInt16, values: [UInt16]) throws(ModbusError) {
        let op = "write registers \(hex(address))+\(values.count) (unit \(unit), function 16)"
        try check(count: values.count, max: 123, address: address, op)
        let n = try transact(op, unit: unit) { ctx in
            values.withUnsafeBufferPointer { p in Seam.writeRegisters(ctx, Int32(address), Int32(values.count), p.baseAddress!) }
        }
        guard n == values.count else { throw fail(.invalidReply("device confirmed \(n) registers instead of \(values.count)"), op) }
    }

    /// Writes one value laid out as `codec` says: function 6 for a one-register type, 16 otherwise
    /// (or 16 always when `forceMultiple`).
    public func write(_ value: Double, as codec: RegisterCodec, unit: UInt8, address: UInt16, forceMultiple: Bool = false) throws(ModbusError) {
        let regs: [UInt16]
        do { regs = try codec.encode(value) } catch {
            throw self.error(.invalidArgument(error.description), "encode \(value) as \(codec)")
        }
        if regs.count == 1 && !forceMultiple {
            try writeRegister(unit: unit, address: address, value: regs[0])
        } else {
            try writeRegisters(unit: unit, address: address, values: regs)
        }
    }

    /// Function 5: one coil.
    public func writeCoil(unit: UInt8, address: UInt16, value: Bool) throws(ModbusError) {
        let op = "write coil \(hex(address)) = \(value ? 1 : 0) (unit \(unit), function 5)"
        _ = try transact(op, unit: unit) { ctx in Seam.writeBit(ctx, Int32(address), value) }
    }

    /// Function 15: consecutive coils. `values.count` ≤ 1968.
    public func writeCoils(unit: UInt8, address: UInt16, values: [Bool]) throws(ModbusError) {
        let op = "write coils \(hex(address))+\(values.count) (unit \(unit), function 15)"
        try check(count: values.count, max: 1968, address: address, op)
        let bytes = values.map { UInt8($0 ? 1 : 0) }
        let n = try transact(op, unit: unit) { ctx in
            bytes.withUnsafeBufferPointer { p in Seam.writeBits(ctx, Int32(address), Int32(bytes.count), p.baseAddress!) }
        }
        guard n == values.count else { throw fail(.invalidReply("device confirmed \(n) coils instead of \(values.count)"), op) }
    }

    // MARK: Internals

    private func transact(_ op: String, unit: UInt8, _ call: (OpaquePointer) -> Int32) throws(ModbusError) -> Int32 {
        if !connected {
            let now = monotonicNanoseconds()
            if failedAttempts > 0 && now < nextAttemptNs {
                let ms = Int((nextAttemptNs - now + 999_999) / 1_000_000)
                throw fail(.notConnected(retryInMilliseconds: ms), op)
            }
            do { try connect() } catch {
                failures += 1
                throw ModbusError(error.kind, operation: op, endpoint: endpoint.description,
                                  timeoutMilliseconds: options.responseTimeoutMilliseconds)
            }
        }
        if Seam.setSlave(ctx, Int32(unit)) == -1 {
            throw fail(.invalidArgument("unit id \(unit) is not valid for \(endpoint) (RTU: 1–247, 0 for broadcast writes)"), op)
        }
        waitInterFrameGap()
        transactions += 1
        let rc = call(ctx)
        let callErrno = errno
        if case .rtu = endpoint { lastFrameEndNs = monotonicNanoseconds() }
        if rc == -1 {
            let kind = ModbusError.kind(fromErrno: callErrno)
            let err = fail(kind, op)
            if err.isConnectionLoss || (isTCP && Self.desynchronises(kind)) {
                // On TCP a late reply would answer the next request (libmodbus then sees a wrong
                // transaction id, and so on): a fresh connection is the only clean stream. The first
                // reconnect is tried at the next request; back off only if that fails.
                close()
                failedAttempts = 0
            } else if Self.desynchronises(kind) {
                // RTU has no transaction id: drop whatever is still in the receive buffer.
                _ = Seam.flush(ctx)
            }
            throw err
        }
        return rc
    }

    private var isTCP: Bool {
        if case .tcp = endpoint { return true }
        return false
    }

    private static func desynchronises(_ kind: ModbusError.Kind) -> Bool {
        switch kind {
        case .timeout, .crc, .invalidReply: true
        default: false
        }
    }

    /// Keeps the RTU t3.5 silence between the end of one frame and the start of the next, which
    /// several meters need when polled back to back on one bus.
    private func waitInterFrameGap() {
        guard case let .rtu(line) = endpoint, lastFrameEndNs > 0 else { return }
        let gap = UInt64(line.interFrameGapMicroseconds) * 1000
        let now = monotonicNanoseconds()
        if now < lastFrameEndNs + gap {
            usleep(UInt32((lastFrameEndNs + gap - now) / 1000))
        }
    }

    private func check(count: Int, max: Int, address: UInt16, _ op: String) throws(ModbusError) {
        guard (1...max).contains(count) else { throw error(.invalidArgument("count \(count) is outside 1–\(max)"), op) }
        guard Int(address) + count <= 65536 else { throw error(.invalidArgument("address \(address) + count \(count) passes 65535"), op) }
    }

    private func error(_ kind: ModbusError.Kind, _ op: String) -> ModbusError {
        ModbusError(kind, operation: op, endpoint: endpoint.description, timeoutMilliseconds: options.responseTimeoutMilliseconds)
    }

    private func fail(_ kind: ModbusError.Kind, _ op: String) -> ModbusError {
        failures += 1
        return error(kind, op)
    }
}

@inline(__always)
func hex(_ a: UInt16) -> String {
    let h = String(a, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, 4 - h.count)) + h
}
