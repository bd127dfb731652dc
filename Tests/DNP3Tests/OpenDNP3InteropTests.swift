import Foundation
import LMCTestSupport
import Testing
@testable import DNP3

/// lmc's outstation against a real master: opendnp3 through PyPI dnp3-python (Tests/peers/dnp3_master.py).
@Suite(.serialized) struct OpenDNP3InteropTests {
    /// The JSON lines the master printed, decoded.
    static func records(_ m: ChildProcess) -> [[String: Any]] {
        m.lines.compactMap { try? jsonObject($0) }
    }

    static func waitFor(_ m: ChildProcess, timeout: TimeInterval = 15, _ what: String, _ match: ([String: Any]) -> Bool) throws -> [String: Any] {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let r = records(m).last(where: match) { return r }
            if !m.process.isRunning { throw PeerError("master exited before \(what): \(m.stderr.suffix(2000))") }
            usleep(20_000)
        }
        throw PeerError("no \(what) within \(timeout) s; master stdout: \(m.lines.suffix(8)); stderr: \(m.stderr.suffix(1500))")
    }

    static func value(_ gv: String, _ index: Int, event: Bool) -> ([String: Any]) -> Bool {
        { $0["kind"] as? String == "value" && $0["gv"] as? String == gv && $0["index"] as? Int == index && $0["event"] as? Bool == event }
    }

    static func wait(_ what: String, timeout: TimeInterval = 10, _ cond: () -> Bool) throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end { if cond() { return }; usleep(20_000) }
        throw PeerError("not within \(timeout) s: \(what)")
    }

    func startingValues() -> PointValues {
        var v = PointValues(map: .standard)
        v.analogs[PointMap.AI.mpValue(0)] = 12_345.5
        v.analogs[PointMap.AI.mpLimit(0)] = 40_000
        v.analogs[PointMap.AI.mpState(0)] = 2
        v.analogs[PointMap.AI.siteSetPoint(0)] = 22_000
        v.analogs[PointMap.AI.siteImport(0)] = 18_250
        v.analogs[PointMap.AI.mode] = 0
        for k in 0..<PointMap.alarmNames.count { v.binaries[PointMap.BI.alarm(k)] = false }
        for k in 0..<PointMap.modeNames.count { v.binaries[PointMap.BI.mode(k)] = k == 0 }
        v.counters[PointMap.CI.trips] = 3
        v.counters[PointMap.CI.cycles] = 1_000
        v.binaries[PointMap.BI.breakerClosed(0)] = true     // site 1's contact: not read (nil)
        v.binaries[PointMap.BI.mpBlind(0)] = false
        v.binaries[PointMap.BI.siteDeaf(0)] = true
        return v
    }

    /// Startup (integrity poll, restart IIN cleared, non-LAN time sync of a box whose clock is an hour
    /// behind), a class 1 event poll after a change with the event stamped in the master's time, and
    /// direct and select-before-operate controls on a site's remote set point.
    @Test(arguments: ["nonlan", "lan"])
    func integrityTimeSyncEventsAndControls(timesync: String) throws {
        let skewMs: UInt64 = 3_600_000
        let server = try DNP3Server(.init(host: "127.0.0.1", port: 0, outstation: .init(localAddress: 1024, masterAddresses: [1])),
                                    utcMs: { DNP3Server.wallClockMs() - skewMs })
        defer { server.stop() }
        var v = startingValues()
        server.publish(v)
        let master = try ChildProcess(Repo.python, [Repo.peer("dnp3_master.py"), "--port", "\(server.port)", "--timesync", timesync])
        defer { master.stop() }

        // The startup integrity poll: every value as published.
        let mp0 = try Self.waitFor(master, "mp[0].value from the integrity poll", Self.value("Group30Var5", PointMap.AI.mpValue(0), event: false))
        #expect(mp0["value"] as? Double == 12_345.5)
        #expect(mp0["flags"] as? Int == 1)
        let imp = try Self.waitFor(master, "site[0].import", Self.value("Group30Var5", PointMap.AI.siteImport(0), event: false))
        #expect(imp["value"] as? Double == 18_250)
        let trips = try Self.waitFor(master, "trips", Self.value("Group20Var1", PointMap.CI.trips, event: false))
        #expect(trips["value"] as? Int == 3)
        let normal = try Self.waitFor(master, "mode.normal", Self.value("Group1Var2", PointMap.BI.mode(0), event: false))
        #expect(normal["value"] as? Int == 1)
        let unused = try Self.waitFor(master, "an MP that is not configured", Self.value("Group30Var5", PointMap.AI.mpValue(7), event: false))
        #expect((unused["flags"] as? Int ?? 0) & 1 == 0, "a point without a value is not ONLINE")
        // The status binaries: a breaker closed, one whose contact was not read (COMM_LOST, not ONLINE),
        // an MP not blind, a site deaf.
        let closed = try Self.waitFor(master, "site[0].breaker_closed", Self.value("Group1Var2", PointMap.BI.breakerClosed(0), event: false))
        #expect(closed["value"] as? Int == 1 && (closed["flags"] as? Int ?? 0) & 0x01 != 0)
        let unread = try Self.waitFor(master, "site[1].breaker_closed", Self.value("Group1Var2", PointMap.BI.breakerClosed(1), event: false))
        #expect((unread["flags"] as? Int ?? 0) & 0x01 == 0 && (unread["flags"] as? Int ?? 0) & 0x04 != 0, "COMM_LOST, not ONLINE: \(unread)")
        #expect(try Self.waitFor(master, "mp[0].blind", Self.value("Group1Var2", PointMap.BI.mpBlind(0), event: false))["value"] as? Int == 0)
        #expect(try Self.waitFor(master, "site[0].deaf", Self.value("Group1Var2", PointMap.BI.siteDeaf(0), event: false))["value"] as? Int == 1)

        // opendnp3 clears the restart IIN and answers need-time by itself.
        try Self.wait("restart and need-time IIN cleared by the master") { server.outstation.iin.isDisjoint(with: [.deviceRestart, .needTime]) }
        let offset = server.outstation.timeOffsetMs
        #expect(abs(offset - Int64(skewMs)) < 1_000, "time sync corrected the hour: offset \(offset) ms")
        try Self.wait("unsolicited enabled for classes 1-3") { server.outstation.unsolicitedClasses == [1, 2, 3] }

        // A change past the limit's deadband, then a class 1 poll: the event, stamped in the master's time.
        v.analogs[PointMap.AI.mpLimit(0)] = 40_500
        v.binaries[PointMap.BI.alarm(0)] = true
        v.binaries[PointMap.BI.breakerClosed(0)] = nil      // the contact stops answering
        server.publish(v)
        let changedAt = Date().timeIntervalSince1970 * 1000
        master.send("class1")
        let ev = try Self.waitFor(master, "the class 1 g32v7 event", Self.value("Group32Var7", PointMap.AI.mpLimit(0), event: true))
        #expect(ev["value"] as? Double == 40_500)
        let stamp = try #require(ev["time"] as? Double ?? (ev["time"] as? Int).map(Double.init))
        #expect(abs(stamp - changedAt) < 2_000, "event time \(stamp) vs change at \(changedAt)")
        let alarm = try Self.waitFor(master, "the g2v2 alarm event", Self.value("Group2Var2", PointMap.BI.alarm(0), event: true))
        #expect(alarm["value"] as? Int == 1)
        let lost = try Self.waitFor(master, "the g2v2 event of the breaker contact lost", Self.value("Group2Var2", PointMap.BI.breakerClosed(0), event: true))
        #expect((lost["flags"] as? Int ?? 0) & 0x01 == 0 && (lost["flags"] as? Int ?? 0) & 0x04 != 0, "an unknown is COMM_LOST, not a state: \(lost)")
        // The master confirmed: nothing of class 1 is left.
        try Self.wait("class 1 events removed on the master's confirm") { server.outstation.events.count(class: 1) == 0 }

        #expect(server.status.framesDropped == 0)
    }

    /// Unsolicited reporting: opendnp3 confirms the restart's null unsolicited response, enables
    /// classes 1-3, and then gets a change as an unsolicited event without polling, and confirms it.
    @Test func unsolicitedEventsReachOpenDNP3WithoutAPoll() throws {
        let server = try DNP3Server(.init(host: "127.0.0.1", port: 0, outstation: .init(localAddress: 1024, masterAddresses: [1])))
        defer { server.stop() }
        var v = startingValues()
        server.publish(v)
        let master = try started(server)
        defer { master.stop() }
        try Self.wait("the null unsolicited response confirmed") { server.outstation.nullUnsolicitedConfirmed }
        #expect(server.outstation.unsolicitedClasses == [1, 2, 3])
        for step in 1...3 {
            v.analogs[PointMap.AI.mpValue(0)] = 12_345.5 + Double(step) * 5_000   // past the 1 kW deadband
            let t0 = Date()
            server.publish(v)
            let ev = try Self.waitFor(master, "unsolicited event \(step)") {
                Self.value("Group32Var7", PointMap.AI.mpValue(0), event: true)($0) && $0["value"] as? Double == 12_345.5 + Double(step) * 5_000
            }
            print("unsolicited event \(step) seen by opendnp3's SOE handler \(Int(Date().timeIntervalSince(t0) * 1000)) ms after publish: \(ev)")
            try Self.wait("the unsolicited event confirmed") { server.outstation.events.count(class: 2) == 0 && server.outstation.pendingUnsolicited == nil }
        }
        #expect(server.outstation.unsolicitedGivenUp == 0)
    }

    /// A master that has finished its startup (unsolicited enabled), with its own server.
    func started(_ server: DNP3Server) throws -> ChildProcess {
        let master = try ChildProcess(Repo.python, [Repo.peer("dnp3_master.py"), "--port", "\(server.port)", "--timesync", "none"])
        let enable = try Self.logLine(master, containing: "Begining task: Enable Unsolicited")
        _ = try Self.logLine(master, containing: "FUNC: RESPONSE", after: enable)
        return master
    }

    /// Waits for a line of opendnp3's log (stderr) containing `text`, after `from` characters.
    static func logLine(_ m: ChildProcess, containing text: String, after from: Int = 0, timeout: TimeInterval = 10) throws -> Int {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let e = m.stderr
            if e.count > from, let r = e[e.index(e.startIndex, offsetBy: from)...].range(of: text) { return e.distance(from: e.startIndex, to: r.upperBound) }
            usleep(20_000)
        }
        throw PeerError("opendnp3 never logged '\(text)'; its log ends: \(m.stderr.suffix(2000))")
    }

    /// DIRECT OPERATE and SELECT/OPERATE of a site's remote set point from opendnp3. The binding
    /// aborts when the command's result reaches Python (see dnp3_master.py), so each command gets its
    /// own master, and the evidence is opendnp3's log: it parsed our echo, and it only sends OPERATE
    /// when our answer to SELECT echoed the request with status SUCCESS.
    @Test func directAndSelectBeforeOperateFromOpenDNP3() throws {
        let server = try DNP3Server(.init(host: "127.0.0.1", port: 0, outstation: .init(localAddress: 1024, masterAddresses: [1])))
        defer { server.stop() }
        server.publish(startingValues())

        let d = try started(server)
        defer { d.stop() }
        d.send("direct 0 15000")
        let sent = try Self.logLine(d, containing: "FUNC: DIRECT_OPERATE")
        let answered = try Self.logLine(d, containing: "FUNC: RESPONSE", after: sent)
        _ = try Self.logLine(d, containing: "041,003 Analog Output - Single-precision, 16-bit count and prefix [1]", after: answered)
        try Self.wait("the direct operate at the outstation") { server.outstation.outputs[0] == 15_000 }

        let s = try started(server)
        defer { s.stop() }
        s.send("sbo 1 9000")
        let select = try Self.logLine(s, containing: "FUNC: SELECT")
        _ = try Self.logLine(s, containing: "FUNC: OPERATE", after: select)
        try Self.wait("the operate at the outstation") { server.outstation.outputs[1] == 9_000 }

        let ops = server.takeOperations()
        #expect(ops.map(\.index) == [0, 1])
        #expect(ops.map(\.value) == [15_000, 9_000])
        #expect(ops.map(\.function) == [.directOperate, .operate])
        #expect(ops.allSatisfy { $0.master == 1 })

        // A nonexistent output: opendnp3 sends it, nothing operates (its NOT_SUPPORTED status is
        // checked byte for byte in OutstationTests).
        let r = try started(server)
        defer { r.stop() }
        r.send("direct 30 100")
        let refused = try Self.logLine(r, containing: "FUNC: DIRECT_OPERATE")
        _ = try Self.logLine(r, containing: "FUNC: RESPONSE", after: refused)
        #expect(server.takeOperations().isEmpty)
        #expect(server.status.framesDropped == 0)
    }
}

/// A second, independent master: PyPI dnp3py (pure Python, Tests/peers/dnp3py_master.py). It reads
/// the same integrity poll values as opendnp3 and operates a set point with another variation and
/// qualifier (g41v1, 0x17).
@Suite(.serialized) struct DNP3PyInteropTests {
    func records(_ args: [String]) throws -> [[String: Any]] {
        let r = try run(Repo.python, [Repo.peer("dnp3py_master.py")] + args, timeout: 30)
        let lines = r.out.split(separator: "\n").compactMap { try? jsonObject($0) }
        guard lines.contains(where: { $0["kind"] as? String == "done" }) else { throw PeerError("dnp3py master failed: \(r.out)\(r.err)") }
        return lines
    }

    @Test func integrityPollAndDirectOperate() throws {
        let server = try DNP3Server(.init(host: "127.0.0.1", port: 0, outstation: .init(localAddress: 1024, masterAddresses: [1], unsolicited: false)))
        defer { server.stop() }
        var v = PointValues(map: .standard)
        v.analogs[PointMap.AI.mpValue(0)] = 12_345.5
        v.analogs[PointMap.AI.siteImport(0)] = 18_250
        v.binaries[PointMap.BI.mode(0)] = true
        v.counters[PointMap.CI.trips] = 3
        server.publish(v)

        let poll = try records(["--port", "\(server.port)", "integrity"])
        func value(_ type: String, _ index: Int) -> Double? {
            poll.last { $0["kind"] as? String == "value" && $0["type"] as? String == type && $0["index"] as? Int == index }
                .flatMap { ($0["value"] as? NSNumber)?.doubleValue }
        }
        #expect(value("analog_input", PointMap.AI.mpValue(0)) == 12_345.5)
        #expect(value("analog_input", PointMap.AI.siteImport(0)) == 18_250)
        #expect(value("binary_input", PointMap.BI.mode(0)) == 1)
        #expect(value("counter", PointMap.CI.trips) == 3)
        let iin = try #require(poll.first { $0["kind"] as? String == "response" }?["iin"] as? Int)
        #expect(iin & 0x80 != 0, "DEVICE RESTART, as dnp3py reads IIN")

        let op = try records(["--port", "\(server.port)", "direct", "2", "15000"])
        let resp = try #require(op.first { $0["kind"] as? String == "response" })
        #expect((resp["iin"] as? Int ?? 0) & 0x0700 == 0, "no function, object or parameter error: \(resp)")
        let ops = server.takeOperations()
        #expect(ops.map(\.index) == [2] && ops.map(\.value) == [15_000] && ops.map(\.function) == [.directOperate])
        #expect(server.status.framesDropped == 0)
    }
}
