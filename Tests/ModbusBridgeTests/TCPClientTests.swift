import Foundation
import LMCTestSupport
import Testing
@testable import ModbusBridge

let fastOptions = ModbusClientOptions(responseTimeoutMilliseconds: 150, byteTimeoutMilliseconds: 50,
                                      reconnect: .init(initialMilliseconds: 50, maximumMilliseconds: 400))

func loopbackClient(_ port: Int, _ options: ModbusClientOptions = fastOptions) throws -> ModbusClient {
    try ModbusClient(.tcp(host: "127.0.0.1", port: port), options: options)
}

/// Our client against libmodbus's own server (ModbusServer wraps modbus_tcp_listen/modbus_reply),
/// in-process on a random loopback port.
@Suite struct TCPAgainstLibmodbusServer {
    let layout = ModbusServer.Layout(coils: 0..<32, discreteInputs: 100..<116, holding: 1200..<1230, input: 0..<0x50)

    @Test func readsEveryTable() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        server.setRegisters(.input, address: 0, [0x4366, 0x8000])          // 230.5 f32
        server.setRegisters(.holding, address: 1210, [0x4180, 0x0000])     // 16.0 f32
        server.setBits(.coils, address: 3, [true, false, true])
        server.setBits(.discreteInputs, address: 100, [false, true])

        let c = try loopbackClient(server.port)
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 2) == [0x4366, 0x8000])
        #expect(try c.read(RegisterCodec(.f32), from: .input, unit: 1, address: 0) == 230.5)
        #expect(try c.read(RegisterCodec(.f32), from: .holding, unit: 1, address: 1210) == 16)
        #expect(try c.readBits(.coils, unit: 1, address: 3, count: 3) == [true, false, true])
        #expect(try c.readBits(.discreteInputs, unit: 1, address: 100, count: 2) == [false, true])
        #expect(c.transactions == 5 && c.failures == 0)
    }

    @Test func writesReachTheServer() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        let c = try loopbackClient(server.port)
        try c.writeRegister(unit: 1, address: 1212, value: 6)
        try c.write(32.0, as: RegisterCodec(.f32), unit: 1, address: 1210)
        try c.writeCoil(unit: 1, address: 0, value: true)
        try c.writeCoils(unit: 1, address: 10, values: [true, true, false, true])
        #expect(server.registers(.holding, address: 1212, count: 1) == [6])
        #expect(server.registers(.holding, address: 1210, count: 2) == [0x4200, 0x0000])
        #expect(server.bits(.coils, address: 0, count: 1) == [true])
        #expect(server.bits(.coils, address: 10, count: 4) == [true, true, false, true])
    }

    @Test func floatWritesUseFunction16AsAlfenRequires() throws {
        let seen = FunctionLog()
        let server = try ModbusServer.tcp(layout: layout) { req in
            seen.append(req.function)
            return req.function == 6 ? .exception(.illegalFunction) : .reply
        }
        defer { server.stop() }
        let c = try loopbackClient(server.port)
        try c.write(13.5, as: RegisterCodec(.f32), unit: 1, address: 1210)
        #expect(seen.all == [16])
        #expect(throws: ModbusError.self) { try c.writeRegister(unit: 1, address: 1212, value: 6) }
    }

    @Test func exceptionRepliesAreTypedAndNamed() throws {
        let server = try ModbusServer.tcp(layout: layout) { req in
            req.address == 1220 ? .exception(.serverDeviceBusy) : .reply
        }
        defer { server.stop() }
        let c = try loopbackClient(server.port)
        let busy = #expect(throws: ModbusError.self) { try c.readHoldingRegisters(unit: 1, address: 1220, count: 1) }
        #expect(busy?.kind == .exception(.serverDeviceBusy))
        // Outside the layout: libmodbus itself answers illegal data address.
        let outside = #expect(throws: ModbusError.self) { try c.readHoldingRegisters(unit: 1, address: 5000, count: 2) }
        #expect(outside?.kind == .exception(.illegalDataAddress))
        #expect(outside!.description.contains("read holding registers 0x1388+2 (unit 1) on tcp 127.0.0.1:\(server.port)"))
        #expect(outside!.description.contains("illegal data address"))
        // An exception is not a lost connection: the next request works on the same connection.
        #expect(try c.readHoldingRegisters(unit: 1, address: 1200, count: 1) == [0])
        #expect(c.reconnects == 0)
    }

    @Test func silenceIsATimeoutAndTheNextReplyIsNotMistaken() throws {
        let drop = DropSwitch()
        let server = try ModbusServer.tcp(layout: layout) { _ in drop.on ? .drop : .reply }
        defer { server.stop() }
        server.setRegisters(.input, address: 0, [111])
        let c = try loopbackClient(server.port)
        drop.on = true
        let e = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(e?.kind == .timeout)
        #expect(e!.description.contains("timed out after 150 ms"))
        drop.on = false
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 1) == [111])
    }

    @Test func aLateReplyIsFlushedNotTakenForTheNextAnswer() throws {
        let delay = DropSwitch()
        let server = try ModbusServer.tcp(layout: layout) { req in
            delay.on && req.address == 0 ? .delay(milliseconds: 250) : .reply
        }
        defer { server.stop() }
        server.setRegisters(.input, address: 0, [1])
        server.setRegisters(.input, address: 1, [2])
        let c = try loopbackClient(server.port)
        delay.on = true
        #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        delay.on = false
        usleep(200_000) // the late reply to the first request has arrived by now
        // Whatever happens, the value returned for register 1 must never be register 0's.
        if let v = try? c.readInputRegisters(unit: 1, address: 1, count: 1) { #expect(v == [2]) }
        #expect(try c.readInputRegisters(unit: 1, address: 1, count: 1) == [2])
    }

    @Test func connectionRefusedThenBackoffWithoutTraffic() throws {
        // A port nothing listens on: bind, note it, close.
        let probe = try ModbusServer.tcp(layout: layout)
        let port = probe.port
        probe.stop()
        let c = try loopbackClient(port)
        let first = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(first?.kind == .connectionRefused)
        #expect(first!.description.contains("tcp 127.0.0.1:\(port)"))
        // Within the backoff: fail fast, say when the next attempt is.
        let second = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        guard case .notConnected(let ms)? = second?.kind else { Issue.record("expected notConnected, got \(String(describing: second))"); return }
        #expect(ms > 0 && ms <= 50)
    }

    @Test func reconnectsAfterTheServerRestarts() throws {
        var server = try ModbusServer.tcp(layout: layout)
        let port = server.port
        server.setRegisters(.input, address: 0, [7])
        let c = try loopbackClient(port)
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 1) == [7])
        server.stop()
        let lost = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(lost?.isConnectionLoss == true)
        #expect(!c.isConnected)

        server = try ModbusServer.tcp(port: port, layout: layout)
        defer { server.stop() }
        server.setRegisters(.input, address: 0, [8])
        var value: [UInt16]?
        let deadline = Date().addingTimeInterval(3)
        while value == nil && Date() < deadline {
            value = try? c.readInputRegisters(unit: 1, address: 0, count: 1)
            if value == nil { usleep(20_000) }
        }
        #expect(value == [8])
        #expect(c.reconnects == 1)
    }

    @Test func severalClientsAtOnce() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        server.setRegisters(.input, address: 0, [42])
        let clients = try (0..<4).map { _ in try loopbackClient(server.port) }
        for _ in 0..<5 {
            for c in clients { #expect(try c.readInputRegisters(unit: 1, address: 0, count: 1) == [42]) }
        }
        #expect(server.requestsServed == 20)
    }

    @Test func requestsOutsideModbusLimitsAreRefusedBeforeSending() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        let c = try loopbackClient(server.port)
        let e = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 126) }
        #expect(e?.kind == .invalidArgument("count 126 is outside 1–125"))
        #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 65535, count: 2) }
        #expect(server.requestsServed == 0)
    }
}

/// Our client against pymodbus: values encoded by Python's struct.
@Suite struct TCPAgainstPymodbus {
    @Test func decodesMeterValuesEncodedByPython() throws {
        let spec = """
        {"input": [{"address": 0, "type": "f32", "value": 230.5},
                   {"address": 6, "type": "f32", "value": -12.25},
                   {"address": 52, "type": "i32", "word_order": "little", "scale": 0.1, "value": -1234.5},
                   {"address": 100, "type": "u64", "value": 123456789012}],
         "holding": [{"address": 1210, "type": "f32", "value": 16.0}]}
        """
        let peer = try PyModbusPeer(tcpSpec: spec)
        defer { peer.stop() }
        let c = try loopbackClient(peer.port, .init(responseTimeoutMilliseconds: 1000))
        #expect(try c.read(RegisterCodec(.f32), from: .input, unit: 1, address: 0) == 230.5)
        #expect(try c.read(RegisterCodec(.f32), from: .input, unit: 1, address: 6) == -12.25)
        let scaled = try c.read(RegisterCodec(.i32, wordOrder: .little, scale: 0.1), from: .input, unit: 1, address: 52)
        #expect(abs(scaled - -1234.5) < 1e-9)
        #expect(try c.read(RegisterCodec(.u64), from: .input, unit: 1, address: 100) == 123456789012)
        #expect(try c.read(RegisterCodec(.f32), from: .holding, unit: 1, address: 1210) == 16)
        try c.write(10.5, as: RegisterCodec(.f32), unit: 1, address: 1210)
        #expect(try c.read(RegisterCodec(.f32), from: .holding, unit: 1, address: 1210) == 10.5)
    }
}

final class FunctionLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [UInt8] = []
    func append(_ f: UInt8) { lock.lock(); items.append(f); lock.unlock() }
    var all: [UInt8] { lock.lock(); defer { lock.unlock() }; return items }
}

