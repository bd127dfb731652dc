import Foundation
import LMCTestSupport
import ModbusBridge
import Testing
@testable import SetPointRelay

/// The upstream server against pymodbus as SCADA, from an allowed and a foreign address.
@Suite struct UpstreamServerTests {
    func client(_ port: Int, _ args: [String], source: String? = nil) throws -> [String: Any] {
        var a = [Repo.peer("upstream_client.py"), String(port)]
        if let source { a += ["--source", source] }
        let r = try run(Repo.python, a + args)
        #expect(r.status == 0, "\(r.err)")
        return try jsonObject(r.out)
    }

    func f32(_ regs: [Int], _ at: Int) -> Double {
        Double(Float(bitPattern: UInt32(regs[at]) << 16 | UInt32(regs[at + 1])))
    }

    @Test func theMapReadsRightAndARemoteSetPointArrives() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: ["127.0.0.1"], software: (0, 1, 0))
        defer { up.stop() }
        up.publish(.init(mode: 3, alarmBits: 0b101, cycles: 1234, overruns: 2, trips: 1,
                         mps: [.init(value: 487_500, quality: 0, state: 2, limitW: 180_000)],
                         sites: [.init(setPointW: 150_000, boundBy: 4, pocImportW: 149_000, relayOK: true, appliedA: 217)]))
        let head = try client(up.port, ["read", "0", "21"])["registers"] as! [Int]
        #expect(head[0] == 1 && Array(head[1...3]) == [0, 1, 0])
        #expect(head[10] == 3)                                   // mode
        #expect(head[11] << 16 | head[12] == 5)                   // alarm bits
        #expect(head[13] << 16 | head[14] == 1)                   // our heartbeat counter
        #expect(head[15] << 16 | head[16] == 1234)
        let mp = try client(up.port, ["read", "100", "6"])["registers"] as! [Int]
        #expect(f32(mp, 0) == 487_500 && mp[2] == 0 && mp[3] == 2 && f32(mp, 4) == 180_000)
        let site = try client(up.port, ["read", "200", "8"])["registers"] as! [Int]
        #expect(f32(site, 0) == 150_000 && site[2] == 4 && f32(site, 3) == 149_000 && site[5] == 1 && f32(site, 6) == 217)

        #expect(up.remoteSetPoint(site: 0) == nil)
        let w = try client(up.port, ["write-float", "1000", "175000", "30"])
        #expect(w["ok"] as? Bool == true)
        let sp = up.remoteSetPoint(site: 0)
        #expect(sp?.watts == 175_000 && sp?.validitySeconds == 30)
        #expect(try client(up.port, ["write", "1100", "7"])["ok"] as? Bool == true)
        #expect(up.upstreamHeartbeatAtNs != nil)
    }

    @Test func writesOutsideTheMapAreRefused() throws {
        let up = try UpstreamServer(host: "127.0.0.1", port: 0, allowedWriters: ["127.0.0.1"], software: (0, 1, 0))
        defer { up.stop() }
        up.publish(.init(mode: 0, alarmBits: 0, cycles: 1, overruns: 0, trips: 0, mps: [], sites: []))
        let mode = try client(up.port, ["write", "10", "6"])
        #expect(mode["ok"] as? Bool == false && mode["exception"] as? Int == 2)
        let spill = try client(up.port, ["write", "1001", "1", "2", "3"])    // runs past the remote block
        #expect(spill["exception"] as? Int == 2)
        #expect(try client(up.port, ["read", "10", "1"])["registers"] as? [Int] == [0], "nothing changed")
    }

    @Test func writesFromOtherAddressesAreRefusedButReadsAreServed() throws {
        let up = try UpstreamServer(host: "0.0.0.0", port: 0, allowedWriters: ["127.0.0.1"], software: (0, 1, 0))
        defer { up.stop() }
        up.publish(.init(mode: 0, alarmBits: 0, cycles: 1, overruns: 0, trips: 0, mps: [], sites: []))
        let w = try client(up.port, ["write-float", "1000", "250000", "30"], source: "127.0.0.2")
        #expect(w["ok"] as? Bool == false && w["exception"] as? Int == 1)
        #expect(up.remoteSetPoint(site: 0) == nil)
        let r = try client(up.port, ["read", "0", "1"], source: "127.0.0.2")
        #expect(r["registers"] as? [Int] == [1])
    }
}
