import Testing
@testable import LMCConfig

/// Issue 17: the network-facing sections default to what is safe on a hostile LAN.
@Suite struct NetworkConfigTests {
    func base() -> String { (try? exampleConfigText()) ?? "" }

    @Test func theUpstreamServerListensOnLoopbackOnAnUnprivilegedPortUnlessTold() throws {
        let c = try Configuration.parse(base() + "\n[upstream]\nallowed_writers = [\"10.20.0.5\"]\n").get()
        let u = try #require(c.runtime.upstream)
        #expect(u.listen == "127.0.0.1" && u.port == 1502)
        #expect(u.limits == .init(maxClients: 16, idleTimeoutMilliseconds: 60_000, frameDeadlineMilliseconds: 1000, sendDeadlineMilliseconds: 2000))
        let named = try Configuration.parse(base() + """

            [upstream]
            listen = "10.20.0.9"
            port = 502
            max_clients = 4
            idle_timeout_s = 30
            frame_deadline_ms = 500
            send_deadline_ms = 1000
            """).get().runtime.upstream
        #expect(named?.listen == "10.20.0.9" && named?.port == 502)
        #expect(named?.limits == .init(maxClients: 4, idleTimeoutMilliseconds: 30_000, frameDeadlineMilliseconds: 500, sendDeadlineMilliseconds: 1000))
    }

    @Test func aHostNameOrAnUnboundedLimitIsRefused() {
        for (extra, key) in [("listen = \"scada.example\"", "upstream.listen"), ("max_clients = 0", "max_clients"),
                             ("frame_deadline_ms = 600000", "frame_deadline_ms")] {
            guard case .failure(let e) = Configuration.parse(base() + "\n[upstream]\n\(extra)\n") else { Issue.record("accepted \(extra)"); continue }
            #expect(e.issues.contains { $0.description.contains(key) }, "\(e.issues)")
        }
    }
}
