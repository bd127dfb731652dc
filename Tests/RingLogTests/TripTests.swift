import Foundation
import LMCTestSupport
import Testing
@testable import RingLog

/// A sample whose values say when it was taken (deciseconds), so a test can tell them apart.
private func sample(_ ds: Int, mode: UInt8 = 0) -> SampleRecord {
    SampleRecord(mode: mode, mps: [.init(value: Float(ds), quality: 0), .init(value: 230, quality: 1)],
                 sites: [.init(setPointW: Float(ds) * 10, boundBy: 1, importW: 100_000)])
}

private let names = (mps: ["trafo", "feeder"], sites: ["hub"])

/// Drives a recorder at 10 Hz from 0 to `until` s; the trip is commanded at `tripAt`, the breaker's
/// aux contact reads open from `openAt`. Returns what it handed back, and when.
private func drive(_ r: inout TripRecorder, until: Int, tripAt: Int, openAt: Int?, alarmAt: Int? = nil) -> [(ds: Int, record: TripRecord)] {
    var out: [(Int, TripRecord)] = []
    for ds in 0...(until * 10) {
        let trips = ds == tripAt * 10 ? [(site: "hub", reason: "hub: tripping (test trip by root)")] : []
        let open = openAt.map { ds >= $0 * 10 } ?? false
        let alarms = alarmAt.map { ds >= $0 * 10 } == true ? [(code: "TRIP_FAILED", site: "hub", message: "breaker did not confirm open for 2 s")] : []
        for rec in r.cycle(sample: sample(ds), wallNs: 1_800_000_000_000_000_000 + UInt64(ds) * 100_000_000, monoNs: UInt64(ds) * 100_000_000 + 5,
                           clockSynchronised: true, trips: trips, breakers: ["hub": open ? .open : .closed], alarms: alarms,
                           mpNames: names.mps, siteNames: names.sites) {
            out.append((ds, rec))
        }
    }
    return out
}

@Suite struct TripRecordTests {
    @Test func aTripIsRecordedWithSixtySecondsEitherSideAndTheBreakersAnswer() {
        var r = TripRecorder()
        let got = drive(&r, until: 140, tripAt: 70, openAt: 71)
        #expect(got.count == 1)
        guard let (ds, rec) = got.first else { return }
        // Handed back once 60 s after the trip have been seen, not before.
        #expect(ds == 1300)
        #expect(rec.complete && rec.site == "hub" && rec.reason.contains("test trip by root"))
        #expect(rec.answer == "auxiliary contact confirmed open at +1.0 s", "\(rec.answer)")
        #expect(rec.mpNames == ["trafo", "feeder"] && rec.siteNames == ["hub"])
        // 600 samples before (-60 s … -0.1 s), the trip's own at 0, 600 after.
        #expect(rec.samples.filter { $0.offsetMs < 0 }.count == 600)
        #expect(rec.samples.filter { $0.offsetMs >= 0 }.count == 601)
        #expect(rec.samples.first?.offsetMs == -60_000 && rec.samples.last?.offsetMs == 60_000)
        #expect(rec.samples.allSatisfy { Int($0.sample.mps[0].value) * 100 - 70_000 == Int($0.offsetMs) })
        #expect(r.collecting == 0)
    }

    @Test func aBreakerThatDoesNotOpenIsSaidSoWithItsAlarm() {
        var r = TripRecorder()
        let got = drive(&r, until: 80, tripAt: 10, openAt: nil, alarmAt: 12)
        #expect(got.count == 1)
        let answer = got.first?.record.answer ?? ""
        #expect(answer.hasPrefix("not confirmed open within 60.0 s"), "\(answer)")
        #expect(answer.contains("TRIP_FAILED at +2.0 s: breaker did not confirm open"), "\(answer)")
        // Fewer than 60 s before the trip: what there was.
        #expect(got.first?.record.samples.filter { $0.offsetMs < 0 }.count == 100)
    }

    @Test func aStopHandsBackATripStillCollectingWithWhatThereIs() {
        var r = TripRecorder()
        #expect(drive(&r, until: 75, tripAt: 70, openAt: 70).isEmpty)
        #expect(r.collecting == 1)
        let cut = r.finish(monoNs: 75 * 1_000_000_000)
        #expect(cut.count == 1 && cut.first?.complete == false)
        #expect(cut.first?.samples.filter { $0.offsetMs > 0 }.count == 50)
        // The trip's own cycle read the breaker before the command: open is seen from the next one.
        #expect(cut.first?.answer == "auxiliary contact confirmed open at +0.1 s")
        #expect(r.finish(monoNs: 0).isEmpty)
    }

    @Test func aRecordRoundTripsThroughTheRing() throws {
        let dir = tempRing("trips")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = TripRecorder()
        let rec = try #require(drive(&r, until: 140, tripAt: 70, openAt: 71).first?.record)
        let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 1, minutesMB: 0.1, syncIntervalSeconds: 0)
        let n1 = try store.record(rec, wallNs: 1, monoNs: 1)
        var second = rec
        second.reason = "non-response: imports 260 kW against 150 kW for 10 s"
        let n2 = try store.record(second, wallNs: 2, monoNs: 2)
        let reader = try RingReader(path: "\(dir)/trips.ring")
        defer { reader.release() }
        let (entries, skipped) = TripLog.read(reader)
        #expect(skipped == 0)
        #expect(entries.map(\.number) == [n1, n2])
        #expect(entries.first?.record == rec)
        #expect(entries.last?.record == second)
        #expect(entries.allSatisfy { $0.missingChunks == 0 })
        // More than one record per trip: the samples need several.
        #expect(n2 - n1 > 2)
        let listing = TripLog.read(reader, samples: false).entries
        #expect(listing.map(\.number) == [n1, n2] && listing.allSatisfy { $0.record.samples.isEmpty && $0.missingChunks == 0 })
        #expect(TripLog.read(reader, only: n2).entries.map(\.record) == [second])
    }

    @Test func aTornSampleRecordLosesOnlyItsSamplesAndATornHeadTheTrip() throws {
        let dir = tempRing("tripstorn")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var r = TripRecorder()
        let rec = try #require(drive(&r, until: 140, tripAt: 70, openAt: 71).first?.record)
        let path = "\(dir)/trips.ring"
        do {
            let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 1, minutesMB: 0.1, syncIntervalSeconds: 0)
            try store.record(rec, wallNs: 1, monoNs: 1)
            try store.record(rec, wallNs: 2, monoNs: 2)
        }
        let size = LogStore.tripRecordSize
        let firstTripRecords = { () -> Int in
            let rd = try! RingReader(path: path)
            defer { rd.release() }
            var n = 0
            rd.forEach { if $0.seq > 1 && TripRecord.decodeHead($0.payload) != nil && n == 0 { n = Int($0.seq) - 1 } }
            return n
        }()
        #expect(firstTripRecords > 2)
        // The second sample record of trip 1 (slot 2) was cut short by a power cut: its second half is zeros.
        let fd = open(path, O_RDWR)
        var zeros = [UInt8](repeating: 0, count: size / 2)
        pwrite(fd, &zeros, zeros.count, off_t(RingFile.headerSize + 2 * size + size / 2))
        // The head of trip 2 has a flipped bit.
        var b: UInt8 = 0
        let at = off_t(RingFile.headerSize + firstTripRecords * size + 40)
        pread(fd, &b, 1, at)
        b ^= 0x01
        pwrite(fd, &b, 1, at)
        close(fd)
        let reader = try RingReader(path: path)
        defer { reader.release() }
        let (entries, skipped) = TripLog.read(reader)
        #expect(skipped == 2)
        #expect(entries.count == 1)
        let e = try #require(entries.first)
        #expect(e.number == 1 && e.missingChunks == 1)
        #expect(e.record.samples.count < rec.samples.count && e.record.samples.count > 0)
        #expect(e.record.reason == rec.reason && e.record.answer == rec.answer)
        // What is left is intact and in order.
        #expect(e.record.samples.allSatisfy { rec.samples.contains($0) })
        #expect(e.record.samples.map(\.offsetMs) == e.record.samples.map(\.offsetMs).sorted())
    }
}
