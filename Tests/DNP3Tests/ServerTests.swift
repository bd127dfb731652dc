import Foundation
import LMCTestSupport
import Testing
@testable import DNP3

/// The TCP runner with raw bytes: link services, address filtering, allowed IPs, a master that
/// reconnects, and a publisher that never waits on a master.
@Suite(.serialized) struct ServerTests {
    func server(allowed: Set<String> = ["127.0.0.1"]) throws -> DNP3Server {
        // Unsolicited responses off: these tests read only the answers to their own requests.
        try DNP3Server(.init(host: "127.0.0.1", port: 0, allowedIPs: allowed, outstation: .init(localAddress: 1024, masterAddresses: [1], unsolicited: false)))
    }

    /// Reads link frames until `count` arrived or 2 s passed.
    func frames(_ c: RawTCP, count: Int) -> [LinkFrame] {
        var p = LinkStreamParser(), got: [LinkFrame] = []
        let end = Date().addingTimeInterval(2)
        while got.count < count && Date() < end { got += p.feed(c.receive()) }
        return got
    }

    func request(_ app: [UInt8], from source: UInt16 = 1, to dest: UInt16 = 1024, tseq: UInt8 = 0) -> [UInt8] {
        LinkFrame(fromMaster: true, primary: true, function: 4, destination: dest, source: source, userData: [0xC0 | tseq] + app).encode()
    }

    @Test func answersLinkStatusAndReadsAndDropsFramesNotForIt() throws {
        let s = try server()
        defer { s.stop() }
        let c = try RawTCP(port: s.port)
        c.send(LinkFrame(fromMaster: true, primary: true, function: 9, destination: 1024, source: 1).encode())
        let status = try #require(frames(c, count: 1).first)
        #expect(status == LinkFrame(fromMaster: false, primary: false, function: 11, destination: 1, source: 1024))
        // To another outstation, and from another master: dropped, counted, unanswered.
        // READ g1v2 index 0 (one link frame of answer).
        c.send(request([0xC1, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00], to: 7))
        c.send(request([0xC1, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00], from: 9, tseq: 1))
        c.send(request([0xC2, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00], tseq: 2))
        let answer = frames(c, count: 1)
        #expect(answer.count == 1)
        #expect(answer.first?.userData.dropFirst().prefix(2) == [0xC2, 0x81], "only the request from the master, to us, is answered")
        #expect(s.status.framesDropped == 2)
        #expect(s.status.requests == 1)
    }

    @Test func refusesAddressesNotAllowedAndANewConnectionReplacesTheOld() throws {
        let s = try server()
        defer { s.stop() }
        let foreign = try RawTCP(port: s.port, source: "127.0.0.2")
        #expect(foreign.closedByPeer(within: 2))
        #expect(s.status.refused == 1)
        let first = try RawTCP(port: s.port)
        first.send(request([0xC1, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00]))
        #expect(frames(first, count: 1).count == 1)
        // The master comes back on a new connection (the old one half-dead): served, the old one closed.
        let second = try RawTCP(port: s.port)
        #expect(first.closedByPeer(within: 2))
        second.send(request([0xC2, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00]))
        #expect(frames(second, count: 1).count == 1)
        #expect(s.status.connections == 2)
    }

    /// An event read but not confirmed when the master goes away is sent again to the next connection.
    @Test func unconfirmedEventsSurviveAReconnect() throws {
        let s = try server()
        defer { s.stop() }
        var v = PointValues(map: .standard)
        v.binaries[0] = false
        s.publish(v)
        v.binaries[0] = true
        s.publish(v)
        let first = try RawTCP(port: s.port)
        first.send(request([0xC1, 0x01, 0x3C, 0x02, 0x06]))
        let a = try #require(frames(first, count: 1).first)
        #expect(Array(a.userData.dropFirst().prefix(8)) == [0xE1, 0x81, 0x80 | 0x10, 0x00, 2, 2, 0x28, 1] as [UInt8], "CON set, one g2v2 event")
        first.close()
        let second = try RawTCP(port: s.port)
        second.send(request([0xC5, 0x01, 0x3C, 0x02, 0x06]))
        let b = try #require(frames(second, count: 1).first)
        #expect(Array(b.userData.dropFirst(5)) == Array(a.userData.dropFirst(5)), "the same event again")
        second.send(request([0xC5, 0x00], tseq: 1))
        try waitUntil { s.outstation.events.events.isEmpty }
    }

    /// A master that never reads its responses: publishing stays in-memory work. The master is cut
    /// after the send deadline.
    @Test func aMasterThatDoesNotReadNeverHoldsThePublisher() throws {
        let s = try DNP3Server(.init(host: "127.0.0.1", port: 0, outstation: .init(localAddress: 1024, masterAddresses: [1], unsolicited: false), sendDeadlineMs: 300))
        defer { s.stop() }
        var v = PointValues(map: .standard)
        for i in v.analogs.indices { v.analogs[i] = Double(i) }
        s.publish(v)
        let c = try RawTCP(port: s.port, receiveBuffer: 1024)
        let poll = request([0xC1, 0x01, 0x3C, 0x01, 0x06])
        // Class 0 polls until every buffer is full; never read anything.
        var sent = 0, full = 0
        let until = Date().addingTimeInterval(3)
        while full < 50 && Date() < until {
            let n = c.trySend(poll)
            sent += n
            if n == 0 { full += 1; usleep(10_000) } else { full = 0 }
        }
        for k in 0..<1_000 {
            v.analogs[0] = Double(k)
            s.publish(v)
        }
        #expect(sent > 0)
        // Cut by the server (without reading anything here: reading would let it make progress).
        try waitUntil { s.status.connectedPeer == nil }
        #expect(s.status.connections == 1)
    }

    func waitUntil(_ cond: () -> Bool) throws {
        let end = Date().addingTimeInterval(3)
        while Date() < end { if cond() { return }; usleep(10_000) }
        throw PeerError("condition not met within 3 s")
    }
}
