import ArgumentParser
import Headroom

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The pure control core: one tick with 10 measurement points and 4 sites.
struct CoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "core", abstract: "Cost of one Headroom tick with 10 MPs and 4 sites.")
    @Option(help: "Ticks to time.") var ticks: Int = 200_000
    @Flag(help: "Only run the ticks, print nothing (for callgrind's instruction counts).") var quiet = false

    static func controller() throws -> HeadroomController {
        let mps = (0..<10).map { i in
            MeasurementPointConfig(id: "mp\(i)", kind: i < 6 ? .current : .apparentPower, sensitivity: i < 6 ? 1 / 690 : 1,
                                   upper: .init(trip: i < 6 ? 1_100 : 550_000, limit: i < 6 ? 1_000 : 500_000,
                                                releaseZone: i < 6 ? 980 : 492_000, releaseTrigger: i < 6 ? 970 : 488_000),
                                   regulateMargin: i < 6 ? 10 : 8_000, rideThrough: 2, regulateInterval: 5, releaseInterval: 10, rampW: 5_000, filterTimeConstant: 2)
        }
        let sites = (0..<4).map { j in
            SiteConfig(id: "site\(j)", floorW: 50_000, ceilingW: 150_000, rampUpWPerSecond: 2_000, connectionOrder: j)
        }
        return try HeadroomController(mode: .direct, mps: mps, sites: sites)
    }

    func run() throws {
        var c = try Self.controller()
        // A load that swings across the limits every few minutes, so every state is visited.
        func inputs(_ k: Int) -> HeadroomController.Inputs {
            let t = Double(k) * 0.1
            let swing = sin(t / 60)
            var mp: [String: [Double]?] = [:]
            for i in 0..<10 {
                let a: Double = 900 + 150 * swing + Double(i)
                let va: Double = 450_000 + 70_000 * swing
                mp["mp\(i)"] = i < 6 ? [a, a - 10, a - 20] : [va]
            }
            return .init(mp: mp, siteImportW: ["site0": 100_000, "site1": 90_000, "site2": 80_000, "site3": 70_000], secondsOfDay: t.truncatingRemainder(dividingBy: 86_400))
        }
        let precomputed = (0..<1000).map(inputs)
        var sink = 0.0
        let t0 = nowSeconds()
        for k in 0..<ticks {
            let d = c.tick(now: Double(k) * 0.1, precomputed[k % 1000])
            sink += d.sites[0].setPointW
        }
        let dt = nowSeconds() - t0
        if quiet { if sink.isNaN { print(sink) }; return }
        row("control core tick, 10 MPs and 4 sites", "\(fmt(dt / Double(ticks) * 1e6, 2)) µs per tick", "100 ms period",
            "\(fmt(dt / Double(ticks) / 0.1 * 100, 4)) % of the period", "\(ticks) ticks of a load swinging across the limits, wall time")
    }
}
