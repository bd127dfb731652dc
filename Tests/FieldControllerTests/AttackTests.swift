import Foundation
import LMCTestSupport
import Testing

/// Issue 17, from outside: a real `lmc run` on loopback (pymodbus meter and charger) under each attack a
/// LAN host, a CPMS or a console user can mount. Each asserts what an operator would see: the control
/// loop kept cycling (the cycle count in `lmc status --json` advances), lmc is still running, the charger
/// was never told more than the constraint allows (rated 250 kVA = 362 A here), and the alarm that
/// applies is raised. `make attack` runs these suites; `make test` runs them with everything else.
/// Every attack is bounded in connections, bytes and time; all traffic is on 127.0.0.1.
@Suite(.serialized) struct NetworkAttacks {
    static let ratedA = 362.0

    static func freePort() throws -> Int {
        let probe = try run(Repo.python, ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        return Int(probe.out.trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    /// `lmc status --json`, with a timeout: a console that cannot answer is a finding, not a hang.
    static func status(_ d: Daemon) throws -> [String: Any] {
        let r = try run(Repo.lmc, ["status", "--json", "--socket", d.socket], timeout: 8)
        guard let o = try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any] else { throw PeerError("status: \(r.out) \(r.err)") }
        return o
    }
    static func cycles(_ d: Daemon) throws -> Int { (try status(d)["cycles"] as? Int) ?? -1 }

    func waitFor(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if (try? condition()) == true { return }
            usleep(50_000)
        }
        Issue.record("not within \(seconds) s: \(what)")
    }

    /// Starts lmc with `extra` config and waits until it controls (charger at the rated 362 A).
    func daemon(_ tag: String, extra: String, siteExtra: String = "") throws -> Daemon {
        let d = try Daemon(tag: "atk-\(tag)", extra: extra, siteExtra: siteExtra)
        // Under a sanitizer (make sanitize sets LMC_SLOW) lmc took 12–16 s to reach it on a loaded 2-core box.
        // The config is incremental without a PoC meter: the first release waits release_interval_s (5 s)
        // from the start (docs/control.md), so a loaded box needs more than the 15 s it had before that.
        try waitFor(ProcessInfo.processInfo.environment["LMC_SLOW"] == nil ? 25 : 45, "charger at 362 A before the attack") { try d.applied() == Self.ratedA }
        return d
    }

    /// Runs `attack` (which keeps its pressure on while it runs), sampling the charger; then checks the
    /// outside invariants and returns the cycle-count advance measured during the attack.
    @discardableResult
    func underAttack(_ name: String, _ d: Daemon, _ attack: () throws -> Void) throws -> Int {
        let before = try Self.cycles(d)
        let t0 = Date()
        try attack()
        // An attack whose condition held at once still leaves the loop half a second (5 periods) to show
        // that it cycles.
        let spent = Date().timeIntervalSince(t0)
        if spent < 0.5 { usleep(UInt32((0.5 - spent) * 1e6)) }
        let seconds = Date().timeIntervalSince(t0)
        let after = try Self.cycles(d)
        print("attack \(name): cycles \(before) -> \(after) (+\(after - before)) in \(String(format: "%.1f", seconds)) s")
        #expect(after > before, "\(name): the control loop stopped cycling (\(before) -> \(after))")
        #expect(d.lmc.process.isRunning, "\(name): lmc died: \(d.lmc.stderr.suffix(2000))")
        #expect(try d.applied() <= Self.ratedA, "\(name): the charger was told more than the constraint allows")
        return after - before
    }

    /// While the attack holds its pressure: two samples of the cycle count some 0.6 s apart must differ.
    /// (The old server froze the loop completely once the non-reading client's buffers were full: the
    /// count stood still while the status still said NORMAL.)
    func stillCycling(_ d: Daemon, _ name: String) throws {
        let c1 = try Self.cycles(d)
        usleep(600_000)
        let c2 = try Self.cycles(d)
        print("attack \(name): while held, cycles \(c1) -> \(c2)")
        #expect(c2 > c1, "\(name): the cycle count stood still at \(c1) while under attack")
    }

    func upstream(_ port: Int, maxClients: Int? = nil) -> String {
        "\n[upstream]\nlisten = \"127.0.0.1\"\nport = \(port)\nallowed_writers = [\"127.0.0.1\"]\n" + (maxClients.map { "max_clients = \($0)\n" } ?? "")
    }

    /// Reads the upstream heartbeat register (13, u32) as SCADA would; nil if not answered.
    func heartbeat(_ port: Int) -> Int? {
        guard let c = try? RawTCP(port: port) else { return nil }
        c.send(RawTCP.mbap(transaction: 3, pdu: [3, 0, 13, 0, 2]))
        let r = c.receive()
        guard r.count == 13 else { return nil }
        return Int(r[9]) << 24 | Int(r[10]) << 16 | Int(r[11]) << 8 | Int(r[12])
    }

    /// The measured defect: a client queues reads and never reads the replies; the loop froze at one
    /// cycle count while the status still said NORMAL.
    @Test func modbusClientThatNeverReads() throws {
        let port = try Self.freePort()
        let d = try daemon("noread", extra: upstream(port))
        try underAttack("Modbus client that never reads", d) {
            let c = try RawTCP(port: port, receiveBuffer: 4096)
            let batch = Array(repeating: RawTCP.mbap(pdu: [3, 0, 0, 0, 125]), count: 1000).flatMap { $0 }
            var stuckSince: Date?
            let end = Date().addingTimeInterval(6)
            while Date() < end {
                if c.trySend(batch) > 0 { stuckSince = nil } else {
                    if stuckSince == nil { stuckSince = Date() }
                    if Date().timeIntervalSince(stuckSince!) > 1.5 { break }
                    usleep(10_000)
                }
            }
            try stillCycling(d, "Modbus non-reader")
            // Held: SCADA (another client) is still served and sees the heartbeat move.
            let h1 = heartbeat(port)
            usleep(500_000)
            let h2 = heartbeat(port)
            #expect(h1 != nil && h2 != nil && h2! > h1!, "the map's heartbeat moves for other clients: \(String(describing: h1)) -> \(String(describing: h2))")
            c.close()
        }
    }

    @Test func modbusByteDripAndConnectionFlood() throws {
        let port = try Self.freePort()
        let d = try daemon("drip", extra: upstream(port, maxClients: 8))
        try underAttack("Modbus byte drip", d) {
            let drip = try RawTCP(port: port)
            var cut = false
            for (i, b) in RawTCP.mbap(pdu: [3, 0, 0, 0, 1]).enumerated() {
                if drip.send([b]) != 1 { cut = true; break }
                if i == 1 { #expect(heartbeat(port) != nil, "SCADA is served while another client drips") }
                usleep(250_000)   // libmodbus waited 500 ms per byte: this frame would have held the server 3 s
            }
            #expect(cut || drip.closedByPeer(within: 2), "the dripping connection is cut at the frame deadline")
            #expect(heartbeat(port) != nil)
        }
        try underAttack("Modbus connection flood (300)", d) {
            // In waves of 60 held at once: the test process shares its descriptors with the suites running
            // beside it, whose libmodbus clients use select() and abort on a descriptor past FD_SETSIZE.
            var closed = 0, opened = 0
            for wave in 0..<5 {
                var held: [RawTCP] = []
                for _ in 0..<60 { if let c = try? RawTCP(port: port) { held.append(c) } }
                opened += held.count
                if wave == 2 { try stillCycling(d, "Modbus flood") }
                closed += held.filter { $0.closedByPeer(within: 0.05) }.count
                held.forEach { $0.close() }
                usleep(100_000)
            }
            #expect(closed >= opened - 5 * 8 - 5, "connections beyond the caps are closed at once (\(closed) of \(opened))")
            usleep(200_000)
            #expect(heartbeat(port) != nil, "served again once the flood is gone")
        }
    }

    @Test func modbusFunction23IntoReadOnlyRegisters() throws {
        let port = try Self.freePort()
        let d = try daemon("fc23", extra: upstream(port))
        try underAttack("Modbus fn23 write to read-only registers", d) {
            let c = try RawTCP(port: port)
            // read 1000+3, write the mode register 10 := 5 (TRIPPED) from an allowed writer
            c.send(RawTCP.mbap(transaction: 1, pdu: [23, 0x03, 0xE8, 0, 3, 0, 10, 0, 1, 2, 0, 5]))
            #expect(Array(c.receive().suffix(2)) == [0x97, 0x02], "refused with exception 0x02")
            c.send(RawTCP.mbap(transaction: 2, pdu: [3, 0, 10, 0, 1]))
            #expect(Array(c.receive().suffix(2)) == [0, 0], "the map still says NORMAL")
            // A remote set point of 1 GW, valid 60 s, through fn23: it is one more limit, never a raise.
            c.send(RawTCP.mbap(transaction: 3, pdu: [23, 0, 0, 0, 1, 0x03, 0xE8, 0, 3, 6, 0x4E, 0x6E, 0x6B, 0x28, 0, 60]))
            #expect(c.receive().count == 11)
            usleep(1_000_000)
            #expect(try d.applied() <= Self.ratedA)
        }
    }

    @Test func controlSocketSlowClientsAndFlood() throws {
        let d = try daemon("ctl", extra: "")
        try underAttack("control socket: 40 clients that send nothing, then 300 connects", d) {
            var slow: [Int32] = []
            for _ in 0..<40 { if let fd = try? unixConnect(d.socket) { slow.append(fd) } }
            defer { slow.forEach { close($0) } }
            try stillCycling(d, "control-socket silent clients")
            // With them all connected and silent, the console still answers at once.
            let r = try run(Repo.lmc, ["status", "--socket", d.socket], timeout: 8)
            #expect(r.status == 0 && r.out.contains("NORMAL"), "\(r.out)\(r.err)")
            usleep(1_500_000)   // held silent for most of their 2 s deadline
            for _ in 0..<300 { if let fd = try? unixConnect(d.socket) { close(fd) } }
            let again = try run(Repo.lmc, ["status", "--socket", d.socket], timeout: 8)
            #expect(again.status == 0 && again.out.contains("NORMAL"), "\(again.out)\(again.err)")
        }
    }

    /// A console user who may read but not change sends refused commands in a loop: the events ring (the
    /// audit trail, of fixed size) gets 5 refusals a minute from that user, not one per attempt.
    @Test(.enabled(if: getuid() == 0, "creates a test user; needs root"))
    func controlSocketRefusalFlood() throws {
        _ = try run("/usr/sbin/groupadd", ["-f", "lmc"])
        _ = try run("/usr/sbin/useradd", ["-r", "-M", "-s", "/usr/sbin/nologin", "-G", "lmc", "lmc-e2e"])
        _ = try run("/usr/sbin/usermod", ["-aG", "lmc", "lmc-e2e"])
        let d = try daemon("refuse", extra: "")
        try underAttack("control socket: 40 refused overrides by a read-only user", d) {
            for _ in 0..<40 {
                let r = try run("/usr/sbin/runuser", ["-u", "lmc-e2e", "--", Repo.lmc, "override", "set", "--site", "hub", "--kw", "1", "--for", "1m",
                                                      "--socket", d.socket], timeout: 8)
                #expect(r.status == 1 && r.err.contains("permission denied"))
            }
        }
        var refusals = 0
        try waitFor(5, "the refusals in the events ring") {
            let e = try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", d.dir]).out
            refusals = e.split(separator: "\n").filter { $0.contains("refused 'override set hub 1.0 60' from user lmc-e2e") }.count
            return refusals >= 5
        }
        usleep(1_500_000)   // the ring's sync interval is 0.2 s: anything more would be there by now
        let e = try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", d.dir]).out
        refusals = e.split(separator: "\n").filter { $0.contains("refused 'override set hub 1.0 60' from user lmc-e2e") }.count
        print("control socket: 40 refused commands, \(refusals) in the events ring")
        #expect(refusals == 5)
    }

    static let oscpToken = "cp-token-0123456789abcdef"
    func oscp(fpPort: Int, ourPort: Int) throws -> String {
        let credentials = try oscpCredentialsFile(token: Self.oscpToken, fpToken: "initial-fp-token")
        return """

        [oscp]
        listen = "127.0.0.1"
        port = \(ourPort)
        our_base_url = "http://127.0.0.1:\(ourPort)/oscp/cp/2.0"
        fp_base_url = "http://127.0.0.1:\(fpPort)/oscp/fp/2.0"
        credentials_file = "\(credentials)"
        heartbeat_interval_s = 1
        refresh_s = 60
        """
    }

    /// A client that drips its request to the OSCP port (before any token check) used to hold every
    /// inbound OSCP message — the FP's heartbeats too, so the relay went deaf.
    @Test func oscpDrip() throws {
        let fp = try OSCPPeer(initialToken: "initial-fp-token", requireHeartbeatS: 1, sendHeartbeatS: 0.3)
        defer { fp.stop() }
        let ourPort = try Self.freePort()
        let d = try daemon("oscpdrip", extra: try oscp(fpPort: fp.port, ourPort: ourPort), siteExtra: "oscp_group = \"hub-group\"")
        try waitFor(10, "OSCP ready (a forecast at the FP)") { !fp.received("update_group_capacity_forecast").isEmpty }
        try underAttack("OSCP drip (6 clients, 1 byte / 300 ms, 4 s)", d) {
            let drips = (0..<6).compactMap { _ in try? RawTCP(port: ourPort) }
            let before = fp.sent("heartbeat").count
            for i in 0..<13 {
                for c in drips { c.send(Array("POST /oscp/cp/2.0/heartbeat HTTP/1.1\r\n".utf8)[(i % 36)...(i % 36)].map { $0 }) }
                usleep(300_000)
            }
            try stillCycling(d, "OSCP drip")
            let accepted = fp.sent("heartbeat").dropFirst(before).filter { $0["status"] as? Int == 204 }.count
            print("OSCP drip: the FP's heartbeats accepted during the drip: \(accepted)")
            #expect(accepted >= 3, "the FP's heartbeats are served while others drip")
            let shown = try Self.status(d).description
            #expect(!shown.contains("FAILING"), "\(shown)")
            drips.forEach { $0.close() }
        }
    }

    /// The issue's crash: an FP answering `Content-Length: -1` trapped lmc, and — the register that pointed
    /// lmc there being kept in oscp.state — again after every restart.
    /// An upstream port that cannot be bound (taken, or 502 without the capability) is an alarm for as long
    /// as it lasts, and control runs on. Before: a note in lmc status, nothing in the alarms or the map.
    @Test func anUpstreamPortThatCannotBeBoundIsAnAlarm() throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, len) } }
        listen(holder, 1)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let d = try daemon("upbind", extra: "\n[upstream]\nlisten = \"127.0.0.1\"\nport = \(port)\n")
        var alarms: [String] = []
        try waitFor(10, "UPSTREAM_FAILED raised") {
            alarms = try Self.status(d)["alarms"] as? [String] ?? []
            return alarms.contains { $0.hasPrefix("UPSTREAM_FAILED upstream") }
        }
        #expect(alarms.contains { $0.contains("\(port)") }, "the alarm names the address: \(alarms)")
        #expect(try d.applied() == Self.ratedA, "control runs on")
    }

    @Test func oscpContentLengthMinusOneFromAFakeFP() throws {
        let fake = try RawServer(maxConnections: 200) { c in
            _ = RawServer.readHead(c)
            RawServer.write(c, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
            usleep(100_000)
        }
        defer { fake.stop() }
        let ourPort = try Self.freePort()
        let d = try daemon("oscpcl", extra: try oscp(fpPort: fake.port, ourPort: ourPort), siteExtra: "oscp_group = \"hub-group\"")
        var sawAlarm = false
        try underAttack("OSCP FP answering Content-Length: -1", d) {
            let t0 = Date()
            try waitFor(15, "RELAY_FAILING raised for the site") {
                let alarms = try Self.status(d)["alarms"] as? [String] ?? []
                sawAlarm = alarms.contains { $0.hasPrefix("RELAY_FAILING hub") }
                return sawAlarm
            }
            print("OSCP Content-Length -1: RELAY_FAILING after \(String(format: "%.1f", Date().timeIntervalSince(t0))) s (relay_alarm_after_s 5)")
        }
        #expect(sawAlarm)
        let shown = (try? Self.status(d).description) ?? ""
        #expect(d.lmc.stderr.contains("is not a length") || shown.contains("is not a length"), "the reason is named")
    }
}

/// Connects to a Unix socket (the control socket) and returns the descriptor.
func unixConnect(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b } }
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    guard rc == 0 else { close(fd); throw PeerError("connect \(path): \(errno)") }
    return fd
}
