import Foundation
import LMCTestSupport
import ModbusBridge
import Testing
@testable import SetPointRelay

/// Issue 17: nothing a LAN host sends to the upstream server may stop the control loop (which calls
/// `publish` every cycle) or write where the map does not allow. Clients here are raw sockets on
/// loopback that misbehave on purpose.
@Suite struct UpstreamHostileClientTests {
    static let snapshot = UpstreamServer.Snapshot(mode: 0, alarmBits: 0, cycles: 1, overruns: 0, trips: 0, mps: [], sites: [])

    /// Runs `body` on its own thread; true if it returned within `seconds` (the thread is left to finish).
    func returns(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> DispatchSemaphore? {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { body(); done.signal() }
        return done.wait(timeout: .now() + seconds) == .success ? nil : done
    }

    /// The measured defect: a client queues reads and never reads the replies. The server used to reply
    /// with a blocking send() while holding the register lock that publish() needs, so the control loop
    /// froze. Publishing must go on whatever the client does.
    @Test func aClientThatNeverReadsItsRepliesDoesNotStallPublish() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: [], software: (0, 1, 0))
        defer { up.stop() }
        up.publish(Self.snapshot)
        let c = try RawTCP(port: up.port, receiveBuffer: 4096)
        let batch = Array(repeating: RawTCP.mbap(pdu: [3, 0, 0, 0, 125]), count: 1000).flatMap { $0 }
        // Queue reads until neither the server nor the kernel takes more (bounded: 64 MiB, 10 s).
        var sentBytes = 0, offset = 0, stuckSince: Date? = nil
        let end = Date().addingTimeInterval(10)
        while sentBytes < 64 << 20 && Date() < end {
            let n = c.trySend(Array(batch[offset...]))
            if n > 0 {
                sentBytes += n
                offset = (offset + n) % batch.count
                stuckSince = nil
            } else {
                if stuckSince == nil { stuckSince = Date() }
                if Date().timeIntervalSince(stuckSince!) > 0.5 { break }
                usleep(5_000)
            }
        }
        let sent = sentBytes / 12
        #expect(sent > 100, "the client queued \(sent) requests")
        // Now the control loop publishes 50 cycles: it must not wait on that client.
        let stuck = returns(within: 3) { for _ in 0..<50 { up.publish(Self.snapshot) } }
        #expect(stuck == nil, "publish() blocked behind a client that does not read (after \(sent) queued requests)")
        c.close()   // lets a blocked server (and with it publish) go on, so the test ends either way
        _ = stuck?.wait(timeout: .now() + 5)
    }

    /// Function 23 (read/write multiple registers) writes one range and reads another: the allow-list
    /// must judge the range written. Writing the mode register (10) while reading the remote block used
    /// to be accepted.
    @Test func function23CannotWriteOutsideTheWritableRegisters() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: ["127.0.0.1"], software: (0, 1, 0))
        defer { up.stop() }
        up.publish(Self.snapshot)
        let c = try RawTCP(port: up.port)
        // read 1000+3, write 10+1 := 6
        c.send(RawTCP.mbap(transaction: 7, pdu: [23, 0x03, 0xE8, 0, 3, 0, 10, 0, 1, 2, 0, 6]))
        let reply = c.receive()
        #expect(Array(reply.suffix(2)) == [0x97, 0x02], "expected exception 0x02, got \(reply)")
        c.send(RawTCP.mbap(transaction: 8, pdu: [3, 0, 10, 0, 1]))
        #expect(Array(c.receive().suffix(2)) == [0, 0], "the mode register is unchanged")

        // Inside the remote block it is a write like any other: 175 kW for 30 s, reading the version back.
        c.send(RawTCP.mbap(transaction: 9, pdu: [23, 0, 0, 0, 1, 0x03, 0xE8, 0, 3, 6, 0x48, 0x2A, 0xE6, 0x00, 0, 30]))
        let ok = c.receive()
        #expect(ok.count >= 11 && ok[7] == 23 && ok[8] == 2 && ok[10] == 1, "\(ok)")
        #expect(up.remoteSetPoint(site: 0)?.watts == 175_000 && up.remoteSetPoint(site: 0)?.validitySeconds == 30)
    }
}

/// The server's own limits: a dripping, non-reading, idle or surplus client loses its connection;
/// the others are served meanwhile.
@Suite struct UpstreamConnectionLimitTests {
    let limits = ModbusServer.TCPLimits(maxClients: 3, idleTimeoutMilliseconds: 1_500, frameDeadlineMilliseconds: 300,
                                        sendDeadlineMilliseconds: 500)

    func readMode(_ c: RawTCP) -> [UInt8] {
        c.send(RawTCP.mbap(transaction: 5, pdu: [3, 0, 10, 0, 1]))
        return c.receive()
    }

    @Test func aByteDrippingClientIsCutAtTheFrameDeadlineAndOthersAreServedMeanwhile() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: [], software: (0, 1, 0), limits: limits)
        defer { up.stop() }
        up.publish(UpstreamHostileClientTests.snapshot)
        let drip = try RawTCP(port: up.port)
        let good = try RawTCP(port: up.port)
        let frame = RawTCP.mbap(pdu: [3, 0, 0, 0, 1])
        var cut = false
        for b in frame {
            // One byte every 100 ms: libmodbus allowed 500 ms per byte, this frame would take 1.2 s.
            if drip.send([b]) != 1 { cut = true; break }
            #expect(readMode(good).count == 11, "a well-behaved client is answered while another drips")
            usleep(100_000)
        }
        #expect(cut || drip.closedByPeer(within: 2), "the dripping connection is closed")
        #expect(up.stats.closedSlowFrame == 1, "\(up.stats)")
        #expect(readMode(good).count == 11)
    }

    @Test func aClientThatDoesNotReadIsCutAtTheSendDeadline() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: [], software: (0, 1, 0), limits: limits)
        defer { up.stop() }
        let c = try RawTCP(port: up.port, receiveBuffer: 4096)
        let batch = Array(repeating: RawTCP.mbap(pdu: [3, 0, 0, 0, 125]), count: 2000).flatMap { $0 }
        // Requests until the server cuts the connection (bounded: 10 s).
        let end = Date().addingTimeInterval(10)
        while up.stats.closedSlowReader == 0 && Date() < end {
            if c.trySend(batch) == 0 { usleep(20_000) }
        }
        #expect(up.stats.closedSlowReader == 1, "\(up.stats)")
        let good = try RawTCP(port: up.port)
        #expect(readMode(good).count == 11)
    }

    @Test func connectionsBeyondTheCapAreClosedAndIdleOnesExpire() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: [], software: (0, 1, 0), limits: limits)
        defer { up.stop() }
        let held = try (0..<3).map { _ in try RawTCP(port: up.port) }
        for c in held { #expect(readMode(c).count == 11) }
        // 20 more: each accepted and closed at once, the three served meanwhile.
        for _ in 0..<20 {
            let extra = try RawTCP(port: up.port)
            #expect(extra.closedByPeer(within: 2))
        }
        #expect(up.stats.refused == 20 && up.stats.open == 3, "\(up.stats)")
        #expect(readMode(held[0]).count == 11)
        // Silent for longer than the idle timeout: closed, and the slots are free again.
        for c in held { #expect(c.closedByPeer(within: 4)) }
        #expect(up.stats.closedIdle == 3, "\(up.stats)")
        let again = try RawTCP(port: up.port)
        #expect(readMode(again).count == 11)
    }

    @Test func aFrameThatIsNotModbusTCPClosesTheConnection() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: [], software: (0, 1, 0), limits: limits)
        defer { up.stop() }
        let c = try RawTCP(port: up.port)
        c.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect(c.closedByPeer(within: 2))
        #expect(up.stats.closedBadFrame == 1)
    }
}

@Suite struct UpstreamBindFailureTests {
    @Test func aPortThatCannotBeBoundIsAFailureToAlarmOnAndIsRetried() throws {
        // Another listener holds the port.
        let holder = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: [], software: (0, 1, 0))
        let port = holder.port
        let service = UpstreamService(.init(host: "127.0.0.1", port: port, allowedWriters: []), retrySeconds: 1, nowNs: 1_000_000_000)
        #expect(service.server == nil)
        #expect(service.failure?.contains("address in use") == true || service.failure?.contains("in use") == true, "\(service.failure ?? "nil")")
        #expect(service.failingSinceNs == 1_000_000_000)
        #expect(!service.tick(nowNs: 1_500_000_000), "no retry before retrySeconds")
        holder.stop()
        #expect(service.tick(nowNs: 2_100_000_000), "retried and bound once the port is free")
        #expect(service.failure == nil && service.failingSinceNs == nil && service.server?.port == port)
        service.stop()
        // A name instead of an address is refused, not looked up.
        let named = UpstreamService(.init(host: "scada.example", port: 0, allowedWriters: []))
        #expect(named.failure?.contains("not a numeric IP address") == true, "\(named.failure ?? "nil")")
    }
}
