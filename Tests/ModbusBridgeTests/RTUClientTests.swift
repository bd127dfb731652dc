import Foundation
import LMCTestSupport
import Testing
@testable import ModbusBridge

func rtuClient(_ device: String, baud: Int = 9600, parity: SerialLine.Parity = .none, timeout: Int = 300) throws -> ModbusClient {
    try ModbusClient(.rtu(SerialLine(device: device, baud: baud, parity: parity)),
                     options: .init(responseTimeoutMilliseconds: timeout, byteTimeoutMilliseconds: 100,
                                    reconnect: .init(initialMilliseconds: 50, maximumMilliseconds: 400)))
}

/// RTU framing over a socat pty pair: our client on one end, a server on the other.
@Suite(.serialized) struct RTUOverPty {
    @Test func againstLibmodbusRTUServer() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let server = try ModbusServer.rtu(SerialLine(device: pty.b, baud: 19200, parity: .even), unit: 7,
                                          layout: .init(holding: 0..<16, input: 0..<16))
        defer { server.stop() }
        try server.set(49.95, as: RegisterCodec(.f32), in: .input, address: 4)
        let c = try rtuClient(pty.a, baud: 19200, parity: .even)
        #expect(Float(try c.read(RegisterCodec(.f32), from: .input, unit: 7, address: 4)) == Float(49.95))
        try c.writeRegisters(unit: 7, address: 2, values: [0xBEEF, 0x0102])
        #expect(server.registers(.holding, address: 2, count: 2) == [0xBEEF, 0x0102])
        // Another unit id on the same bus: nobody answers.
        let e = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 8, address: 0, count: 1) }
        #expect(e?.kind == .timeout)
        #expect(e!.description.contains("rtu \(pty.a) 19200 8E1"))
        // The unit that exists still answers afterwards. libmodbus's RTU server, having ignored a
        // request for unit 8, takes the next frame on the bus for unit 8's reply and skips it (as on a
        // real multi-drop bus where unit 8 would answer) and resynchronises on the leftover bytes:
        // the client recovers by retrying, within three polls.
        let answers = (0..<4).map { _ -> Int? in
            usleep(50_000) // a poll period
            return (try? c.readInputRegisters(unit: 7, address: 4, count: 2))?.count
        }
        #expect(answers.suffix(2) == [2, 2], "\(answers)")
    }

    @Test func againstPymodbusRTUServerWithTwoMetersOnOneBus() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        let specs = """
        [{"input": [{"address": 0, "type": "f32", "value": 231.25}]},
         {"input": [{"address": 0, "type": "i32", "word_order": "little", "scale": 0.1, "value": 229.7}]}]
        """
        let peer = try PyModbusPeer(rtuDevice: pty.b, baud: 9600, units: [1, 2], spec: specs)
        defer { peer.stop() }
        let c = try rtuClient(pty.a, timeout: 1000)
        for _ in 0..<3 {
            #expect(try c.read(RegisterCodec(.f32), from: .input, unit: 1, address: 0) == 231.25)
            let v = try c.read(RegisterCodec(.i32, wordOrder: .little, scale: 0.1), from: .input, unit: 2, address: 0)
            #expect(abs(v - 229.7) < 1e-9)
        }
        #expect(c.failures == 0)
    }

    @Test func garbageOnTheLineIsACRCError() throws {
        let pty = try PtyPair()
        defer { pty.close() }
        // A raw responder: reads the request, answers with a well-formed frame whose CRC is wrong.
        let fd = open(pty.b, O_RDWR | O_NOCTTY)
        #expect(fd >= 0)
        defer { close(fd) }
        let responder = Thread {
            var buf = [UInt8](repeating: 0, count: 64)
            let n = read(fd, &buf, 64)
            guard n >= 8 else { return }
            usleep(5_000)
            let reply: [UInt8] = [buf[0], 0x04, 0x02, 0x12, 0x34, 0xDE, 0xAD] // CRC should be computed; DEAD is wrong
            _ = reply.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
        }
        responder.start()
        let c = try rtuClient(pty.a)
        let e = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(e?.kind == .crc)
        #expect(e!.reason.contains("bad CRC"))
    }

    @Test func missingSerialDeviceNamesThePath() throws {
        let c = try rtuClient("/dev/ttyLMC-does-not-exist")
        let e = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(e?.kind == .deviceUnavailable(ENOENT))
        #expect(e!.description.contains("/dev/ttyLMC-does-not-exist"))
        #expect(e!.isConnectionLoss)
    }

    @Test func unpluggedAdapterThenPluggedBack() throws {
        // The pty pair disappearing is what an unplugged USB adapter looks like; a new pair at the
        // same path is the adapter coming back.
        var pty = try PtyPair()
        var server = try ModbusServer.rtu(SerialLine(device: pty.b), unit: 1, layout: .init(input: 0..<4))
        server.setRegisters(.input, address: 0, [5])
        let c = try rtuClient(pty.a)
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 1) == [5])
        server.stop()
        pty.close()
        let lost = #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(lost != nil)
        pty = try PtyPair(a: pty.a, b: pty.b)
        server = try ModbusServer.rtu(SerialLine(device: pty.b), unit: 1, layout: .init(input: 0..<4))
        defer { server.stop(); pty.close() }
        server.setRegisters(.input, address: 0, [6])
        var v: [UInt16]?
        let deadline = Date().addingTimeInterval(3)
        while v == nil && Date() < deadline {
            v = try? c.readInputRegisters(unit: 1, address: 0, count: 1)
            if v == nil { usleep(20_000) }
        }
        #expect(v == [6])
    }
}
