import Foundation
import Testing
@testable import ModbusBridge

/// Failures forced at the one seam where ModbusBridge calls libmodbus (ModbusFaultPlan), against a
/// real libmodbus server, so the rest of the path — error mapping, flushing, reconnecting — is real.
@Suite struct FaultInjectionAtTheSeam {
    let layout = ModbusServer.Layout(holding: 0..<8, input: 0..<8)

    @Test func failsExactlyTheNthCall() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        server.setRegisters(.input, address: 0, [9])
        let c = try loopbackClient(server.port)
        let plan = ModbusFaultPlan()
        plan.fail(.readInputRegisters, onCall: 3, with: .timeout)
        var outcomes: [String] = []
        ModbusFaultPlan.with(plan) {
            for _ in 0..<5 {
                do { _ = try c.readInputRegisters(unit: 1, address: 0, count: 1); outcomes.append("ok") } catch {
                    outcomes.append("\((error as! ModbusError).kind)")
                }
            }
        }
        #expect(outcomes == ["ok", "ok", "timeout", "ok", "ok"])
        #expect(plan.calls(of: .readInputRegisters) == 5)
        #expect(plan.forcedFailures(of: .readInputRegisters) == 1)
        // Only the forced call failed; the server saw the other four.
        #expect(server.requestsServed == 4)
    }

    @Test func everyFaultKindMapsToItsTypedError() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        let cases: [(ModbusFaultPlan.Fault, ModbusError.Kind)] = [
            (.timeout, .timeout), (.crc, .crc), (.connectionReset, .connectionReset),
            (.exception(.illegalFunction), .exception(.illegalFunction)),
            (.exception(.gatewayTargetFailedToRespond), .exception(.gatewayTargetFailedToRespond)),
            (.invalidReply, .invalidReply("wrong length or transaction id")),
            (.errno(EMSGSIZE), .system(EMSGSIZE)),
        ]
        for (fault, kind) in cases {
            let c = try loopbackClient(server.port)
            let plan = ModbusFaultPlan()
            plan.fail(.readHoldingRegisters, with: fault)
            let e = ModbusFaultPlan.with(plan) {
                #expect(throws: ModbusError.self) { try c.readHoldingRegisters(unit: 1, address: 0, count: 1) }
            }
            #expect(e?.kind == kind, "\(fault)")
        }
    }

    @Test func aResetClosesAndTheNextRequestReconnects() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        let c = try loopbackClient(server.port)
        let plan = ModbusFaultPlan()
        plan.fail(.writeRegister, onCall: 1, with: .connectionReset)
        try ModbusFaultPlan.with(plan) {
            #expect(throws: ModbusError.self) { try c.writeRegister(unit: 1, address: 0, value: 1) }
            #expect(!c.isConnected)
            try c.writeRegister(unit: 1, address: 0, value: 2)
        }
        #expect(c.isConnected)
        #expect(c.reconnects == 1)
        #expect(server.registers(.holding, address: 0, count: 1) == [2])
    }

    @Test func reconnectBacksOffBoundedWhileTheDeviceStaysAway() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        let c = try loopbackClient(server.port)
        let plan = ModbusFaultPlan()
        plan.failAlways(.connect, with: .connectionRefused)
        var waits: [Int] = []
        ModbusFaultPlan.with(plan) {
            let end = Date().addingTimeInterval(1.5)
            while Date() < end {
                do { _ = try c.readInputRegisters(unit: 1, address: 0, count: 1) } catch {
                    if case .notConnected(let ms) = (error as! ModbusError).kind { waits.append(ms) }
                }
                usleep(5_000)
            }
        }
        // Attempts were spaced: far fewer connects than requests, and no wait beyond the maximum.
        let attempts = plan.calls(of: .connect)
        #expect(attempts >= 3 && attempts <= 8, "connect attempts: \(attempts)")
        #expect(waits.allSatisfy { $0 <= 400 })
        #expect(waits.contains { $0 > 100 }, "backoff grew: \(waits.max() ?? 0)")
        // The device comes back: the plan is cleared and the client recovers by itself.
        plan.clear()
        usleep(450_000)
        try ModbusFaultPlan.with(plan) { _ = try c.readInputRegisters(unit: 1, address: 0, count: 1) }
    }

    @Test func backoffPolicyIsBoundedAndMonotone() {
        let p = ReconnectPolicy(initialMilliseconds: 100, maximumMilliseconds: 5000, multiplier: 2)
        let delays = (1...12).map { p.delayMilliseconds(afterFailures: $0) }
        #expect(delays.prefix(4) == [100, 200, 400, 800])
        #expect(delays.last == 5000)
        #expect(zip(delays, delays.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test func plansDoNotLeakAcrossTasks() throws {
        let server = try ModbusServer.tcp(layout: layout)
        defer { server.stop() }
        let plan = ModbusFaultPlan()
        plan.failAlways(.readInputRegisters, with: .timeout)
        let c = try loopbackClient(server.port)
        _ = ModbusFaultPlan.with(plan) {
            #expect(throws: ModbusError.self) { try c.readInputRegisters(unit: 1, address: 0, count: 1) }
        }
        // Outside `with`, the same client works.
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 1) == [0])
    }

    @Test func serverSideFaultsToo() throws {
        // A failing reply on the server side is how a device that stops answering mid-stream looks.
        let plan = ModbusFaultPlan()
        plan.fail(.newContext, with: .errno(ENOMEM))
        let e = ModbusFaultPlan.with(plan) {
            #expect(throws: ModbusError.self) { _ = try ModbusServer.tcp(layout: layout) }
        }
        #expect(e?.kind == .system(ENOMEM))
    }
}
