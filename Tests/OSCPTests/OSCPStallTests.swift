import Foundation
import LMCTestSupport
import Testing
@testable import HTTPTransport
@testable import OSCP

/// Issue 16, item 7: a stalled control loop lets the CPMS fall back. While the loop posts, our
/// heartbeats and forecasts keep the FP on the live set point; when it stops posting, the heartbeats
/// stop too, so the FP's `offline_mode_at` passes and it applies the FALLBACK_CONSUMPTION forecast —
/// as a charger's validity timer takes it to its safe current when the relay stops refreshing.
@Suite(.serialized) struct OSCPStalledLoop {
    @Test func heartbeatsStopWhileTheLoopIsStalledAndResumeWithIt() throws {
        let fp = try OSCPPeer(initialToken: "initial-fp-token", requireHeartbeatS: 1, sendHeartbeatS: 0.3)
        defer { fp.stop() }
        let probe = try run(Repo.python, ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        let ourPort = Int(probe.out.trimmingCharacters(in: .whitespacesAndNewlines))!
        var c = OSCPConfig(listenHost: "127.0.0.1", listenPort: ourPort, ourBaseURL: "http://127.0.0.1:\(ourPort)/oscp/cp/2.0",
                           fpBaseURL: "http://127.0.0.1:\(fp.port)/oscp/fp/2.0", fpInitialToken: "initial-fp-token",
                           ourToken: "cp-token-0123456789abcdef", heartbeatIntervalS: 1, refreshS: 60, groups: ["hub": "hub-group"])
        c.stallAfterSeconds = 0.5
        let p = try OSCPCapacityProvider(c, events: { _, _ in })
        p.start()
        defer { p.stop() }

        func posting(for seconds: Double) {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end { p.post(site: "hub", watts: 200_000, fallbackW: [100_000]); usleep(100_000) }
        }
        // The loop runs: register, handshake, then heartbeats every second.
        let end = Date().addingTimeInterval(15)
        while fp.received("heartbeat").count < 2 && Date() < end { posting(for: 0.2) }
        try #require(fp.received("heartbeat").count >= 2, "no heartbeats while the loop posts: \(fp.received().map { $0["path"] ?? "?" })")

        // The loop stalls: within the stall time plus one heartbeat, no heartbeat goes out any more.
        usleep(1_600_000)
        let atStall = fp.received("heartbeat").count
        usleep(3_000_000)
        #expect(fp.received("heartbeat").count == atStall, "heartbeats went on for a stalled loop")
        #expect(p.status(site: "hub")?.lastError?.contains("control loop") == true, "\(String(describing: p.status(site: "hub")))")
        #expect(p.status(site: "hub")?.failingSinceNs != nil)

        // The loop is back: heartbeats resume at once.
        posting(for: 1.5)
        #expect(fp.received("heartbeat").count > atStall, "heartbeats did not resume with the loop")
    }
}
