import DNP3
import Foundation
import LMCTestSupport
import Testing

/// `lmc run` with [dnp3]: the status binaries, the heartbeat output against the Modbus heartbeat,
/// classes and deadbands from the config, and a reload that keeps the outstation.
extension RunEndToEnd {
    static func freePort() throws -> Int {
        let probe = try run(Repo.python, ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        return Int(probe.out.trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    /// Centrally managed ([failsafe] upstream_heartbeat_timeout_s = 2): the upstream writes its
    /// heartbeat and a remote set point of 160 kW, either through the Modbus map (register 1100,
    /// pymodbus) or through DNP3 (the heartbeat output g41 index 8, dnp3py). Both ways the set point
    /// is honoured (231 A at the charger) while the heartbeat comes, and when it stops, the same
    /// thing happens: FAILSAFE "upstream heartbeat lapsed", the charger at the safe 150 kVA = 217 A.
    @Test(arguments: ["modbus", "dnp3", "dnp3-crob"])
    func theUpstreamHeartbeatSupervisesCentralModeTheSameWayOverModbusAndDNP3(via: String) throws {
        let port = try Self.freePort()
        let extra = via.hasPrefix("dnp3") ? "\n[dnp3]\nport = \(port)\nremote_validity_s = 120\n"
                                  : "\n[upstream]\nlisten = \"127.0.0.1\"\nport = \(port)\nallowed_writers = [\"127.0.0.1\"]\n"
        let d = try Daemon(tag: "hb\(via)", extra: extra, failsafe: "upstream_heartbeat_timeout_s = 2")
        let upstream: ChildProcess
        // dnp3py connects once: start it when lmc's outstation listens (a master started earlier was refused
        // and the case failed with "no upstream heartbeat since start").
        if via.hasPrefix("dnp3") { try waitFor(10, "the DNP3 outstation listening") { d.lmc.stderr.contains("listening on tcp") } }
        if via == "dnp3" {
            upstream = try ChildProcess(Repo.python, [Repo.peer("dnp3py_master.py"), "--port", "\(port)", "heartbeat", "\(PointMap.AO.heartbeat)", "0.5", "0", "160000"])
        } else if via == "dnp3-crob" {
            upstream = try ChildProcess(Repo.python, [Repo.peer("dnp3py_master.py"), "--port", "\(port)", "crob-heartbeat", "\(PointMap.BO.heartbeat)", "0.5", "0", "160000"])
        } else {
            let script = """
                import time, struct
                from pymodbus.client import ModbusTcpClient
                c = ModbusTcpClient("127.0.0.1", port=\(port), retries=0, timeout=2)
                while not c.connect(): time.sleep(0.2)
                hi, lo = struct.unpack(">HH", struct.pack(">f", 160000.0))
                print("setpoint", not c.write_registers(1000, [hi, lo, 120], device_id=1).isError(), flush=True)
                n = 0
                while True:
                    n += 1
                    try:
                        ok = not c.write_registers(1100, [n % 65536], device_id=1).isError()
                    except Exception:
                        ok = False
                    print("heartbeat", n, ok, flush=True)
                    if not ok:   # as SCADA does: connect again (a reload restarts the server)
                        c.close()
                        c.connect()
                    time.sleep(0.5)
                """
            upstream = try ChildProcess(Repo.python, ["-c", script])
        }
        defer { upstream.stop() }
        // First the master's heartbeats answered, then the charger: before the first heartbeat the box may
        // pass through 231 A on its way up (the timeout runs from the start), so 231 A alone proves nothing.
        if via.hasPrefix("dnp3") {
            try waitFor(10, "dnp3py's heartbeats answered") { upstream.lines.contains { $0.contains("\"kind\": \"heartbeat\"") } }
        }
        try waitFor(20, "charger at 231 A: the central set point honoured while the heartbeat comes") { try d.applied() == 231 }
        let normal = try d.status()
        #expect(normal.contains("NORMAL"), "\(normal)")
        if via.hasPrefix("dnp3") {
            try waitFor(3, "the first DNP3 heartbeat in the events ring") {
                try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", d.dir]).out
                    .contains("DNP3 directOperate from master 1: upstream heartbeat" + (via == "dnp3-crob" ? " (CROB)" : ""))
            }
        }
        // Still honoured 3 s later (longer than the timeout): the heartbeat keeps the box managed.
        usleep(3_000_000)
        #expect(try d.applied() == 231)
        // A reload with the config unchanged: the heartbeat seen before it still counts (the box stays
        // managed; no fail-safe until the next write).
        let text = try String(contentsOfFile: d.path, encoding: .utf8)
        try (text + "\n# touched\n").write(toFile: d.path, atomically: true, encoding: .utf8)
        kill(d.lmc.process.processIdentifier, SIGHUP)
        try waitFor(5, "the reload") { d.lmc.stderr.contains("reloaded") }
        usleep(2_000_000)
        let modes = try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", d.dir]).out
            .split(separator: "\n").filter { $0.contains("FAILSAFE") || $0.contains("failsafe") }
        #expect(modes.isEmpty, "no fail-safe across the reload: \(modes)")
        #expect(try d.applied() == 231)
        upstream.stop()
        let stopped = Date()
        try waitFor(10, "FAILSAFE: upstream heartbeat lapsed") { try d.status().contains("upstream heartbeat lapsed") }
        let lapsedS = Date().timeIntervalSince(stopped)
        try waitFor(5, "charger at the safe 217 A") { try d.applied() == 217 }
        let s = try d.status()
        #expect(s.contains("FAILSAFE") && s.contains("upstream heartbeat lapsed"), "\(s)")
        let amps = try d.applied()
        print("\(via): heartbeat stopped → FAILSAFE after \(String(format: "%.1f", lapsedS)) s (timeout 2 s), charger \(amps) A")
    }

    /// [dnp3] class_mp_value = 1, deadband_mp_value = 50000: opendnp3's class 1 poll gets mp[0].value
    /// (by default class 2, never in a class 1 poll), and only once it moved more than 50 kVA (by
    /// default 1 kVA).
    @Test func aConfiguredClassAndDeadbandChangeWhatTheMasterSees() throws {
        let port = try Self.freePort()
        let d = try Daemon(tag: "dnp3c", extra: "\n[dnp3]\nport = \(port)\nunsolicited = false\nclass_mp_value = 1\ndeadband_mp_value = 50000\n")
        try waitFor(25, "charger at 362 A") { try d.applied() == 362 }
        let master = try ChildProcess(Repo.python, [Repo.peer("dnp3_master.py"), "--port", "\(port)", "--timesync", "none"])
        defer { master.stop() }
        func records() -> [[String: Any]] { master.lines.compactMap { try? jsonObject($0) } }
        // Responses as opendnp3 logs them (its SOE handler is not called for an empty one).
        func ends() -> Int { master.stderr.components(separatedBy: "FUNC: RESPONSE").count }
        func mpEvents() -> [Double] {
            records().filter { $0["gv"] as? String == "Group32Var7" && $0["index"] as? Int == 0 && ($0["event"] as? NSNumber)?.boolValue == true }
                .compactMap { ($0["value"] as? NSNumber)?.doubleValue }
        }
        try waitFor(10, "the startup integrity poll") { records().contains { $0["gv"] as? String == "Group30Var5" && $0["index"] as? Int == 0 } }
        usleep(500_000)
        func poll(_ what: String) throws {
            let before = ends()
            master.send(what)
            try waitFor(5, "the \(what) poll answered") { ends() > before }
        }
        try poll("class1")
        let startEvents = mpEvents().count
        // 400 → 430 kVA: within the 50 kVA deadband: nothing.
        d.meter.send(#"set {"apparent_power_total": 430000}"#)
        usleep(1_500_000)
        try poll("class1")
        try poll("class2")
        #expect(mpEvents().count == startEvents, "a 30 kVA move inside the 50 kVA deadband: no event (\(mpEvents()))")
        // 400 → 470 kVA: past it, an event in class 1.
        d.meter.send(#"set {"apparent_power_total": 470000}"#)
        usleep(1_500_000)
        try poll("class1")
        let after = mpEvents().dropFirst(startEvents)
        // The MP's filtered value rises to 470 kVA: the event is its first value 50 kVA past the last reported 400 kVA.
        #expect(after.count == 1 && after.allSatisfy { $0 > 440_000 && $0 < 472_000 }, "one class 1 event, 50 kVA past 400 kVA: \(Array(after))")
    }

    /// A SIGHUP with [dnp3] unchanged keeps the outstation: the master's TCP session stays open, the
    /// restart IIN it cleared stays clear, and the events it read but did not confirm are sent again
    /// on the next read. (Before: the reload stopped the server — the session closed and a new one
    /// found a restarted outstation without those events.) The status binaries are read too: the
    /// breaker's contact, mp[0] not blind, the site not deaf.
    @Test func unconfirmedEventsSurviveAReloadAndTheSessionStays() throws {
        let port = try Self.freePort()
        let d = try Daemon(tag: "dnp3r", extra: "\n[dnp3]\nport = \(port)\nunsolicited = false\n"
                           + "\n[site.breaker]\nchip = \"gpiochip0\"\ntrip_line = 3\nclose_line = 4\naux_line = 5\naux_active_low = true\npulse_ms = 50\n"
                           // A second site with neither a charger relay nor OSCP: whether its set point is taken is unknown.
                           + "\n[[site]]\nid = \"depot\"\nfirm_kw = 10\nrated_kw = 20\n",
                           environment: ["LMC_GPIO_SIMULATOR": "gpiochip0:8"])
        try waitFor(25, "charger at 362 A") { try d.applied() == 362 }
        let c = try RawTCP(port: port)
        var parser = LinkStreamParser()
        var tseq: UInt8 = 0
        func exchange(_ app: [UInt8]) throws -> [UInt8] {
            c.send(LinkFrame(fromMaster: true, primary: true, function: 4, destination: 1024, source: 1, userData: [0xC0 | tseq] + app).encode())
            tseq = (tseq + 1) & 0x3F
            let end = Date().addingTimeInterval(3)
            var got: [UInt8] = []
            while Date() < end {
                for f in parser.feed(c.receive()) where !f.userData.isEmpty {
                    got += f.userData.dropFirst()
                    if f.userData[0] & 0x80 != 0 { return got }   // FIN
                }
            }
            throw PeerError("no response within 3 s (session closed: \(c.closedByPeer(within: 0.1)))")
        }
        // Clear DEVICE RESTART; read the status binaries.
        _ = try exchange([0xC1, 0x02, 0x50, 0x01, 0x00, 0x07, 0x07, 0x00])
        let n = PointMap.standard.binaries.count
        let bi = try exchange([0xC2, 0x01, 0x01, 0x02, 0x00, 0x00, UInt8(n - 1)])
        #expect(Array(bi[4..<7]) == [1, 2, 0x00])
        #expect(bi[9 + PointMap.BI.breakerClosed(0)] == 0x81, "site 0's breaker: closed, ONLINE")
        #expect(bi[9 + PointMap.BI.breakerClosed(1)] == 0x04, "site 1 has no breaker: COMM_LOST, not ONLINE")
        #expect(bi[9 + PointMap.BI.mpBlind(0)] == 0x01, "mp[0] not blind, ONLINE")
        #expect(bi[9 + PointMap.BI.siteDeaf(0)] == 0x01, "site 0 not deaf, ONLINE")
        #expect(bi[9 + PointMap.BI.siteDeaf(1)] == 0x04, "site 1 has no relay: deaf unknown, COMM_LOST")
        #expect(bi[9 + PointMap.BI.relayOK(0)] == 0x81, "site 0's relay takes the set point")
        #expect(bi[9 + PointMap.BI.relayOK(1)] == 0x04, "site 1 has no relay: relay_ok unknown, COMM_LOST, not a good value")
        // Consume what is queued (confirmed), then a step past the deadband: events read, not confirmed.
        let first = try exchange([0xC3, 0x01, 0x3C, 0x02, 0x06, 0x3C, 0x03, 0x06, 0x3C, 0x04, 0x06])
        if first[0] & 0x20 != 0 { _ = c.send(LinkFrame(fromMaster: true, primary: true, function: 4, destination: 1024, source: 1, userData: [0xC0 | tseq, 0xC3, 0x00]).encode()); tseq = (tseq + 1) & 0x3F }
        usleep(300_000)
        d.meter.send(#"set {"apparent_power_total": 460000}"#)
        usleep(1_000_000)
        let read = try exchange([0xC4, 0x01, 0x3C, 0x02, 0x06])
        #expect(read[0] & 0x20 != 0, "CON: events in it")
        #expect(read.count > 8 && read[4] == 32, "g32 events: \(read.prefix(12).map { String(format: "%02X", $0) })")
        // The same config again, and SIGHUP.
        let text = try String(contentsOfFile: d.path, encoding: .utf8)
        try (text + "\n# touched\n").write(toFile: d.path, atomically: true, encoding: .utf8)
        kill(d.lmc.process.processIdentifier, SIGHUP)
        try waitFor(5, "the reload") { d.lmc.stderr.contains("reloaded") }
        #expect(d.lmc.stderr.contains("reload keeps the DNP3 outstation"))
        #expect(!c.closedByPeer(within: 0.3), "the master's session stays open across the reload")
        let again = try exchange([0xC5, 0x01, 0x3C, 0x02, 0x06])
        let iin = UInt16(again[2]) | UInt16(again[3]) << 8
        #expect(iin & 0x0080 == 0, "no DEVICE RESTART: the same outstation (IIN \(String(format: "%04X", iin)))")
        let before = Self.analogEvents(read), now = Self.analogEvents(again)
        #expect(!before.isEmpty && before.allSatisfy { e in now.contains(e) }, "the unconfirmed events again, as they were: \(before) in \(now)")
    }

    /// Issue 19: "a master that goes away and comes back, getting the unconfirmed events", with
    /// opendnp3 in `lmc run`. The first master does its startup (integrity poll, ENABLE UNSOLICITED)
    /// and gets a 400 → 470 kVA step unsolicited (deadband_mp_value = 50000: one mp[0].value event),
    /// then goes away (its process ends). While no master is connected the meter steps down to 380 kVA
    /// (one more mp[0].value event) and a test trip opens the breaker (binary site[0].breaker_closed
    /// 1 → 0, mode.tripped 0 → 1, the analog mode 0 → 5). A new opendnp3 master connects 3 s later: it
    /// gets exactly those events, stamped when they happened (not at the reconnect), with the step's
    /// values, and none of the events the first master had confirmed. `startup`: the new master's own
    /// startup ("standard": DISABLE UNSOLICITED, integrity poll, ENABLE UNSOLICITED), or none ("quiet"):
    /// then the events must come unsolicited, as the first master had enabled, and be confirmed once.
    @Test(arguments: ["standard", "quiet"])
    func aMasterThatGoesAwayAndComesBackGetsTheEventsOfItsAbsence(startup: String) throws {
        let port = try Self.freePort()
        let d = try Daemon(tag: "dnp3g\(startup)", extra: "\n[dnp3]\nport = \(port)\ndeadband_mp_value = 50000\nunsolicited_confirm_timeout_s = 0.5\n"
                           + "\n[site.breaker]\nchip = \"gpiochip0\"\ntrip_line = 3\nclose_line = 4\naux_line = 5\naux_active_low = true\npulse_ms = 50\n",
                           environment: ["LMC_GPIO_SIMULATOR": "gpiochip0:8"])
        try waitFor(25, "charger at 362 A") { try d.applied() == 362 }
        struct Event: Hashable, CustomStringConvertible {
            var gv: String, index: Int, value: Double, time: Double, at: Double
            var description: String { "\(gv)[\(index)]=\(value)@\(Int64(time))" }
            /// The event as the outstation sent it (not when this master got it).
            var sent: [String] { [gv, "\(index)", "\(value)", "\(time)"] }
        }
        func events(_ m: ChildProcess) -> [Event] {
            m.lines.compactMap { try? jsonObject($0) }.compactMap { r -> Event? in
                guard r["kind"] as? String == "value", (r["event"] as? NSNumber)?.boolValue == true, let gv = r["gv"] as? String,
                      let index = r["index"] as? Int, let value = (r["value"] as? NSNumber)?.doubleValue,
                      let time = (r["time"] as? NSNumber)?.doubleValue, let at = (r["at"] as? NSNumber)?.doubleValue else { return nil }
                return Event(gv: gv, index: index, value: value, time: time, at: at)
            }
        }
        let first = try ChildProcess(Repo.python, [Repo.peer("dnp3_master.py"), "--port", "\(port)", "--timesync", "none"])
        defer { first.stop() }
        try waitFor(10, "the first master's startup") { first.stderr.contains("FUNC: ENABLE_UNSOLICITED") }
        d.meter.send(#"set {"apparent_power_total": 470000, "current_l1": 681.2, "current_l2": 681.2, "current_l3": 681.2}"#)
        try waitFor(5, "the 470 kVA step at the first master, unsolicited") {
            events(first).contains { $0.gv == "Group32Var7" && $0.index == 0 && $0.value > 440_000 }
        }
        usleep(1_000_000)   // its confirm sent and taken
        let confirmed = events(first)
        // The master goes away: its process ends, its TCP connection with it.
        first.terminate()
        let goneMs = Date().timeIntervalSince1970 * 1000
        try waitFor(5, "lmc sees the master gone") { try d.status().contains("dnp3: no master connected") }
        // While it is away: a step down past the deadband, then a test trip.
        let stepMs = Date().timeIntervalSince1970 * 1000
        d.meter.send(#"set {"apparent_power_total": 380000, "power_total": 370000, "current_l1": 550.7, "current_l2": 550.7, "current_l3": 550.7}"#)
        usleep(1_500_000)
        let tripMs = Date().timeIntervalSince1970 * 1000
        let trip = try run(Repo.lmc, ["test", "trip", "--site", "hub", "--yes", "--socket", d.socket])
        #expect(trip.status == 0, "\(trip.err)")
        try waitFor(5, "TRIPPED") { try d.status().contains("TRIPPED") }
        usleep(3_000_000)
        // A new master connects.
        let reconnectMs = Date().timeIntervalSince1970 * 1000
        let second = try ChildProcess(Repo.python, [Repo.peer("dnp3_master.py"), "--port", "\(port)", "--timesync", "none", "--startup", startup])
        defer { second.stop() }
        func one(_ gv: String, _ index: Int) -> [Event] { events(second).filter { $0.gv == gv && $0.index == index } }
        try waitFor(10, "the events of its absence at the new master") {
            !one("Group32Var7", 0).isEmpty && !one("Group2Var2", PointMap.BI.breakerClosed(0)).isEmpty && !one("Group32Var7", 48).isEmpty
        }
        if startup == "standard" {
            try waitFor(10, "the new master's startup") { second.stderr.contains("FUNC: ENABLE_UNSOLICITED") }
        }
        usleep(1_500_000)   // anything sent again would be here by now (an unconfirmed unsolicited response is repeated after 0.5 s)
        let got = events(second)
        let open = second.lines.compactMap { try? jsonObject($0) }.first { $0["kind"] as? String == "channel" && $0["state"] as? String == "OPEN" }
        let openAt = (open?["at"] as? NSNumber)?.doubleValue ?? reconnectMs
        // The step down: one mp[0].value event, 50 kVA below the 470 kVA step's, stamped at the step.
        let mp = one("Group32Var7", 0)
        #expect(mp.count == 1 && mp.allSatisfy { $0.value > 378_000 && $0.value < 422_000 }, "one mp[0].value event of the step to 380 kVA: \(mp)")
        for e in mp {
            #expect(e.time >= stepMs - 200 && e.time < stepMs + 1_500, "stamped at the step (\(Int64(stepMs))), not at the reconnect (\(Int64(reconnectMs))): \(e)")
        }
        // The trip: the breaker's contact opens, the mode goes to TRIPPED, once each, stamped at the trip.
        let breaker = one("Group2Var2", PointMap.BI.breakerClosed(0)), tripped = one("Group2Var2", 12), mode = one("Group32Var7", 48)
        #expect(breaker.count == 1 && breaker.first?.value == 0, "site[0].breaker_closed 1 → 0 once: \(breaker)")
        #expect(tripped.count == 1 && tripped.first?.value == 1, "mode.tripped 0 → 1 once: \(tripped)")
        #expect(mode.map(\.value) == [4, 5], "mode 0 → 4 (NON_RESPONSE, tripping) → 5 (TRIPPED): \(mode)")
        for e in breaker + tripped + mode {
            #expect(e.time >= tripMs - 200 && e.time < tripMs + 2_000, "stamped at the trip (\(Int64(tripMs))), not at the reconnect (\(Int64(reconnectMs))): \(e)")
        }
        // Nothing twice, and nothing the first master had confirmed.
        let sent = got.map(\.sent)
        #expect(Set(sent).count == sent.count, "no event twice: \(got)")
        let old = Set(confirmed.map(\.sent))
        #expect(!sent.contains { old.contains($0) }, "none of the \(confirmed.count) events the first master confirmed: \(got.filter { old.contains($0.sent) })")
        #expect(!mp.contains { $0.value > 440_000 }, "the 470 kVA step's event not again")
        let receivedMs = (mp + breaker + tripped + mode).map(\.at).max() ?? 0
        // opendnp3 disables unsolicited reporting first thing; lmc may have sent the events unsolicited
        // before that reached it (either way once), else they come in the startup integrity poll.
        let log = second.stderr
        let how = log.range(of: "FUNC: UNSOLICITED_RESPONSE").map { log[..<$0.lowerBound].contains("FUNC: READ") ? "unsolicited"
                                                                    : log.contains("FUNC: READ") ? "unsolicited, before its integrity poll" : "unsolicited, no poll" }
            ?? "in its startup integrity poll"
        if startup == "quiet" {
            #expect(!log.contains("FUNC: READ") && log.contains("FUNC: UNSOLICITED_RESPONSE"), "no poll: the events came unsolicited")
            #expect(log.contains("UNS: 1 SEQ: ") && log.components(separatedBy: "\n").contains { $0.contains("UNS: 1") && $0.contains("FUNC: CONFIRM") },
                    "opendnp3 confirmed them")
        }
        print("\(startup): master away \(String(format: "%.1f", (reconnectMs - goneMs) / 1000)) s; new master's connect to the events of its absence: "
              + "\(Int(receivedMs - openAt)) ms (\(how)); \(got.count) events to it, \(confirmed.count) to the first")
        print(got.map(\.description).joined(separator: " "))
    }

    /// The g32v7 events of a response (index, value, time), in order; stops at any other object.
    static func analogEvents(_ r: [UInt8]) -> [[Double]] {
        var out: [[Double]] = [], p = 4
        while p + 5 <= r.count, r[p] == 32, r[p + 1] == 7, r[p + 2] == 0x28 {
            let n = Int(r[p + 3]) | Int(r[p + 4]) << 8
            p += 5
            for _ in 0..<n where p + 13 <= r.count {
                let index = Int(r[p]) | Int(r[p + 1]) << 8
                let bits = UInt32(r[p + 3]) | UInt32(r[p + 4]) << 8 | UInt32(r[p + 5]) << 16 | UInt32(r[p + 6]) << 24
                let time = (0..<6).reduce(0.0) { $0 + Double(r[p + 7 + $1]) * pow(256, Double($1)) }
                out.append([Double(index), Double(Float(bitPattern: bits)), time])
                p += 13
            }
        }
        return out
    }
}
