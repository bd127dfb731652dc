import Foundation
import LMCTestSupport
import Testing

/// Today's `lmc log` on the rings a real 0.1.0 build wrote (Tests/RingLogTests/Fixtures/ring-0.1.0-build,
/// with what that build's own `lmc log` printed for them): every column it exported is there with the same
/// values; `clock_synchronised` is there too, empty (unknown); the audit counts the half hours as not saying.
@Suite struct Export010BuildTests {
    static let dir = Repo.root.appendingPathComponent("Tests/RingLogTests/Fixtures/ring-0.1.0-build").path

    static func table(_ csv: String) -> (header: [String], rows: [[String]]) {
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        return (lines.first ?? [], Array(lines.dropFirst()))
    }

    @Test(arguments: ["samples", "halfhours", "events"])
    func todaysExportHasEveryColumnTheBuildExportedWithItsValues(ring: String) throws {
        let old = Self.table(try String(contentsOfFile: "\(Self.dir)/export-\(ring).csv", encoding: .utf8))
        let r = try run(Repo.lmc, ["log", "export", "--ring", ring, "--dir", Self.dir])
        #expect(r.status == 0, "\(r.err)")
        let new = Self.table(r.out)
        #expect(new.rows.count == old.rows.count && !old.rows.isEmpty, "\(ring): \(new.rows.count) rows, 0.1.0 exported \(old.rows.count)")
        for (k, name) in old.header.enumerated() {
            let n = try #require(new.header.firstIndex(of: name), "\(ring): column \(name) is gone: \(new.header)")
            #expect(new.rows.map { $0[n] } == old.rows.map { $0[k] }, "\(ring): \(name)")
        }
        if ring != "events" {
            let c = try #require(new.header.firstIndex(of: "clock_synchronised"), "\(new.header)")
            #expect(new.rows.allSatisfy { $0[c] == "" }, "unknown, not synchronised")
        }
    }

    @Test func theAuditSaysTheClocksStateWasNotRecorded() throws {
        let day = try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--day", "2026-11-20"])
        #expect(day.status == 0, "\(day.err)")
        #expect(day.out.contains("clock's state not recorded in 2 half hours"), "\(day.out)")
        #expect(!day.out.contains("clock synchronised in every"), "\(day.out)")
        // The table itself is the one 0.1.0 printed; only the clock's lines are new.
        let old = try String(contentsOfFile: "\(Self.dir)/audit-2026-11-20.txt", encoding: .utf8)
        #expect(day.out.hasPrefix(old), "\(day.out)")
        let month = try jsonObject(try run(Repo.lmc, ["log", "audit", "--dir", Self.dir, "--month", "2026-11", "--json"]).out)
        #expect(month["half_hours_recorded"] as? Int == 2 && month["half_hours_clock_unknown"] as? Int == 2
                 && month["half_hours_clock_not_synchronised"] as? Int == 0, "\(month)")
        let jsonl = try run(Repo.lmc, ["log", "export", "--ring", "halfhours", "--dir", Self.dir, "--format", "jsonl"])
        let records = try jsonl.out.split(separator: "\n").map { try jsonObject(String($0)) }
        #expect(records.count == 2 && records.allSatisfy { $0["clock_synchronised"] is NSNull }, "\(jsonl.out)")
    }
}
