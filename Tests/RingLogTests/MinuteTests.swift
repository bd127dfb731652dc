import Foundation
import Testing
@testable import RingLog

@Suite struct MinuteRecordTests {
    static let t0: UInt64 = 1_763_596_800_000_000_000   // 2025-11-20T00:00:00Z, a minute boundary

    /// 10 Hz from t0 for `seconds`; the MP value rises 1 per cycle; the site is metered only in the
    /// first half of each minute; the clock is unsynchronised in the cycles `unsynced` says.
    func feed(_ a: inout MinuteAccumulator, seconds: Int, names: [String] = ["trafo", "feeder"], unsynced: (Int) -> Bool = { _ in false }) -> [MinuteRecord] {
        var out: [MinuteRecord] = []
        for k in 0..<(seconds * 10) {
            let inMinute = k % 600
            let s = SampleRecord(mode: inMinute >= 590 ? 3 : 0,
                                 mps: [.init(value: Float(inMinute), quality: 0), .init(value: 230, quality: inMinute < 300 ? 0 : 2)],
                                 sites: [.init(setPointW: 150_000, boundBy: 0, importW: inMinute < 300 ? 100_000 : .nan)])
            let ns = UInt64(k) * 100_000_000 + 50_000_000
            if let m = a.add(s, mpNames: names, mpUnits: [1, 2], siteNames: ["hub"], wallNs: Self.t0 + ns, monoNs: ns, clockSynchronised: !unsynced(k)) {
                out.append(m)
            }
        }
        return out
    }

    @Test func aMinuteHoldsMinMeanMaxSetPointImportModeAndTheClock() throws {
        var a = MinuteAccumulator()
        let got = feed(&a, seconds: 150, unsynced: { $0 == 700 })
        #expect(got.map(\.minuteStart) == [1_763_596_800, 1_763_596_860])
        let m = got[0]
        #expect(m.mps.map(\.name) == ["trafo", "feeder"] && m.mps.map(\.unit) == [1, 2] && m.sites.map(\.name) == ["hub"])
        #expect(m.mps[0].min == 0 && m.mps[0].max == 599)
        #expect(abs(m.mps[0].mean - 300) < 1, "time-weighted: each value stands for the cycle after the one before")
        #expect(m.mps[1].min == 230 && m.mps[1].max == 230, "bad values are left out")
        #expect(m.sites[0].setPointW == 150_000 && m.sites[0].importW == 100_000, "the import over the metered time only")
        #expect(m.mode == 3 && abs(m.secondsNotNormal - 1.0) < 0.01)
        #expect(abs(m.secondsCovered - 59.9) < 0.01 && m.clockSynchronised)
        #expect(!got[1].clockSynchronised, "a cycle with the clock unsynchronised marks its minute")
        // Stop: the open half minute.
        let finished = a.finish()
        let last = try #require(finished)
        #expect(last.minuteStart == 1_763_596_920 && abs(last.secondsCovered - 30) < 0.01)
        #expect(a.finish() == nil)
    }

    @Test func aConfigChangeClosesTheMinute() {
        var a = MinuteAccumulator()
        _ = feed(&a, seconds: 10)
        let s = SampleRecord(mode: 0, mps: [.init(value: 1, quality: 0)], sites: [])
        let closed = a.add(s, mpNames: ["trafo"], siteNames: [], wallNs: Self.t0 + 10_100_000_000, monoNs: 10_100_000_000, clockSynchronised: true)
        #expect(closed?.mps.map(\.name) == ["trafo", "feeder"] && closed?.minuteStart == 1_763_596_800)
        #expect(a.finish()?.mps.map(\.name) == ["trafo"])
    }

    @Test func roundTripsAndTheLargestConfigFitsItsRecord() throws {
        let m = MinuteRecord(minuteStart: 1_763_596_860, secondsCovered: 59.9, clockSynchronised: false, clockJumped: true, mode: 5, secondsNotNormal: 12.3,
                             mps: (0..<8).map { .init(name: "mp-with-a-long-\($0)", unit: UInt8($0 % 3), min: 1, mean: .nan, max: 3) },
                             sites: (0..<8).map { .init(name: "site-\($0)", setPointW: 150_000, importW: .nan) })
        let bytes = m.encode()
        #expect(bytes.count <= MinuteRecord.recordSize - RingFile.overhead)
        let back = try #require(MinuteRecord.decode(bytes))
        #expect(back.encode() == bytes)
        #expect(back.mps[0].name == "mp-with-a-long-0" && back.mps[0].mean.isNaN && back.clockJumped && !back.clockSynchronised)
        #expect(MinuteRecord.decode(Array(bytes.prefix(30))) == nil)
    }

    @Test func theDefaultRingHoldsNinetyTwoDays() {
        let capacity = Int(72 * 1_048_576) / MinuteRecord.recordSize
        #expect(capacity >= 92 * 1440)
    }
}
