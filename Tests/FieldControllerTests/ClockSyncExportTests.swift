import Foundation
import LMCTestSupport
import RingLog
import Testing

/// Issue 20, item 7: each record says whether the wall clock was synchronised. Samples and half hours
/// written with the clock not synchronised read back as such in `lmc log export` (CSV and JSON lines);
/// records from rings written before the flag existed read as unknown (an empty field, `null`), never
/// as synchronised.
@Suite struct ClockSyncExportTests {
    static let t0: UInt64 = 1_763_596_800   // 2025-11-20T00:00:00Z

    static func sample(_ i: Int, synchronised: Bool?) -> SampleRecord {
        SampleRecord(mode: 0, mps: [.init(value: 400_000 + Float(i), quality: 0)],
                     sites: [.init(setPointW: 150_000, boundBy: 1, importW: 140_000)], clockSynchronised: synchronised)
    }

    static func halfHour(_ i: Int, synchronised: Bool?) -> HalfHourRecord {
        HalfHourRecord(periodStart: UInt32(t0) + UInt32(i) * 1800, secondsCovered: 1800, clockJumped: false, secondsInMode: [1800, 0, 0, 0, 0, 0, 0],
                       mps: [.init(name: "trafo", unit: 1, lowerLimit: false, limit: 500_000, trip: 550_000, min: 1, mean: 2, max: 3,
                                   secondsBeyondLimit: 0, secondsBeyondTrip: 0, secondsBad: 0)],
                       sites: [.init(name: "hub", ceilingW: 250_000, setPointMinW: 150_000, setPointMeanW: 200_000, importedKWh: 10, curtailedKWh: 0,
                                     secondsRestricted: 0, importMetered: true)],
                       clockSynchronised: synchronised)
    }

    /// Three of each: synchronised, not synchronised, not recorded.
    static func write(_ dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
        for (i, s) in [true, false, nil].enumerated() {
            try store.record(sample(i, synchronised: s), wallNs: (t0 + UInt64(i)) * 1_000_000_000, monoNs: UInt64(i) * 1_000_000_000)
            try store.record(halfHour(i, synchronised: s), wallNs: (t0 + UInt64(i + 1) * 1800) * 1_000_000_000, monoNs: UInt64(i) * 1_000_000_000)
        }
        try store.flush(monoNs: 0)
    }

    @Test func samplesAndHalfHoursWrittenWithAnUnsynchronisedClockSaySoInTheExport() throws {
        let dir = "/tmp/lmc-clocksync-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir)

        let samples = try run(Repo.lmc, ["log", "export", "--ring", "samples", "--dir", dir])
        #expect(samples.status == 0, "\(samples.err)")
        let s = samples.out.split(separator: "\n").map(String.init)
        #expect(s.count == 4, "\(samples.out)")
        let sHeader = s.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) ?? []
        let sCol = try #require(sHeader.firstIndex(of: "clock_synchronised"), "a named column: \(sHeader)")
        #expect(s.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)[sCol] } == ["1", "0", ""], "\(samples.out)")

        let hh = try run(Repo.lmc, ["log", "export", "--ring", "halfhours", "--dir", dir])
        #expect(hh.status == 0, "\(hh.err)")
        let h = hh.out.split(separator: "\n").map(String.init)
        #expect(h.count == 4, "\(hh.out)")
        let hHeader = h.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) ?? []
        let hCol = try #require(hHeader.firstIndex(of: "clock_synchronised"), "a named column: \(hHeader)")
        #expect(h.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)[hCol] } == ["1", "0", ""], "\(hh.out)")

        for ring in ["samples", "halfhours"] {
            let j = try run(Repo.lmc, ["log", "export", "--ring", ring, "--dir", dir, "--format", "jsonl"])
            #expect(j.status == 0, "\(j.err)")
            let values = try j.out.split(separator: "\n").map { try jsonObject(String($0)) }.map { o -> String in
                guard let v = o["clock_synchronised"] else { return "missing" }
                return v is NSNull ? "null" : ((v as? Bool).map { "\($0)" } ?? "?")
            }
            #expect(values == ["true", "false", "null"], "\(ring): \(j.out)")
        }
    }

    /// The audit tells the DNO which half hours were timed by a clock not synchronised, and which do not say.
    @Test func theAuditNamesTheHalfHoursWithTheClockNotSynchronised() throws {
        let dir = "/tmp/lmc-clocksync-audit-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(dir)
        let day = try run(Repo.lmc, ["log", "audit", "--dir", dir, "--day", "2025-11-20"])
        #expect(day.status == 0, "\(day.err)")
        #expect(day.out.contains("\nclock not synchronised in 1 half hour: 00:30\n"), "\(day.out)")
        #expect(day.out.contains("\nclock's state not recorded in 1 half hour (records older than the flag)\n"), "\(day.out)")
        let dayJSON = try jsonObject(try run(Repo.lmc, ["log", "audit", "--dir", dir, "--day", "2025-11-20", "--json"]).out)
        #expect(dayJSON["clock_not_synchronised"] as? [String] == ["00:30"] && dayJSON["clock_unknown"] as? [String] == ["01:00"], "\(dayJSON)")
        let month = try run(Repo.lmc, ["log", "audit", "--dir", dir, "--month", "2025-11"])
        #expect(month.out.contains("\nhalf hours with the clock not synchronised: 1\n  on days: 20 (1)\n"), "\(month.out)")
        #expect(month.out.contains("\nhalf hours with the clock's state not recorded (older records): 1\n"), "\(month.out)")
        let m = try jsonObject(try run(Repo.lmc, ["log", "audit", "--dir", dir, "--month", "2025-11", "--json"]).out)
        #expect(m["half_hours_clock_not_synchronised"] as? Int == 1 && m["half_hours_clock_unknown"] as? Int == 1, "\(m)")
        let twentieth = try #require((m["by_day"] as? [[String: Any]])?[19])
        #expect(twentieth["clock_not_synchronised"] as? Int == 1 && twentieth["clock_unknown"] as? Int == 1 && twentieth["half_hours"] as? Int == 3, "\(twentieth)")
    }
}
