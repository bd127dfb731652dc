import Foundation
import LMCTestSupport
import Testing

/// `lmc run` as OSCP Capacity Provider against an independent Flexibility Provider peer (Python,
/// validating every body against the OSCP 2.0 schemas).
@Suite(.serialized) struct OSCPEndToEnd {
    static let token = "cp-token-0123456789abcdef"

    static func oscpConfig(fpPort: Int, ourPort: Int, scheme: String = "http", tls: String = "") throws -> String {
        let credentials = try oscpCredentialsFile(token: token, fpToken: "initial-fp-token")
        return """

        [oscp]
        listen = "127.0.0.1"
        port = \(ourPort)
        our_base_url = "\(scheme)://127.0.0.1:\(ourPort)/oscp/cp/2.0"
        fp_base_url = "\(scheme)://127.0.0.1:\(fpPort)/oscp/fp/2.0"
        credentials_file = "\(credentials)"
        heartbeat_interval_s = 1
        forecast_minutes = 15
        refresh_s = 60
        \(tls)
        """
    }

    static func freePort() throws -> Int {
        let probe = try run(Repo.python, ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        return Int(probe.out.trimmingCharacters(in: .whitespacesAndNewlines))!
    }

    func waitFor(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if (try? condition()) == true { return }
            usleep(20_000)
        }
        Issue.record("not within \(seconds) s: \(what)")
    }

    static func blocks(_ m: [String: Any]) -> [[String: Any]] { (m["body"] as? [String: Any])?["forecasted_blocks"] as? [[String: Any]] ?? [] }
    static func type(_ m: [String: Any]) -> String? { (m["body"] as? [String: Any])?["type"] as? String }

    @Test func registerHandshakeHeartbeatsForecastsAndALapse() throws {
        let fp = try OSCPPeer(initialToken: "initial-fp-token", requireHeartbeatS: 1, sendHeartbeatS: 0.3)
        defer { fp.stop() }
        let ourPort = try Self.freePort()
        let d = try Daemon(tag: "oscp", extra: Self.oscpConfig(fpPort: fp.port, ourPort: ourPort),
                           siteExtra: "oscp_group = \"hub-group\"\ntcc_kw = [\((0..<48).map { $0 % 2 == 0 ? "250" : "240" }.joined(separator: ", "))]",
                           // The TCC half hours need a trusted clock; a test machine's may not be synchronised.
                           control: "require_synchronised_clock = false")
        // The TCC allows 250 kW in even half-hours, 240 in odd ones: the charger follows (362 or 347 A).
        try waitFor(15, "charger at its TCC limit") { try [362, 347].contains(d.applied()) }

        // register → the FP's register → handshake → acknowledgement → heartbeats and forecasts.
        try waitFor(10, "a CONSUMPTION forecast at the FP") { fp.received("update_group_capacity_forecast").contains { Self.type($0) == "CONSUMPTION" } }
        let all = fp.received()
        for m in all { #expect((m["errors"] as? [String] ?? ["?"]).isEmpty, "schema or header errors in \(m)") }
        let order = all.map { $0["path"] as! String }
        #expect(order.first == "register", "\(order)")
        #expect(order.firstIndex(of: "handshake")! < order.firstIndex(of: "update_group_capacity_forecast")!)
        let reg = (all[0]["body"] as! [String: Any])
        #expect(reg["token"] as? String == Self.token)
        #expect((reg["version_url"] as! [[String: Any]])[0]["base_url"] as? String == "http://127.0.0.1:\(ourPort)/oscp/cp/2.0")
        let hs = fp.received("handshake")[0]["body"] as! [String: Any]
        #expect((hs["required_behaviour"] as! [String: Any])["heartbeat_interval"] as? Int == 1)
        // The FP's own calls were all accepted (204), including its acknowledgement under pyoscp's spelling.
        for s in fp.sent() { #expect(s["status"] as? Int == 204, "\(s)") }
        #expect(fp.sent("handshake_acknowledgment").count == 1)
        // After registration lmc calls with the FP's new token (the peer checked it: no errors above).
        #expect((fp.received("heartbeat").first?["headers"] as? [String: String])?["Authorization"] == "Token \(fp.fpToken)")

        // CONSUMPTION: the set point (250 or 240 kW) for the next 15 min — once the start-up ramp is over
        // (increases are sent at most every 2 s); FALLBACK_CONSUMPTION: the TCC profile.
        try waitFor(8, "the ramped-up set point at the FP") {
            fp.received("update_group_capacity_forecast").contains { Self.type($0) == "CONSUMPTION" && [249.7, 239.4].contains(Self.blocks($0).first?["capacity"] as? Double) }
        }
        let consumption = try #require(fp.received("update_group_capacity_forecast").last { Self.type($0) == "CONSUMPTION" })
        let b = try #require(Self.blocks(consumption).first)
        // The set point the charger gets, exactly: 362 A or 347 A × 3 × 230 V, in kW to 0.1, rounded down.
        #expect([249.7, 239.4].contains(b["capacity"] as? Double) && b["unit"] as? String == "KW" && b["phase"] as? String == "ALL", "\(b)")
        let start = try #require(b["start_time"] as? String), end = try #require(b["end_time"] as? String)
        #expect(start < end, "15 minutes ahead: \(start) to \(end)")
        let fallback = fp.received("update_group_capacity_forecast").first { Self.type($0) == "FALLBACK_CONSUMPTION" }
        let fb = fallback.map(Self.blocks) ?? []
        #expect(Set(fb.map { $0["capacity"] as? Double ?? 0 }) == [250, 240] && fb.count >= 47, "24 h of half-hour TCC blocks: \(fb.count)")

        // A set-point change reaches the FP as a new forecast: an override to 180 kW (260 A = 179.4 kW).
        let before = fp.received("update_group_capacity_forecast").count
        let t0 = ProcessInfo.processInfo.systemUptime
        _ = try run(Repo.lmc, ["override", "set", "--site", "hub", "--kw", "180", "--for", "10m", "--socket", d.socket])
        try waitFor(5, "a 180 kW forecast") {
            fp.received("update_group_capacity_forecast").dropFirst(before).contains { Self.blocks($0).first?["capacity"] as? Double == 179.4 }
        }
        let arrived = try #require(fp.received("update_group_capacity_forecast").dropFirst(before).first { Self.blocks($0).first?["capacity"] as? Double == 179.4 })
        print("set-point change (lmc override) to forecast at the FP: \(Int(((arrived["t"] as? Double ?? 0) - t0) * 1000)) ms")
        print("captured exchange (first lines, cut at 240 characters):\n" + fp.child.lines.prefix(9).map { String($0.prefix(240)) }.joined(separator: "\n"))

        // The FP reports the site's import: shown nowhere as the DNO's meter, but lmc accepts it.
        fp.send("measure 1000")
        try waitFor(3, "measurements accepted") { fp.sent("update_group_measurements").first?["status"] as? Int == 204 }

        // A compliance error is logged as an alarm event.
        fp.send("comply cannot go below 200 kW tonight")
        try waitFor(3, "compliance error accepted") { fp.sent("group_capacity_compliance_error").first?["status"] as? Int == 204 }
        try waitFor(3, "the compliance error in the events ring") {
            try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", d.dir]).out.contains("the FP cannot comply: cannot go below 200 kW tonight")
        }

        // The FP's heartbeats stop: its offline_mode_at passes, the relay is deaf, an alarm is raised.
        fp.send("silence on")
        try waitFor(8, "the OSCP relay failing on the console") { try d.status().contains("FAILING") }
        try waitFor(10, "a relay alarm") { try d.status().contains("ALARMS") }
        let events = try run(Repo.lmc, ["log", "export", "--ring", "events", "--dir", d.dir]).out
        #expect(events.contains("heartbeat lapsed"), "\(events)")
        // Back: heartbeats resume and the failure clears.
        fp.send("silence off")
        try waitFor(8, "the relay healthy again") { try !d.status().contains("FAILING") }
    }

    @Test func theSpecsSpellingOfTheAcknowledgementIsAcceptedToo() throws {
        let fp = try OSCPPeer(initialToken: "initial-fp-token", ackPath: "handshake_acknowledgement")
        defer { fp.stop() }
        let d = try Daemon(tag: "oscp2", extra: Self.oscpConfig(fpPort: fp.port, ourPort: try Self.freePort()), siteExtra: "oscp_group = \"hub-group\"")
        try waitFor(15, "a forecast at the FP") { !fp.received("update_group_capacity_forecast").isEmpty }
        #expect(fp.sent("handshake_acknowledgement").first?["status"] as? Int == 204)
        // Without a TCC profile the fallback is the firm capacity for 24 h.
        try waitFor(3, "a fallback forecast") { fp.received("update_group_capacity_forecast").contains { Self.type($0) == "FALLBACK_CONSUMPTION" } }
        let fb = fp.received("update_group_capacity_forecast").first { Self.type($0) == "FALLBACK_CONSUMPTION" }.map(Self.blocks) ?? []
        #expect(fb.count == 1 && fb.first?["capacity"] as? Double == 150)
        _ = d
    }

    @Test func badRequestsAreRefusedWithTheRightStatusAndChangeNothing() throws {
        let fp = try OSCPPeer(initialToken: "initial-fp-token")
        defer { fp.stop() }
        let d = try Daemon(tag: "oscp3", extra: Self.oscpConfig(fpPort: fp.port, ourPort: try Self.freePort()), siteExtra: "oscp_group = \"hub-group\"")
        try waitFor(15, "a forecast at the FP") { !fp.received("update_group_capacity_forecast").isEmpty }
        let good = ["Authorization": "Token \(Self.token)", "X-Request-ID": "r1", "X-Correlation-ID": "c-42", "Content-Type": "application/json"]
        func post(_ path: String, _ headers: [String: String], _ body: String) throws -> [String: Any] {
            let n = fp.sent(path).count
            let req: [String: Any] = ["path": path, "headers": headers, "body": body]
            fp.send("post " + String(decoding: try JSONSerialization.data(withJSONObject: req), as: UTF8.self))
            var r: [String: Any] = [:]
            // The peer's own periodic heartbeats are "sent" events too (answered 204, without our
            // correlation id): ours is the one that echoes c-42 or was refused.
            try waitFor(5, "the answer to \(path)") {
                guard let mine = fp.sent(path).dropFirst(n).first(where: { header($0, "X-Correlation-ID") == "c-42" || ($0["status"] as? Int) != 204 })
                else { return false }
                r = mine
                return true
            }
            return r
        }
        func header(_ r: [String: Any], _ name: String) -> String? {
            (r["headers"] as? [String: String])?.first { $0.key.lowercased() == name.lowercased() }?.value
        }
        let hb = #"{"offline_mode_at": "2030-01-01T00:00:00Z"}"#
        var noAuth = good; noAuth["Authorization"] = nil
        var wrong = good; wrong["Authorization"] = "Token nope"
        var noID = good; noID["X-Request-ID"] = nil
        let cases: [(String, [String: String], String, Int, String)] = [
            ("heartbeat", noAuth, hb, 401, "Authorization header missing"),
            ("heartbeat", wrong, hb, 401, "token not accepted"),
            ("heartbeat", noID, hb, 400, "X-Request-ID header missing"),
            ("heartbeat", good, "{not json", 400, "body: not valid JSON"),
            ("heartbeat", good, #"{"offline_mode_at": "tomorrow"}"#, 400, "offline_mode_at: 'tomorrow' is not an RFC 3339 time"),
            ("heartbeat", good, "{}", 400, "offline_mode_at: required field missing"),
            ("update_group_measurements", good,
             #"{"group_id": "hub-group", "measurements": [{"value": 1, "phase": "ALL", "unit": "MWH", "direction": "IMPORT", "measure_time": "2026-11-23T10:00:00Z"}]}"#,
             400, "measurements[0].unit: 'MWH' is not one of WH, KWH"),
            ("update_group_measurements", good, #"{"group_id": "elsewhere", "measurements": []}"#, 400, "group_id: 'elsewhere' is not a group of this box"),
            ("update_group_measurements", good, #"{"group_id": "hub-group", "measurements": "many"}"#, 400, "measurements: expected"),
            ("heartbeat", good, "{\"x\": \"" + String(repeating: "a", count: 70_000) + "\"}", 413, "larger than 65536"),
            ("no_such_thing", good, "{}", 404, "no such endpoint"),
        ]
        for (path, headers, body, status, message) in cases {
            let r = try post(path, headers, body)
            #expect(r["status"] as? Int == status, "\(path) \(message): \(r)")
            #expect(header(r, "X-Error-Message")?.contains(message) == true, "\(path): \(header(r, "X-Error-Message") ?? "no X-Error-Message")")
            if status != 413 && status != 404 { #expect(header(r, "X-Correlation-ID") == (headers["X-Correlation-ID"] ?? nil), "X-Correlation-ID echoed") }
        }
        // A good one passes and echoes the correlation id.
        let ok = try post("heartbeat", good, hb)
        #expect(ok["status"] as? Int == 204 && header(ok, "X-Correlation-ID") == "c-42")
        // Nothing changed: still registered, forecasts still flowing, no relay failure.
        let s = try d.status()
        #expect(s.contains("OSCP hub-group: ready") && !s.contains("FAILING"), "\(s)")
    }
}

/// TLS both ways: lmc serves HTTPS with its certificate and verifies the FP's against a CA file.
@Suite struct OSCPOverTLS {
    /// A CA and a certificate for 127.0.0.1 signed by it, made with the openssl command.
    static func certificates(in dir: String) throws -> (ca: String, cert: String, key: String) {
        let ca = "\(dir)/ca.crt", caKey = "\(dir)/ca.key", cert = "\(dir)/host.crt", key = "\(dir)/host.key", csr = "\(dir)/host.csr", ext = "\(dir)/san.ext"
        try "subjectAltName = IP:127.0.0.1\n".write(toFile: ext, atomically: true, encoding: .utf8)
        for args in [["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", ca, "-days", "2", "-subj", "/CN=lmc test CA"],
                     ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                     ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]] {
            let r = try run("/usr/bin/openssl", args)
            guard r.status == 0 else { throw PeerError("openssl \(args[0]): \(r.err)") }
        }
        return (ca, cert, key)
    }

    @Test func theWholeFlowOverHTTPSWithVerifiedCertificates() throws {
        let dir = "/tmp/lmc-tls-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pki = try Self.certificates(in: dir)
        let fp = try OSCPPeer(initialToken: "initial-fp-token", tls: (pki.cert, pki.key, pki.ca))
        defer { fp.stop() }
        let ourPort = try OSCPEndToEnd.freePort()
        let tls = "tls_certificate = \"\(pki.cert)\"\ntls_key = \"\(pki.key)\"\nca_file = \"\(pki.ca)\""
        let d = try Daemon(tag: "tls", extra: OSCPEndToEnd.oscpConfig(fpPort: fp.port, ourPort: ourPort, scheme: "https", tls: tls),
                           siteExtra: "oscp_group = \"hub-group\"")
        let end = Date().addingTimeInterval(15)
        while Date() < end && fp.received("update_group_capacity_forecast").isEmpty { usleep(50_000) }
        #expect(!fp.received("update_group_capacity_forecast").isEmpty, "a forecast over HTTPS; lmc said: \(d.lmc.stderr.suffix(600))")
        for m in fp.received() { #expect((m["errors"] as? [String] ?? ["?"]).isEmpty, "\(m)") }
        for s in fp.sent() { #expect(s["status"] as? Int == 204, "the FP's calls over HTTPS: \(s)") }
        // Plain HTTP to the HTTPS endpoint gets nowhere.
        let plain = try run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "http://127.0.0.1:\(ourPort)/oscp/cp/2.0/heartbeat"])
        #expect(plain.out != "204" && plain.out != "401", "plain HTTP answered \(plain.out)")
    }
}
