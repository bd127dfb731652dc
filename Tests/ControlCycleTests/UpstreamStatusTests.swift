import Foundation
import Testing
import ControlCycle
import LMCWiring

/// The upstream view's per-MP blind flag and per-site deaf and breaker flags (the DNP3 map's status
/// binaries are these): an unknown stays unknown (nil), never a good value.
@Suite struct UpstreamStatusTests {
    func cycle() throws -> ControlCycle {
        var u = URL(fileURLWithPath: #filePath)
        u.deleteLastPathComponent()
        let text = try String(contentsOf: u.appendingPathComponent("Scenarios/box.toml"), encoding: .utf8)
        switch Configuration.parse(text) {
        case .failure(let e): throw ScenarioError("box.toml: \(e)")
        case .success(let c): return try ControlCycle(c.cycleConfig)
        }
    }

    func snap(_ t: Double, trafo: Bool = true, breaker: BreakerRead?, relayFailing: Bool?) -> CycleSnapshot {
        let ns = UInt64(t * 1e9)
        var meters: [String: MeterSnapshot] = ["hub_poc": .good(w: 150_000, at: ns)]
        meters["trafo_meter"] = trafo ? .good(va: 300_000, at: ns)
            : MeterSnapshot(usable: false, problem: "timeout", readingNs: ns, lastGoodNs: ns - 500_000_000)
        let relays: [String: RelaySnapshot] = relayFailing.map { ["hub": RelaySnapshot(failingSinceNs: $0 ? ns : nil)] } ?? [:]
        return CycleSnapshot(monoNs: ns, wallNs: 1_795_000_000_000_000_000 + ns, meters: meters, relays: relays,
                             breakers: breaker.map { ["hub": $0] } ?? [:])
    }

    @Test func blindDeafAndTheBreakerContact() throws {
        var c = try cycle()
        var v = c.step(snap(1, breaker: .closed, relayFailing: false)).upstream
        #expect(v.mps[0].blind == false && v.sites[0].breakerClosed == true && v.sites[0].deaf == false)
        v = c.step(snap(1.1, breaker: .open, relayFailing: true)).upstream
        #expect(v.sites[0].breakerClosed == false && v.sites[0].deaf == true)
        v = c.step(snap(1.2, trafo: false, breaker: .unavailable("auxiliary contact: EIO"), relayFailing: nil)).upstream
        #expect(v.mps[0].blind == true, "the meter timed out: no believable value")
        #expect(v.sites[0].breakerClosed == nil, "an aux contact that could not be read is unknown, not open")
        #expect(v.sites[0].deaf == nil, "no relay this cycle: unknown, not healthy")
        v = c.step(snap(1.3, breaker: .notWired, relayFailing: false)).upstream
        #expect(v.sites[0].breakerClosed == nil && v.mps[0].blind == false)
        v = c.step(snap(1.4, breaker: nil, relayFailing: false)).upstream
        #expect(v.sites[0].breakerClosed == nil, "no reading of the breaker this cycle")
    }
}
