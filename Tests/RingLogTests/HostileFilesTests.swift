import Foundation
import Testing
@testable import RingLog

/// Issue 17: a ring file or a date from outside (the DNO's SSH account, a copied file) can neither
/// hang, trap nor be misread.
@Suite struct HostileRingFilesAndDates {
    /// A header with a valid CRC that claims 2^40 slots on a 5 KiB file: the reader used to believe it
    /// and loop over every claimed slot.
    @Test func aHeaderIsNotBelievedBeyondItsFile() throws {
        let path = "/tmp/lmc-hostile-ring-\(getpid())"
        defer { unlink(path) }
        _ = try RingFile(path: path, ringName: "samples", boxID: "t", recordSize: 64, capacity: 16)
        var h = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(124))
        for (claim, size) in [(UInt64(1) << 40, UInt32(64)), (16, UInt32(1) << 30), (16, 3), (UInt64.max, 64)] {
            RingFile.put32(&h, 12, size)
            RingFile.put64(&h, 16, claim)
            RingFile.put32(&h, 120, CRC32C.checksum(Array(h[0..<120])))
            let fd = open(path, O_WRONLY)
            _ = pwrite(fd, h, 124, 0)
            close(fd)
            #expect(throws: RingError.self, "\(claim) slots of \(size) bytes") { _ = try RingReader(path: path) }
        }
    }

    @Test func datesThatDoNotExistOrOverflowAreRefused() {
        for bad in ["2026-02-31", "2026-04-31", "2100-02-29", "2201-01-01", "9999-12-31", "2026-02-29"] {
            #expect(LogAccess.parseUTC(bad) == nil, "\(bad) accepted")
        }
        #expect(LogAccess.parseUTC("2024-02-29") == 1_709_164_800)
        #expect(LogAccess.parseUTC("2200-12-31T23:59:59") != nil)
    }
}
