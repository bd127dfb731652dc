import Foundation
import LMCTestSupport
import Testing
@testable import RingLog

func payload(_ seq: UInt64) -> [UInt8] { (0..<32).map { UInt8(truncatingIfNeeded: seq >> (8 * UInt64($0 % 8))) } }

/// Writes records 1…count (payload from the sequence number) into a new ring and closes it.
func writeRing(_ path: String, capacity: Int, count: Int) throws {
    let w = RingWriter(try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: capacity), syncIntervalSeconds: 0)
    for i in 1...count { try w.append(payload(UInt64(i)), wallNs: UInt64(i), monoNs: UInt64(i)) }
    try w.flush(monoNs: 0)
}

func tempRing(_ tag: String) -> String { "/tmp/lmc-ring-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

@Suite struct RingFileTests {
    @Test func crc32cKnownValue() {
        // The standard check value of CRC-32C: "123456789" → 0xE3069283.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func crc32cMatchesTheBitwiseDefinitionAtEveryLengthAndAlignment() {
        func reference(_ b: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in b {
                c ^= UInt32(x)
                for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            }
            return ~c
        }
        var rng = SystemRandomNumberGenerator()
        let data = (0..<600).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for length in 0..<300 {
            for offset in [0, 1, 3, 7] {
                let slice = data[offset..<(offset + length)]
                #expect(slice.withUnsafeBytes { CRC32C.checksum($0) } == reference(slice), "length \(length) offset \(offset)")
            }
        }
    }

    @Test func wrapsAroundAndReadsBackInOrder() throws {
        let path = tempRing("wrap")
        defer { unlink(path) }
        try writeRing(path, capacity: 256, count: 1000)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 256)
        #expect(ring.head == 1000 && ring.corruptSlots == 0)
        var skipped = 0
        let records = ring.records(skipped: &skipped)
        #expect(skipped == 0)
        #expect(records.map(\.seq) == Array(745...1000))
        #expect(records.allSatisfy { $0.payload == payload($0.seq) && $0.wallNs == $0.seq })
    }

    @Test func aTornLastRecordIsSkippedAndCounted() throws {
        let path = tempRing("torn")
        defer { unlink(path) }
        try writeRing(path, capacity: 64, count: 40)
        // Half of record 40 never reached the disk.
        let fd = open(path, O_RDWR)
        var zeros = [UInt8](repeating: 0, count: 32)
        pwrite(fd, &zeros, 32, off_t(RingFile.headerSize + 39 * 64 + 32))
        close(fd)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 64)
        #expect(ring.head == 39)
        #expect(ring.corruptSlots == 1)
        var skipped = 0
        #expect(ring.records(skipped: &skipped).last?.seq == 39)
    }

    @Test func flippedBitsAreNeverReturned() throws {
        let path = tempRing("flip")
        defer { unlink(path) }
        try writeRing(path, capacity: 64, count: 50)
        let fd = open(path, O_RDWR)
        for slot in [4, 17, 30] {
            var b: UInt8 = 0
            let at = off_t(RingFile.headerSize + slot * 64 + 30)
            pread(fd, &b, 1, at)
            b ^= 0x10
            pwrite(fd, &b, 1, at)
        }
        close(fd)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 64)
        var skipped = 0
        let records = ring.records(skipped: &skipped)
        #expect(skipped == 3 && ring.corruptSlots == 3)
        #expect(!records.contains { [5, 18, 31].contains($0.seq) })
        #expect(records.allSatisfy { $0.payload == payload($0.seq) })
        #expect(records.count == 47)
    }

    @Test func aTruncatedFileKeepsWhatItHas() throws {
        let path = tempRing("trunc")
        defer { unlink(path) }
        try writeRing(path, capacity: 100, count: 80)
        truncate(path, off_t(RingFile.headerSize + 50 * 64 + 10))
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 100)
        #expect(ring.head == 50)
        #expect(ring.corruptSlots == 1)   // the cut record
        let w = RingWriter(ring, syncIntervalSeconds: 0)
        #expect(try w.append(payload(51), wallNs: 0, monoNs: 0) == 51, "appending resumes after the last good record")
    }

    @Test func aCorruptHeaderIsMovedAsideNotDiscarded() throws {
        let path = tempRing("hdr")
        defer { unlink(path); unlink("\(path).corrupt-1") }
        try writeRing(path, capacity: 16, count: 1)
        let fd = open(path, O_RDWR)
        pwrite(fd, "XXXX", 4, 0)
        close(fd)
        let ring = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 16)
        #expect(ring.movedAside == "\(path).corrupt-1")
        #expect(access("\(path).corrupt-1", F_OK) == 0)
        #expect(ring.head == 0)
    }
}

/// A child appends at full speed and is killed with SIGKILL at random moments, many times.
@Suite struct RingCrashTests {
    @Test func twoHundredKillsLoseNothingSyncedAndReturnNothingCorrupt() throws {
        let path = tempRing("kill")
        defer { unlink(path) }
        var expectedFloor: UInt64 = 0
        var totalGaps = 0
        var previousHead: UInt64 = 0
        for round in 0..<200 {
            let child = try SpawnedChild(Repo.lmc, ["_ring-test-writer", "--path", path, "--capacity", "512", "--sync-ms", "5"])
            _ = try child.waitForLine(prefix: "START")
            usleep(UInt32.random(in: 2_000...25_000))
            let lines = child.kill()
            let synced = lines.compactMap { $0.hasPrefix("SYNCED ") ? UInt64($0.dropFirst(7)) : nil }.max() ?? 0
            expectedFloor = max(expectedFloor, synced)

            let ring = try RingFile(path: path, ringName: "samples", boxID: "crash-test", recordSize: 64, capacity: 512)
            // Nothing that was synced is lost; the head never goes back.
            #expect(ring.head >= expectedFloor, "round \(round): head \(ring.head) < synced \(expectedFloor)")
            #expect(ring.head >= previousHead, "round \(round)")
            previousHead = ring.head
            var skipped = 0
            let records = ring.records(skipped: &skipped)
            totalGaps += skipped
            // Every record returned is intact, and sequence numbers only skip where counted.
            #expect(records.allSatisfy { $0.payload == payload($0.seq) }, "round \(round)")
            #expect(zip(records, records.dropFirst()).allSatisfy { $1.seq > $0.seq })
            #expect(records.count + skipped == Int(min(ring.head, 512)), "round \(round)")
        }
        print("200 kills: head \(previousHead), torn/corrupt slots skipped in total \(totalGaps)")
    }

    /// What `lmc log export` does while the daemon writes: the reader never returns a torn or
    /// overwritten-midway record, and what it returns is in order.
    @Test func aReaderDuringAppendsSeesOnlyIntactRecordsInOrder() throws {
        let path = tempRing("reader")
        defer { unlink(path) }
        let child = try SpawnedChild(Repo.lmc, ["_ring-test-writer", "--path", path, "--capacity", "4096", "--sync-ms", "1"])
        _ = try child.waitForLine(prefix: "START")
        defer { _ = child.kill() }
        var passes = 0, returned = 0, skipped = 0
        var lastHead: UInt64 = 0
        while passes < 200 {
            let reader = try RingReader(path: path)
            var seqs: [UInt64] = []
            var intact = true
            let (n, s) = reader.forEach { rec in
                seqs.append(rec.seq)
                if rec.payload != payload(rec.seq) { intact = false }
            }
            reader.release()
            passes += 1
            returned += n
            skipped += s
            #expect(intact, "pass \(passes): a record's payload does not match its sequence number")
            #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $1 > $0 }, "pass \(passes): out of order")
            // Across passes nothing is promised about the newest record returned: a writer that laps a
            // slow reader overwrites what it was about to read (those slots are skipped, never misread).
            if let last = seqs.last { lastHead = max(lastHead, last) }
        }
        #expect(returned > 0 && lastHead > 4096, "the writer wrapped the ring while we read (head \(lastHead))")
        print("reader during appends: \(passes) passes, \(returned) records returned, \(skipped) slots skipped (being rewritten)")
    }
}

/// The ring log's thread sleeps until the earliest ring is due (`flushDueNs`) instead of looking
/// every 10 ms: the time must say when `flushIfDue` would write, and nil while nothing waits.
@Suite struct FlushDueTests {
    @Test func aWriterIsDueOneIntervalAfterItsLastSyncOnlyWhileRecordsWait() throws {
        let path = tempRing("due")
        defer { unlink(path) }
        let w = RingWriter(try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 16), syncIntervalSeconds: 2)
        w.syncsOnAppend = false
        #expect(w.flushDueNs == nil, "nothing queued: nothing due")
        try w.flush(monoNs: 5_000_000_000)
        try w.append(payload(1), wallNs: 1, monoNs: 5_100_000_000)
        #expect(w.flushDueNs == 7_000_000_000)
        try w.flushIfDue(monoNs: 6_999_999_999)
        #expect(w.flushDueNs == 7_000_000_000, "not yet due: still queued")
        try w.flushIfDue(monoNs: 7_000_000_000)
        #expect(w.flushDueNs == nil, "written and synced at the time it said")
        #expect(w.syncedHead == 1)
    }

    @Test func theStoreIsDueWhenItsEarliestRingIs() throws {
        let dir = tempRing("duestore")
        mkdir(dir, 0o755)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try LogStore(directory: dir, boxID: "t", samplesMB: 0.1, eventsMB: 0.1, halfHoursMB: 0.1, tripsMB: 0.1, minutesMB: 0.1, syncIntervalSeconds: 1)
        store.syncsOnAppend = false
        try store.flush(monoNs: 10_000_000_000)
        #expect(store.flushDueNs == nil)
        try store.event(EventRecord(kind: .log, text: "x"), wallNs: 1, monoNs: 10_500_000_000)
        #expect(store.flushDueNs == 11_000_000_000)
        try store.flushDue(nowNs: 11_000_000_000)
        #expect(store.flushDueNs == nil)
    }
}
