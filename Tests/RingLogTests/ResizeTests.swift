import Foundation
import LMCTestSupport
import Testing
@testable import RingLog

/// A ring whose configured size changes keeps its records: they move into the new size, newest first;
/// those that do not fit stay readable in the old file, kept beside it.
@Suite struct RingResizeTests {
    func held(_ path: String) throws -> (records: [RingRecord], skipped: Int, note: String?) {
        let r = try RingReader(path: path)
        defer { r.release() }
        var out: [RingRecord] = []
        let (_, skipped) = r.forEach { out.append($0) }
        return (out, skipped, r.note)
    }

    @Test func aBiggerRingTakesEveryRecordAndAppendingContinues() throws {
        let path = tempRing("grow")
        defer { unlink(path) }
        try writeRing(path, capacity: 64, count: 100)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 256)
        #expect(ring.movedAside == nil && access("\(path).corrupt-1", F_OK) != 0)
        #expect(ring.resized?.contains("64 of 64 records moved") == true, "\(ring.resized ?? "nil")")
        #expect(ring.head == 100 && ring.capacity == 256 && ring.corruptSlots == 0)
        let w = RingWriter(ring, syncIntervalSeconds: 0)
        #expect(try w.append(payload(101), wallNs: 101, monoNs: 101) == 101)
        try w.flush(monoNs: 0)
        let back = try held(path)
        #expect(back.records.map(\.seq) == Array(37...101) && back.skipped == 0)
        #expect(back.records.allSatisfy { $0.payload == payload($0.seq) && $0.wallNs == $0.seq })
        #expect(back.note?.hasPrefix("resized ") == true && back.note?.contains("from 64 records of 64 B to 256 of 64 B") == true, "\(back.note ?? "nil")")
        #expect(access("\(path).before-resize-1", F_OK) != 0, "nothing was left behind, so no old file is kept")
        // Opened again at the same size: nothing more to do.
        #expect(try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 256).resized == nil)
    }

    @Test func aSmallerRingTakesTheNewestAndTheOldFileKeepsTheRest() throws {
        let path = tempRing("shrink")
        defer { unlink(path); unlink("\(path).before-resize-1") }
        try writeRing(path, capacity: 64, count: 100)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 16)
        #expect(ring.head == 100)
        #expect(ring.resized?.contains("16 of 64 records moved; the 48 that did not fit stay in \(path).before-resize-1") == true, "\(ring.resized ?? "nil")")
        #expect(try held(path).records.map(\.seq) == Array(85...100))
        // The old file, untouched and readable as it was.
        let old = try held("\(path).before-resize-1")
        #expect(old.records.map(\.seq) == Array(37...100) && old.records.allSatisfy { $0.payload == payload($0.seq) })
    }

    @Test func anotherRecordSizeKeepsThePayloads() throws {
        let path = tempRing("recsize")
        defer { unlink(path) }
        try writeRing(path, capacity: 64, count: 50)
        _ = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 128, capacity: 64)
        let back = try held(path)
        #expect(back.records.map(\.seq) == Array(1...50))
        #expect(back.records.allSatisfy { $0.payload == payload($0.seq) && $0.monoNs == $0.seq })
        let r = try RingReader(path: path)
        defer { r.release() }
        #expect(r.recordSize == 128 && r.capacity == 64)
    }

    @Test func tornRecordsStayOutAndAnUnsoundHeaderIsStillMovedAside() throws {
        let path = tempRing("resizetorn")
        defer { unlink(path); unlink("\(path).corrupt-1") }
        try writeRing(path, capacity: 64, count: 40)
        let fd = open(path, O_RDWR)
        var b: UInt8 = 0xFF
        pwrite(fd, &b, 1, off_t(RingFile.headerSize + 9 * 64 + 30))    // record 10 corrupt
        close(fd)
        _ = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 128)
        let back = try held(path)
        #expect(back.records.count == 39 && !back.records.contains { $0.seq == 10 })
        // A header that does not check out is no ring to migrate.
        let fd2 = open(path, O_RDWR)
        pwrite(fd2, "XXXX", 4, 0)
        close(fd2)
        let moved = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 32)
        #expect(moved.movedAside == "\(path).corrupt-1" && moved.resized == nil && moved.head == 0)
    }
}

/// Rings in the 0.1.0 format, record for record known (Tests/RingLogTests/Fixtures/ring-0.1.0-format,
/// written by `fixtures` below with the encoders of the time, before the trips ring and resizing existed
/// — not by a 0.1.0 build: those are in ring-0.1.0-build, RingsOf010BuildTests) stay readable: as they
/// are, at their own size, and after a resize to today's sizes.
@Suite struct RingUpgradeTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ring-0.1.0-format").path

    static func sample(_ i: Int) -> SampleRecord {
        SampleRecord(mode: UInt8(i % 7), mps: [.init(value: Float(i) * 1.5, quality: UInt8(i % 3))],
                     sites: [.init(setPointW: Float(i * 1000), boundBy: UInt8(i % 10), importW: Float(i * 900))])
    }
    static func halfHour(_ i: Int) -> HalfHourRecord {
        HalfHourRecord(periodStart: UInt32(1_763_596_800 + i * 1800), secondsCovered: 1800, clockJumped: i == 3, secondsInMode: [1800, 0, 0, 0, 0, 0, 0],
                       mps: [.init(name: "trafo", unit: 1, lowerLimit: false, limit: 500_000, trip: 550_000, min: Float(i), mean: Float(i) + 1, max: Float(i) + 2,
                                   secondsBeyondLimit: 0, secondsBeyondTrip: 0, secondsBad: 0)],
                       sites: [.init(name: "hub", ceilingW: 250_000, setPointMinW: 150_000, setPointMeanW: 200_000, importedKWh: Float(i), curtailedKWh: 0,
                                     secondsRestricted: 0, importMetered: true)])
    }
    static func event(_ i: Int) -> EventRecord { EventRecord(kind: .alarmRaised, text: "METER_LOST trafo_ct: event \(i)") }
    /// (ring, record size, capacity, records written).
    static let rings = [("samples", 256, 32, 40), ("halfhours", HalfHourRecord.recordSize, 16, 10), ("events", 256, 16, 20)]

    /// LMC_WRITE_RING_FIXTURES=DIR writes the fixtures there (run once with the 0.1.0 code).
    @Test func fixtures() throws {
        guard let dir = ProcessInfo.processInfo.environment["LMC_WRITE_RING_FIXTURES"] else { return }
        for (name, size, capacity, count) in Self.rings {
            let w = RingWriter(try RingFile(path: "\(dir)/\(name).ring", ringName: name, boxID: "fixture", recordSize: size, capacity: capacity), syncIntervalSeconds: 0)
            for i in 1...count {
                let p = name == "samples" ? Self.sample(i).encode() : name == "halfhours" ? Self.halfHour(i).encode() : Self.event(i).encode(max: 256 - RingFile.overhead)
                try w.append(p, wallNs: 1_763_596_800_000_000_000 + UInt64(i) * 1_000_000_000, monoNs: UInt64(i) * 1_000_000_000)
            }
            try w.flush(monoNs: 0)
        }
    }

    func check(_ dir: String, _ name: String, count: Int, newest: Int) throws {
        let r = try RingReader(path: "\(dir)/\(name).ring")
        defer { r.release() }
        var seqs: [Int] = []
        let (_, skipped) = r.forEach { rec in
            let i = Int(rec.seq)
            seqs.append(i)
            switch name {
            case "samples": #expect(SampleRecord.decode(rec.payload) == Self.sample(i))
            case "halfhours": #expect(HalfHourRecord.decode(rec.payload)?.encode() == Self.halfHour(i).encode())
            default: #expect(EventRecord.decodePayload(rec.payload) == Self.event(i))
            }
            #expect(rec.wallNs == 1_763_596_800_000_000_000 + UInt64(i) * 1_000_000_000)
        }
        #expect(skipped == 0 && seqs == Array((count - newest + 1)...count), "\(name): \(seqs)")
    }

    @Test func ringsOf010StayReadableAsTheyAreAndAfterAResize() throws {
        let dir = tempRing("upgrade")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, _, capacity, count) in Self.rings {
            try FileManager.default.copyItem(atPath: "\(Self.fixtures)/\(name).ring", toPath: "\(dir)/\(name).ring")
            try check(dir, name, count: count, newest: min(count, capacity))
        }
        // Opened by today's store at their own sizes: kept as they are, appending continues.
        let mb = { (size: Int, capacity: Int) in Double(size * capacity) / 1_048_576 }
        do {
            let store = try LogStore(directory: dir, boxID: "fixture", samplesMB: mb(256, 32), eventsMB: mb(256, 16), halfHoursMB: mb(HalfHourRecord.recordSize, 16),
                                     tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
            #expect(store.resized.isEmpty && store.movedAside.isEmpty)
            #expect(store.samples.ring.head == 40 && store.halfHours.ring.head == 10 && store.events.ring.head == 20)
        }
        for (name, _, capacity, count) in Self.rings { try check(dir, name, count: count, newest: min(count, capacity)) }
        // At today's default sizes (bigger): every record moved, still readable.
        do {
            let store = try LogStore(directory: dir, boxID: "fixture", samplesMB: 1, eventsMB: 1, halfHoursMB: 1, tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
            #expect(store.resized.count == 3 && store.movedAside.isEmpty, "\(store.resized)")
        }
        for (name, _, capacity, count) in Self.rings { try check(dir, name, count: count, newest: min(count, capacity)) }
    }
}

/// The samples ring's header keeps the layouts (names of its values), so exports can name columns.
@Suite struct SampleLayoutTests {
    @Test func layoutsAreKeptInTheHeaderAndFollowAResize() throws {
        let path = tempRing("layout")
        defer { unlink(path) }
        try writeRing(path, capacity: 64, count: 10)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 64)
        #expect(ring.layouts().isEmpty, "a 0.1.0 ring has none")
        let a = SampleLayout(mps: ["trafo_va"], sites: ["hub"]), b = SampleLayout(mps: ["trafo_va", "feeder_a"], sites: ["hub"])
        try ring.noteLayout(a, fromSeq: 11)
        try ring.noteLayout(a, fromSeq: 15)   // unchanged: no new entry
        try ring.noteLayout(b, fromSeq: 20)
        #expect(ring.layouts().map(\.fromSeq) == [11, 20] && ring.layouts().map(\.layout) == [a, b])
        #expect(SampleLayout.at(10, in: ring.layouts()) == nil && SampleLayout.at(19, in: ring.layouts()) == a && SampleLayout.at(25, in: ring.layouts()) == b)
        // The header's first sector is untouched: the ring still opens as it was, records intact.
        let again = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 64)
        #expect(again.head == 10 && again.movedAside == nil && again.resized == nil)
        // Only the newest entries are kept.
        for i in 0..<10 { try again.noteLayout(SampleLayout(mps: ["mp\(i)"], sites: []), fromSeq: UInt64(30 + i)) }
        #expect(again.layouts().count == SampleLayout.maxEntries && again.layouts().last?.fromSeq == 39)
        // A resize carries them.
        let resized = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 128)
        #expect(resized.resized != nil && resized.layouts().map(\.fromSeq) == Array(33...39))
        let reader = try RingReader(path: path)
        defer { reader.release() }
        #expect(reader.layouts().last?.layout == SampleLayout(mps: ["mp9"], sites: []))
        // A damaged block reads as none, not as wrong names.
        let fd = open(path, O_RDWR)
        var x: UInt8 = 0x55
        pwrite(fd, &x, 1, off_t(SampleLayout.offset + 12))
        close(fd)
        #expect(reader.layouts().isEmpty)
    }
}

/// Rings written by a real 0.1.0 build (Fixtures/ring-0.1.0-build; its README says how, from which
/// commit): today's code reads every record — samples and half hours with the clock's state unknown —
/// and a resize to other sizes keeps them all.
@Suite struct RingsOf010BuildTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ring-0.1.0-build").path
    static let expected = [("samples", 720), ("halfhours", 2), ("events", 2)]

    func read(_ dir: String, _ name: String) throws -> [RingRecord] {
        let r = try RingReader(path: "\(dir)/\(name).ring")
        defer { r.release() }
        var out: [RingRecord] = []
        let (_, skipped) = r.forEach { out.append($0) }
        #expect(skipped == 0, "\(name): \(skipped) unreadable")
        return out
    }

    @Test func everyRecordReadsWithTheClocksStateUnknown() throws {
        for (name, count) in Self.expected {
            let recs = try read(Self.dir, name)
            #expect(recs.map(\.seq) == Array(1...UInt64(count)), "\(name)")
            for rec in recs {
                switch name {
                case "samples":
                    let s = try #require(SampleRecord.decode(rec.payload))
                    #expect(s.clockSynchronised == nil && s.mps.count == 1 && s.sites.count == 1 && s.mps[0].value > 400_000, "\(s)")
                case "halfhours":
                    let h = try #require(HalfHourRecord.decode(rec.payload))
                    #expect(h.clockSynchronised == nil && h.mps.map(\.name) == ["trafo"] && h.sites.map(\.name) == ["hub"], "\(h)")
                default:
                    #expect(EventRecord.decodePayload(rec.payload) != nil)
                }
            }
        }
        // The half hours as the 0.1.0 build exported them (export-halfhours.csv).
        let h = try read(Self.dir, "halfhours").compactMap { HalfHourRecord.decode($0.payload) }
        #expect(h.map(\.periodStart) == [1_795_194_000, 1_795_195_800], "2026-11-20T17:00Z and 17:30Z")
        #expect(h.map(\.secondsCovered) == [1795, 1800] && h.map { $0.mps[0].secondsBeyondLimit } == [310, 820])
        #expect(h.map { $0.mps[0].max } == [510_901.6, 506_920.88] && h.map { $0.sites[0].importedKWh } == [75.869446, 75.0])
    }

    @Test func aResizeToOtherSizesKeepsEveryRecord() throws {
        let dir = tempRing("upgrade-build")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, _) in Self.expected { try FileManager.default.copyItem(atPath: "\(Self.dir)/\(name).ring", toPath: "\(dir)/\(name).ring") }
        let before = try Self.expected.map { try read(dir, $0.0) }
        do {
            let store = try LogStore(directory: dir, boxID: "fixture", samplesMB: 1, eventsMB: 1, halfHoursMB: 1, tripsMB: 0.5, minutesMB: 0.1, syncIntervalSeconds: 0)
            #expect(store.resized.count == 3 && store.movedAside.isEmpty, "\(store.resized)")
            #expect(store.samples.ring.head == 720 && store.halfHours.ring.head == 2 && store.events.ring.head == 2)
        }
        let after = try Self.expected.map { try read(dir, $0.0) }
        for (b, a) in zip(before, after) {
            #expect(b.map(\.seq) == a.map(\.seq) && b.map(\.payload) == a.map(\.payload) && b.map(\.wallNs) == a.map(\.wallNs) && b.map(\.monoNs) == a.map(\.monoNs))
        }
    }
}
