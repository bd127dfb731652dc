import Foundation
import LMCTestSupport
import Testing
@testable import HTTPTransport
@testable import OSCP

/// Issue 17: what a Flexibility Provider (or whoever reaches the OSCP port) sends can neither crash
/// lmc nor hold its OSCP thread.
@Suite struct HTTPResponseParsing {
    func parse(_ text: String, atEOF: Bool = true) -> Result<HTTPResponseParser.Outcome, HTTPError> {
        HTTPResponseParser.parse(Array(text.utf8), maxHead: 16_384, maxBody: 65_536, atEOF: atEOF)
    }

    @Test func aBadContentLengthIsAnErrorNeverATrap() {
        for bad in ["-1", "+2", "99999999999999999999999", "1 2", "0x10", "", "2, 2", "65537"] {
            guard case .failure(let e) = parse("HTTP/1.1 200 OK\r\nContent-Length: \(bad)\r\n\r\n{}") else {
                Issue.record("accepted Content-Length '\(bad)'"); continue
            }
            #expect(e.description.contains("Content-Length") || e.description.contains("larger"), "\(bad): \(e)")
        }
        if case .success = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}") { Issue.record("two lengths accepted") }
        if case .success = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n") { Issue.record("chunked accepted") }
    }

    @Test func controlCharactersInTheHeadAreRefused() {
        if case .success = parse("HTTP/1.1 400 Bad\r\nX-Error-Message: \u{1B}[2Jowned\r\nContent-Length: 0\r\n\r\n") { Issue.record("escape accepted") }
        if case .success = parse("HTTP/1.1 204 OK\r\nX: a\nInjected: b\r\n\r\n") { Issue.record("bare LF accepted") }
    }

    @Test func wellFormedResponsesAreReadWholeOrWaitedFor() {
        #expect(parse("HTTP/1.1 204 No Content\r\nX-Correlation-ID: a\r\n\r\n") == .success(.complete(HTTPResponse(status: 204, headers: [("X-Correlation-ID", "a")]))))
        #expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}") == .success(.complete(HTTPResponse(status: 200, headers: [("Content-Length", "2")], body: Array("{}".utf8)))))
        #expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", atEOF: false) == .success(.needMore))
        #expect(parse("HTTP/1.1 200 OK\r\nContent-Len", atEOF: false) == .success(.needMore))
        if case .success = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}") { Issue.record("a short body accepted at EOF") }
    }

    @Test func tokensCompareInConstantTimeAndCorrectly() {
        #expect(constantTimeEquals("Token abc", "Token abc"))
        #expect(!constantTimeEquals("Token abc", "Token abd") && !constantTimeEquals("Token abc", "Token ab") && !constantTimeEquals("", "x"))
    }
}

@Suite struct HostileFlexibilityProvider {
    let client = try! HTTPClient(useTLS: false, timeoutSeconds: 1)

    /// The issue's crash: an FP answering `Content-Length: -1` trapped lmc (readBody(count: -1)).
    @Test func aNegativeContentLengthFromTheFPIsAnError() throws {
        let fp = try RawServer { c in
            _ = RawServer.readHead(c)
            RawServer.write(c, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
            usleep(200_000)
        }
        defer { fp.stop() }
        let e = #expect(throws: HTTPError.self) { try client.post(HTTPURL("http://127.0.0.1:\(fp.port)/oscp/fp/2.0/heartbeat")!, headers: [], body: []) }
        #expect(e?.description.contains("Content-Length '-1' is not a length") == true, "\(String(describing: e))")
    }

    /// An FP that drips its answer (one byte every 100 ms) meets the client's deadline for the whole
    /// request: per-read timeouts used to let it hold the OSCP thread indefinitely.
    @Test func aDrippingFPMeetsTheWholeRequestDeadline() throws {
        let fp = try RawServer { c in
            _ = RawServer.readHead(c)
            for b in "HTTP/1.1 204 No Content\r\nX-Padding: \(String(repeating: "x", count: 100))\r\n\r\n" {
                RawServer.write(c, String(b))
                usleep(100_000)
            }
        }
        defer { fp.stop() }
        let e = #expect(throws: HTTPError.self) { try client.post(HTTPURL("http://127.0.0.1:\(fp.port)/x")!, headers: [], body: []) }
        #expect(e?.description.contains("timed out") == true, "\(String(describing: e))")
    }

    @Test func headersWithCRLFAreNeverSent() throws {
        let fp = try RawServer { c in _ = RawServer.readHead(c); RawServer.write(c, "HTTP/1.1 204 No Content\r\n\r\n") }
        defer { fp.stop() }
        let e = #expect(throws: HTTPError.self) {
            try client.post(HTTPURL("http://127.0.0.1:\(fp.port)/x")!, headers: [("Authorization", "Token a\r\nX-Evil: 1")], body: [])
        }
        #expect(e?.description.contains("control character") == true)
        #expect(HTTPURL("http://127.0.0.1:1/a\r\nb") == nil && HTTPURL("http://evil host/") == nil)
    }
}

@Suite struct HostileOSCPClients {
    /// A client that drips its request (before TLS or the token check) used to hold the single-threaded
    /// server for as long as it kept dripping: every inbound OSCP message waited behind it.
    @Test func aDrippingClientHoldsOnlyItsOwnConnectionUntilItsDeadline() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxConnections: 4, requestDeadlineSeconds: 1) { _ in HTTPResponse(status: 204) }
        defer { server.stop() }
        let drip = try RawTCP(port: server.port)
        let request = "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
        drip.send(Array("POST /x HTTP/1.1\r\n".utf8))
        // Meanwhile a well-behaved request is answered.
        let good = try RawTCP(port: server.port)
        good.send(Array(request.utf8))
        let answer = String(decoding: good.receive(), as: UTF8.self)
        #expect(answer.hasPrefix("HTTP/1.1 204"), "\(answer)")
        // The dripping one keeps dripping past its 1 s deadline: it is cut (408 or closed).
        var cut = false
        for b in "X-A: 1\r\nX-B: 2\r\nX-C: 3\r\n".utf8 {
            if drip.send([b]) != 1 { cut = true; break }
            usleep(100_000)
        }
        #expect(cut || drip.closedByPeer(within: 3))
        let end = Date().addingTimeInterval(3)
        while server.stats.timedOut == 0 && Date() < end { usleep(20_000) }
        #expect(server.stats.timedOut == 1, "\(server.stats)")
    }

    @Test func connectionsBeyondTheCapAreClosedAtOnce() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, maxConnections: 2, requestDeadlineSeconds: 3) { _ in HTTPResponse(status: 204) }
        defer { server.stop() }
        let held = try (0..<2).map { _ in try RawTCP(port: server.port) }
        for h in held { h.send(Array("P".utf8)) }
        let end = Date().addingTimeInterval(3)
        while server.activeConnections < 2 && Date() < end { usleep(10_000) }
        let extra = try RawTCP(port: server.port)
        #expect(extra.closedByPeer(within: 2))
        #expect(server.stats.refused == 1, "\(server.stats)")
        for h in held { h.close() }
    }
}

/// What a peer may make the provider do: point it elsewhere, keep it "online" forever, or sit unready.
@Suite struct ProviderTrustBoundaries {
    static let token = "cp-token-0123456789abcdef"
    func config(state: String? = nil) -> OSCPConfig {
        var c = OSCPConfig(listenHost: "127.0.0.1", listenPort: 0, ourBaseURL: "http://127.0.0.1:1/oscp/cp/2.0",
                           fpBaseURL: "http://127.0.0.1:9/oscp/fp/2.0", fpInitialToken: "initial", ourToken: Self.token, heartbeatIntervalS: 5,
                           groups: ["hub": "hub-group"])
        c.stateFile = state
        return c
    }

    func post(_ p: OSCPCapacityProvider, _ path: String, _ body: String) throws -> HTTPResponse {
        try HTTPClient(useTLS: false).post(HTTPURL("http://127.0.0.1:\(p.port)/oscp/cp/2.0/\(path)")!,
                                          headers: [("Authorization", "Token \(Self.token)"), ("X-Request-ID", "1")], body: Array(body.utf8))
    }

    @Test func aRegisterMayNotPointLmcAtAnotherHost() throws {
        let dir = "/tmp/lmc-oscp-trust-\(getpid())"
        mkdir(dir, 0o700)
        defer { unlink("\(dir)/oscp.state"); rmdir(dir) }
        let p = try OSCPCapacityProvider(config(state: "\(dir)/oscp.state")) { _, _ in }
        defer { p.stop() }
        let evil = try post(p, "register", #"{"token": "fp-token-x", "version_url": [{"version": "2.0", "base_url": "http://127.0.0.1:4444/oscp/fp/2.0"}]}"#)
        #expect(evil.status == 400 && evil.header("X-Error-Message")?.contains("not the configured FP") == true, "\(evil)")
        #expect(p.phase == .registering && access("\(dir)/oscp.state", F_OK) != 0, "nothing changed, nothing kept")
        let good = try post(p, "register", #"{"token": "fp-token-x", "version_url": [{"version": "2.0", "base_url": "http://127.0.0.1:9/other/path/2.0"}]}"#)
        #expect(good.status == 204 && p.phase == .handshaking)
    }

    /// The issue: a register pointing lmc at a crashing host was kept in oscp.state, so the crash came
    /// back after every restart. A kept registration outside the configured origin is dropped at start.
    @Test func aKeptRegistrationForAnotherHostIsDroppedAtStart() throws {
        let dir = "/tmp/lmc-oscp-kept-\(getpid())"
        mkdir(dir, 0o700)
        defer { unlink("\(dir)/oscp.state"); rmdir(dir) }
        try "fp-token-x\nhttp://127.0.0.1:4444/oscp/fp/2.0\n".write(toFile: "\(dir)/oscp.state", atomically: true, encoding: .utf8)
        let events = EventLog()
        let p = try OSCPCapacityProvider(config(state: "\(dir)/oscp.state")) { text, alarm in events.add(text, alarm) }
        defer { p.stop() }
        #expect(p.phase == .registering, "registers afresh with the configured FP")
        #expect(access("\(dir)/oscp.state", F_OK) != 0)
        #expect(events.all.contains { $0.text.contains("dropped the kept registration") && $0.alarm })
    }

    @Test func notReadyIsFailingAndOfflineModeAtIsBounded() throws {
        let p = try OSCPCapacityProvider(config()) { _, _ in }
        defer { p.stop() }
        let st = try #require(p.status(site: "hub"))
        #expect(st.failingSinceNs != nil, "registering: the FP has no forecast from us, the relay is failing from the start")
        #expect(st.lastError?.contains("not ready") == true)
        // An FP that says it stays online for ten years is believed for three heartbeat intervals (≥ 30 s).
        #expect(p.boundedOfflineAt(1_000_000_000 + 315_360_000, wall: 1_000_000_000) == 1_000_000_030)
        #expect(p.boundedOfflineAt(1_000_000_010, wall: 1_000_000_000) == 1_000_000_010)
    }

    @Test func aPortThatIsTakenIsAFailingRelayNotARefusedStart() throws {
        let holder = try HTTPServer(host: "127.0.0.1", port: 0) { _ in HTTPResponse(status: 204) }
        defer { holder.stop() }
        var c = config()
        c.listenPort = holder.port
        let p = try OSCPCapacityProvider(c) { _, _ in }
        defer { p.stop() }
        #expect(p.port == 0)
        let st = try #require(p.status(site: "hub"))
        #expect(st.failingSinceNs != nil && st.lastError?.contains("cannot listen") == true, "\(st)")
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(text: String, alarm: Bool)] = []
    func add(_ t: String, _ a: Bool) { lock.lock(); items.append((t, a)); lock.unlock() }
    var all: [(text: String, alarm: Bool)] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Mutual TLS (client_ca_file): the CPMS must show a certificate our CA signed before a byte of its
/// request is read. curl plays the CPMS.
@Suite struct MutualTLS {
    static func pki(_ dir: String) throws -> (ca: String, cert: String, key: String) {
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

    @Test func aClientWithoutACertificateOfOurCAGetsNothing() throws {
        let dir = "/tmp/lmc-mtls-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try Self.pki(dir)
        let served = EventLog()
        let server = try HTTPServer(host: "127.0.0.1", port: 0, certificate: p.cert, key: p.key, clientCA: p.ca, requestDeadlineSeconds: 3) { _ in
            served.add("request", false)
            return HTTPResponse(status: 204)
        }
        defer { server.stop() }
        let url = "https://127.0.0.1:\(server.port)/x"
        let base = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--cacert", p.ca, "-X", "POST", "-d", "{}"]
        let without = try run("/usr/bin/curl", base + [url])
        #expect(without.out == "000" && served.all.isEmpty, "no client certificate: \(without.out)")
        let with = try run("/usr/bin/curl", base + ["--cert", p.cert, "--key", p.key, url])
        #expect(with.out == "204" && served.all.count == 1, "with our CA's certificate: \(with.out) \(with.err)")
        // TLS 1.1 is not offered.
        let old = try run("/usr/bin/curl", base + ["--cert", p.cert, "--key", p.key, "--tls-max", "1.1", url])
        #expect(old.out == "000")
    }
}

@Suite struct OSCPServerStop {
    /// A reload stops the OSCP endpoint from the control loop's thread: stop() must not wait for a client
    /// that drips (the first version of the concurrent server waited for its deadline + 1 s).
    @Test func stopDoesNotWaitForAClientInFlight() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, requestDeadlineSeconds: 5) { _ in HTTPResponse(status: 204) }
        let drip = try RawTCP(port: server.port)
        drip.send(Array("P".utf8))
        let end = Date().addingTimeInterval(3)
        while server.activeConnections == 0 && Date() < end { usleep(10_000) }
        #expect(server.activeConnections == 1)
        server.stop()
        #expect(server.activeConnections == 1, "stop() returned while the dripping client was still in flight")
        drip.close()
    }
}

extension OSCPServerStop {
    /// The provider's thread may be inside a request to a slow FP when the control loop reloads: stop()
    /// returns without waiting for that request (it used to join the thread: up to the client's 5 s).
    @Test func theProviderStopsWithoutWaitingOnASlowFP() throws {
        let finished = EventLog()
        let fp = try RawServer { c in
            _ = RawServer.readHead(c)
            for b in "HTTP/1.1 204 No Content\r\n\r\n" { RawServer.write(c, String(b)); usleep(150_000) }
            finished.add("done", false)
        }
        defer { fp.stop() }
        let c = OSCPConfig(listenHost: "127.0.0.1", listenPort: 0, ourBaseURL: "http://127.0.0.1:1/oscp/cp/2.0",
                           fpBaseURL: "http://127.0.0.1:\(fp.port)/oscp/fp/2.0", fpInitialToken: "initial", ourToken: "cp-token-0123456789abcdef",
                           groups: ["hub": "g"])
        let p = try OSCPCapacityProvider(c) { _, _ in }
        p.start()
        usleep(500_000)   // the register request is being answered, one byte every 150 ms (about 4 s)
        p.stop()
        #expect(finished.all.isEmpty, "stop() returned while the FP was still answering")
    }
}

extension ProviderTrustBoundaries {
    /// A compliance error is an alarm that clears (with an event) — it used to be raised and never cleared —
    /// and its text reaches the console without terminal escapes.
    @Test func aComplianceErrorStandsThenClearsAndItsTextIsPrintable() throws {
        var c = config()
        c.refreshS = 0.5
        let events = EventLog()
        let p = try OSCPCapacityProvider(c) { text, alarm in events.add(text, alarm) }
        p.start()
        defer { p.stop() }
        let r = try post(p, "group_capacity_compliance_error", "{\"message\": \"cannot go below 200 kW \\u001b[2J\\u001b]0;owned\\u0007\"}")
        #expect(r.status == 204)
        let st = try #require(p.status(site: "hub"))
        #expect(st.complianceError?.contains("cannot go below 200 kW ?[2J?]0;owned?") == true, "\(st.complianceError ?? "nil")")
        // A log line from the provider; the alarm (OSCP_NONCOMPLIANCE) is the control cycle's, from the status.
        #expect(events.all.contains { !$0.alarm && $0.text.contains("cannot comply") && !$0.text.contains("\u{1B}") })
        let end = Date().addingTimeInterval(5)
        while p.status(site: "hub")?.complianceError != nil && Date() < end { usleep(50_000) }
        #expect(p.status(site: "hub")?.complianceError == nil)
        #expect(events.all.contains { !$0.alarm && $0.text.contains("compliance error of group hub-group cleared") })
    }
}

/// Issue 15, item 5: HTTPTransport's errors are typed, and its one C seam lets a test fail any socket
/// call without a fake peer.
@Suite struct HTTPTransportSeam {
    @Test func aRefusedConnectAndAResetReadAreTypedErrors() throws {
        let server = try HTTPServer(host: "127.0.0.1", port: 0, certificate: nil, key: nil) { _ in HTTPResponse(status: 204) }
        defer { server.stop() }
        let client = try HTTPClient(useTLS: false, timeoutSeconds: 2)
        let url = HTTPURL("http://127.0.0.1:\(server.port)/x")!
        #expect(try client.post(url, headers: [], body: []).status == 204)

        let refused = HTTPFaultPlan()
        refused.fail(.connect, errno: ECONNREFUSED)
        let e1 = HTTPFaultPlan.with(refused) { #expect(throws: HTTPError.self) { try client.post(url, headers: [], body: []) } }
        #expect(e1?.kind == .connect && e1?.description.contains("Connection refused") == true, "\(String(describing: e1))")

        let reset = HTTPFaultPlan()
        reset.fail(.recv, errno: ECONNRESET)
        let e2 = HTTPFaultPlan.with(reset) { #expect(throws: HTTPError.self) { try client.post(url, headers: [], body: []) } }
        #expect(e2?.kind == .io && e2?.description.contains("read failed") == true, "\(String(describing: e2))")

        // And the seam leaves the next exchange alone.
        #expect(try client.post(url, headers: [], body: []).status == 204)
    }

    @Test func aStatusIsItsOwnKindAndAFailedAcceptDoesNotStopTheServer() throws {
        let plan = HTTPFaultPlan()
        plan.fail(.accept, errno: EMFILE)   // out of descriptors once
        let server = try HTTPFaultPlan.with(plan) {
            try HTTPServer(host: "127.0.0.1", port: 0, certificate: nil, key: nil) { _ in HTTPResponse(status: 401) }
        }
        defer { server.stop() }
        let client = try HTTPClient(useTLS: false, timeoutSeconds: 2)
        let url = HTTPURL("http://127.0.0.1:\(server.port)/x")!
        // The first accept fails; the connection waits in the backlog and the next accept takes it.
        #expect(try client.post(url, headers: [], body: []).status == 401)
        #expect(plan.calls(of: .accept) >= 2, "the failed accept was retried: \(plan.calls(of: .accept))")
        #expect(try client.post(url, headers: [], body: []).status == 401, "the server serves on")
        // A 401 is found by its kind, not by its words (OSCP registers again on it).
        #expect(HTTPError(.status(401), "/handshake: HTTP 401").kind == .status(401))
    }
}
