import Foundation
import LMCTestSupport
import RingLog
import Testing

/// `lmc log export --ring minutes`: named columns, and one header however the config changed.
@Suite struct MinuteExportTests {
    @Test func aConfigChangeAddsColumnsNotASecondHeader() throws {
        let dir = "/tmp/lmc-minutes-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
            for i in 0..<4 {
                // Minutes 0 and 1 under the first config (trafo only); 2 and 3 after a reload added a feeder CT.
                var mps = [MinuteRecord.MP(name: "trafo", unit: 1, min: 390_000, mean: 400_000, max: 410_000)]
                if i >= 2 { mps.append(.init(name: "feeder", unit: 0, min: 100, mean: 120, max: 140)) }
                let m = MinuteRecord(minuteStart: UInt32(1_763_596_800 + 60 * i), secondsCovered: 60, clockSynchronised: i != 1, clockJumped: false,
                                     mode: 0, secondsNotNormal: 0, mps: mps, sites: [.init(name: "hub", setPointW: 150_000, importW: .nan)])
                try store.record(m, wallNs: UInt64(1_763_596_860 + 60 * i) * 1_000_000_000, monoNs: UInt64(i))
            }
            try store.flush(monoNs: 0)
        }
        let r = try run(Repo.lmc, ["log", "export", "--ring", "minutes", "--dir", dir])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 5, "\(r.out)")
        #expect(lines.filter { $0.hasPrefix("seq,") }.count == 1)
        #expect(lines.first == "seq,minute_start,seconds_covered,clock_synchronised,clock_jumped,mode,s_not_normal,trafo_va_min,trafo_va_mean,trafo_va_max,feeder_a_min,feeder_a_mean,feeder_a_max,hub_set_point_w,hub_import_w", "\(lines.first ?? "")")
        #expect(lines[1] == "1,2025-11-20T00:00:00.000Z,60.0,1,0,NORMAL,0.0,390000.0,400000.0,410000.0,,,,150000.0,", "\(lines[1])")
        #expect(lines[2].contains(",0,0,NORMAL,"), "the clock was not synchronised in minute 2: \(lines[2])")
        #expect(lines[3].hasSuffix(",410000.0,100.0,120.0,140.0,150000.0,"), "\(lines[3])")
        // From a time: only what is in range, its own columns.
        let late = try run(Repo.lmc, ["log", "export", "--ring", "minutes", "--dir", dir, "--from", "2025-11-20T00:02"])
        #expect(late.out.split(separator: "\n").count == 3 && late.out.hasPrefix("seq,minute_start,seconds_covered,clock_synchronised,clock_jumped,mode,s_not_normal,trafo_va_min"), "\(late.out)")
    }
}

extension AuditAndPlotTests {
    /// `lmc log audit --month`: the simulated day is the month's only one; its line agrees with the day's audit.
    @Test func theMonthSummaryAgreesWithTheDay() throws {
        _ = try Self.report
        let r = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--month", "2026-11"])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.first == "lmc log audit: box simulate, 2026-11 (UTC), 48 of 1440 half hours recorded", "\(lines.first ?? "")")
        let day = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--day", "2026-11-20"]).out.split(separator: "\n").map(String.init)
        // The MP's day line (max, share of the limit, seconds over, trip, bad) is the month's 20th and the month's total.
        let dayMP = try #require(day.first { $0.hasPrefix("day") })
        func words(_ s: String) -> String { s.split(separator: " ").joined(separator: " ") }
        let tail = words(dayMP).split(separator: " ").suffix(7).joined(separator: " ")
        let twentieth = try #require(lines.first { $0.hasPrefix("20 ") })
        #expect(words(twentieth).hasSuffix(tail), "\(twentieth) vs \(dayMP)")
        let monthMP = try #require(lines.first { $0.hasPrefix("month") })
        #expect(words(monthMP).hasSuffix(tail), "\(monthMP) vs \(dayMP)")
        let long = lines.filter { $0.count > 80 }
        #expect(long.isEmpty, "\(long)")
        #expect(lines.contains { $0.hasPrefix("19") && $0.hasSuffix("no record") })
        // The site: the month's energy is the day's.
        let daySite = try #require(day.filter { $0.hasPrefix("day") }.last)
        let kwh = daySite.split(separator: " ").compactMap { Double($0) }
        let monthSite = try #require(lines.filter { $0.hasPrefix("month") && $0.contains("kWh") }.last)
        #expect(monthSite.contains(" \(String(format: "%.1f", kwh[0])) kWh"), "\(monthSite) vs \(daySite)")
        let bad = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--month", "2026-13"])
        #expect(bad.status != 0 && bad.err.contains("is not a UTC month"))
    }
}

/// `lmc log export --ring halfhours` across a config change: one header with every point's columns.
@Suite struct HalfHourExportHeaderTests {
    @Test func aConfigChangeAddsColumnsNotASecondHeader() throws {
        let dir = "/tmp/lmc-hh-header-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
            for i in 0..<4 {
                var mps = [HalfHourRecord.MP(name: "trafo", unit: 1, lowerLimit: false, limit: 500_000, trip: 550_000, min: 1, mean: 2, max: 3,
                                             secondsBeyondLimit: 0, secondsBeyondTrip: 0, secondsBad: 0)]
                if i >= 2 {
                    mps.append(.init(name: "feeder", unit: 0, lowerLimit: false, limit: 400, trip: .nan, min: 100, mean: 120, max: 140,
                                     secondsBeyondLimit: 0, secondsBeyondTrip: 0, secondsBad: 0))
                }
                let h = HalfHourRecord(periodStart: UInt32(1_763_596_800 + 1800 * i), secondsCovered: 1800, clockJumped: false, secondsInMode: [1800, 0, 0, 0, 0, 0, 0],
                                       mps: mps, sites: [.init(name: "hub", ceilingW: 250_000, setPointMinW: 150_000, setPointMeanW: 200_000, importedKWh: 100,
                                                                curtailedKWh: 0, secondsRestricted: 0, importMetered: true)])
                try store.record(h, wallNs: UInt64(1_763_598_600 + 1800 * i) * 1_000_000_000, monoNs: UInt64(i))
            }
        }
        let r = try run(Repo.lmc, ["log", "export", "--ring", "halfhours", "--dir", dir])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("seq,") }.count == 1, "\(r.out)")
        #expect(lines.count == 5)
        let header = lines.first?.split(separator: ",").map(String.init) ?? []
        #expect(header.contains("trafo_max") && header.contains("feeder_max") && header.contains("hub_imported_kwh"), "\(header)")
        // Every row has the header's columns; the first two have the feeder's empty.
        #expect(lines.allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == header.count })
        let feederMax = try #require(header.firstIndex(of: "feeder_max"))
        #expect(lines[1].split(separator: ",", omittingEmptySubsequences: false)[feederMax] == "")
        #expect(lines[4].split(separator: ",", omittingEmptySubsequences: false)[feederMax] == "140.0")
    }
}

/// `lmc log export --ring samples`: columns named from the layouts in the ring's header; positional for
/// samples no layout describes; one header.
@Suite struct SampleExportColumnsTests {
    @Test func samplesAreNamedAfterTheirLayoutAcrossAConfigChange() throws {
        let dir = "/tmp/lmc-sample-cols-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
            func sample(_ mps: Int) -> SampleRecord {
                SampleRecord(mode: 0, mps: (0..<mps).map { .init(value: Float(100 * ($0 + 1)), quality: 0) }, sites: [.init(setPointW: 150_000, boundBy: 1, importW: .nan)])
            }
            try store.record(sample(1), wallNs: 1_000_000_000, monoNs: 1)   // before any layout (a 0.1.0 ring)
            try store.noteLayout(SampleLayout(mps: ["trafo_va"], sites: ["hub"]))
            try store.record(sample(1), wallNs: 2_000_000_000, monoNs: 2)
            try store.noteLayout(SampleLayout(mps: ["trafo_va", "feeder_a"], sites: ["hub"]))
            try store.record(sample(2), wallNs: 3_000_000_000, monoNs: 3)
            try store.flush(monoNs: 4)
        }
        let r = try run(Repo.lmc, ["log", "export", "--ring", "samples", "--dir", dir])
        #expect(r.status == 0, "\(r.err)")
        let lines = r.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(r.out)")
        #expect(lines[0] == "seq,time,mono_s,clock_synchronised,mode,mp0_value,mp0_quality,trafo_va,trafo_va_quality,feeder_a,feeder_a_quality,site0_set_point_w,site0_bound_by,site0_import_w,hub_set_point_w,hub_bound_by,hub_import_w", "\(lines[0])")
        #expect(lines[1].hasSuffix(",NORMAL,100.0,good,,,,,150000.0,mp,,,,"), "\(lines[1])")
        #expect(lines[2].hasSuffix(",NORMAL,,,100.0,good,,,,,,150000.0,mp,"), "\(lines[2])")
        #expect(lines[3].hasSuffix(",NORMAL,,,100.0,good,200.0,good,,,,150000.0,mp,"), "\(lines[3])")
    }
}
