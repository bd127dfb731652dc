#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// CRC-32C (Castagnoli), the checksum of every record and header (docs/ringlog.md).
public enum CRC32C {
    /// Slicing-by-8 tables (Intel's method): table k maps a byte k positions back. 8 × 256 entries.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[Int(t[(k - 1) * 256 + i] & 0xFF)] }
        }
        return t
    }()

    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var c = ~seed
        tables.withUnsafeBufferPointer { t in
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let lo = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ c
                let hi = bytes.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                  ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                  ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                  ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}

public struct RingError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}

/// One ring file: a 4096-byte header, then `capacity` fixed-size slots. Record `seq` (from 1) lives in
/// slot (seq − 1) mod capacity, so the newest overwrites the oldest.
///
/// Slot layout (little endian): seq u64 · wall ns u64 · monotonic ns u64 · payload length u16 ·
/// payload (padded) · CRC-32C u32 of everything before it. A torn write fails its CRC and is skipped.
public final class RingFile {
    public static let magic: [UInt8] = Array("LMCRING1".utf8)
    public static let headerSize = 4096
    static let overhead = 8 + 8 + 8 + 2 + 4
    /// The largest record a reader believes a header about (a payload length is 16 bits).
    static let maxRecordSize = 65_536

    public let path: String
    public let recordSize: Int
    public let capacity: Int
    public let ringName: String
    public let boxID: String
    private let fd: Int32

    /// The highest valid sequence number found or written.
    public private(set) var head: UInt64 = 0
    /// Slots that held a record whose CRC or position did not check out, at the last recovery.
    public private(set) var corruptSlots = 0
    /// Set when the header was unreadable and the old file was moved aside.
    public private(set) var movedAside: String?

    public var payloadCapacity: Int { recordSize - Self.overhead }

    /// Opens or creates the ring; recovers the head. A corrupt header is moved aside (`.corrupt-N`) and
    /// a new ring started — nothing is silently discarded.
    public init(path: String, ringName: String, boxID: String, recordSize: Int, capacity: Int) throws(RingError) {
        precondition(recordSize >= Self.overhead + 8 && capacity >= 2)
        self.path = path
        self.ringName = ringName
        self.boxID = boxID
        var fd = open(path, O_RDWR | O_CLOEXEC)
        if fd >= 0, !Self.headerValid(fd: fd, recordSize: recordSize, capacity: capacity) {
            close(fd)
            var n = 1
            while access("\(path).corrupt-\(n)", F_OK) == 0 { n += 1 }
            rename(path, "\(path).corrupt-\(n)")
            movedAside = "\(path).corrupt-\(n)"
            fd = -1
        }
        if fd < 0 {
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw RingError(path: path, message: "cannot create: \(String(cString: strerror(errno)))") }
            let size = off_t(Self.headerSize + recordSize * capacity)
            // Preallocated, so that a disk filling up later never stops the log. Only a filesystem that
            // cannot preallocate at all gets a sparse file; no space is an error, and the file goes.
            let rc = posix_fallocate(fd, 0, size)
            if rc != 0 && (rc != EOPNOTSUPP && rc != EINVAL || ftruncate(fd, size) != 0) {
                close(fd)
                unlink(path)
                let mb = (Double(size) / 1_048_576 * 10).rounded() / 10
                throw RingError(path: path, message: "cannot preallocate \(mb) MB (\(String(cString: strerror(rc != 0 ? rc : errno)))): free space, or lower [log] \(ringName)_mb")
            }
            var header = [UInt8](repeating: 0, count: Self.headerSize)
            Self.writeHeader(&header, recordSize: recordSize, capacity: capacity, ringName: ringName, boxID: boxID)
            guard pwrite(fd, header, header.count, 0) == header.count, fsync(fd) == 0 else {
                close(fd)
                throw RingError(path: path, message: "cannot write the header: \(String(cString: strerror(errno)))")
            }
        }
        // A truncated file (a copy cut short, a filesystem repair): extend it; the lost slots read empty.
        var st = stat()
        let expected = off_t(Self.headerSize + recordSize * capacity)
        if fstat(fd, &st) == 0 && st.st_size < expected { _ = ftruncate(fd, expected) }
        self.fd = fd
        self.recordSize = recordSize
        self.capacity = capacity
        recover()
    }

    deinit { close(fd) }

    static func writeHeader(_ h: inout [UInt8], recordSize: Int, capacity: Int, ringName: String, boxID: String) {
        for (i, b) in magic.enumerated() { h[i] = b }
        put32(&h, 8, 1)                       // format version
        put32(&h, 12, UInt32(recordSize))
        put64(&h, 16, UInt64(capacity))
        for (i, b) in Array(ringName.utf8.prefix(31)).enumerated() { h[24 + i] = b }
        for (i, b) in Array(boxID.utf8.prefix(63)).enumerated() { h[56 + i] = b }
        put32(&h, 120, CRC32C.checksum(Array(h[0..<120])))
    }

    static func headerValid(fd: Int32, recordSize: Int, capacity: Int) -> Bool {
        var h = [UInt8](repeating: 0, count: 124)
        guard pread(fd, &h, 124, 0) == 124, Array(h[0..<8]) == magic else { return false }
        guard get32(h, 120) == CRC32C.checksum(Array(h[0..<120])), get32(h, 8) == 1 else { return false }
        return Int(get32(h, 12)) == recordSize && Int(get64(h, 16)) == capacity
    }

    /// Scans every slot: the head is the highest valid sequence number.
    private func recover() {
        var buf = [UInt8](repeating: 0, count: recordSize * 256)
        var slot = 0
        head = 0
        corruptSlots = 0
        while slot < capacity {
            let n = min(256, capacity - slot)
            let got = pread(fd, &buf, n * recordSize, off_t(Self.headerSize + slot * recordSize))
            guard got == n * recordSize else { break }
            for i in 0..<n {
                let r = Array(buf[(i * recordSize)..<((i + 1) * recordSize)])
                if r.allSatisfy({ $0 == 0 }) { continue }
                if let seq = Self.validSeq(r, slot: slot + i, capacity: capacity, recordSize: recordSize) {
                    head = max(head, seq)
                } else {
                    corruptSlots += 1
                }
            }
            slot += n
        }
    }

    static func validSeq(_ r: [UInt8], slot: Int, capacity: Int, recordSize: Int) -> UInt64? {
        validSeq(r[...], slot: slot, capacity: capacity, recordSize: recordSize)
    }

    /// Whether a slot's bytes hold a valid record of a sequence number that belongs in this slot.
    static func validSeq(_ r: ArraySlice<UInt8>, slot: Int, capacity: Int, recordSize: Int) -> UInt64? {
        let seq = get64(r, 0)
        guard seq > 0, Int((seq - 1) % UInt64(capacity)) == slot else { return nil }
        let len = Int(get16(r, 24))
        guard len <= recordSize - overhead else { return nil }
        let crcAt = recordSize - 4
        let s = r.startIndex
        guard get32(r, crcAt) == r[s..<(s + crcAt)].withUnsafeBytes({ CRC32C.checksum($0) }) else { return nil }
        return seq
    }

    /// Encodes one record for sequence `seq`.
    func encode(seq: UInt64, wallNs: UInt64, monoNs: UInt64, payload: [UInt8]) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: recordSize)
        Self.put64(&r, 0, seq)
        Self.put64(&r, 8, wallNs)
        Self.put64(&r, 16, monoNs)
        Self.put16(&r, 24, UInt16(payload.count))
        for (i, b) in payload.enumerated() { r[26 + i] = b }
        Self.put32(&r, recordSize - 4, CRC32C.checksum(Array(r[0..<(recordSize - 4)])))
        return r
    }

    /// Writes encoded records (consecutive sequence numbers, starting at head + 1) with as few
    /// pwrite calls as the wrap allows. Does not sync.
    func write(_ records: [[UInt8]], firstSeq: UInt64) throws(RingError) {
        var i = 0
        while i < records.count {
            let slot = Int((firstSeq + UInt64(i) - 1) % UInt64(capacity))
            let run = min(records.count - i, capacity - slot)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(run * recordSize)
            for r in records[i..<(i + run)] { bytes += r }
            guard pwrite(fd, bytes, bytes.count, off_t(Self.headerSize + slot * recordSize)) == bytes.count else {
                throw RingError(path: path, message: "write failed: \(String(cString: strerror(errno))) (disk full?)")
            }
            i += run
        }
        head = firstSeq + UInt64(records.count) - 1
    }

    func sync() throws(RingError) {
        guard fdatasync(fd) == 0 else { throw RingError(path: path, message: "fdatasync failed: \(String(cString: strerror(errno)))") }
    }

    /// Every valid record from the oldest still held to the head, in order; torn or corrupt ones
    /// skipped (and counted in `skipped`).
    public func records(skipped: inout Int) -> [RingRecord] {
        var out: [RingRecord] = []
        guard head > 0 else { return out }
        let first = head > UInt64(capacity) ? head - UInt64(capacity) + 1 : 1
        var r = [UInt8](repeating: 0, count: recordSize)
        var seq = first
        while seq <= head {
            let slot = Int((seq - 1) % UInt64(capacity))
            guard pread(fd, &r, recordSize, off_t(Self.headerSize + slot * recordSize)) == recordSize,
                  Self.validSeq(r, slot: slot, capacity: capacity, recordSize: recordSize) == seq else {
                skipped += 1
                seq += 1
                continue
            }
            let len = Int(Self.get16(r, 24))
            out.append(RingRecord(seq: seq, wallNs: Self.get64(r, 8), monoNs: Self.get64(r, 16), payload: Array(r[26..<(26 + len)])))
            seq += 1
        }
        return out
    }

    static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) { for i in 0..<2 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) { for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) { for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    static func get16(_ b: [UInt8], _ at: Int) -> UInt16 { get16(b[...], at) }
    static func get32(_ b: [UInt8], _ at: Int) -> UInt32 { get32(b[...], at) }
    static func get64(_ b: [UInt8], _ at: Int) -> UInt64 { get64(b[...], at) }
    // Little-endian fields at an offset from the slice's start.
    static func get16(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt16 { let s = b.startIndex + at; return (0..<2).reduce(0) { $0 | UInt16(b[s + $1]) << (8 * $1) } }
    static func get32(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt32 { let s = b.startIndex + at; return (0..<4).reduce(0) { $0 | UInt32(b[s + $1]) << (8 * $1) } }
    static func get64(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt64 { let s = b.startIndex + at; return (0..<8).reduce(0) { $0 | UInt64(b[s + $1]) << (8 * $1) } }
}

public struct RingRecord: Sendable, Equatable {
    public var seq: UInt64
    public var wallNs: UInt64
    public var monoNs: UInt64
    public var payload: [UInt8]
}

/// Appends to a ring in batches: records collect in memory and are written and synced every
/// `syncInterval` (docs/design.md: default 1 s), so a power cut loses at most that much and the flash sees few,
/// large writes.
public final class RingWriter {
    public let ring: RingFile
    public let syncIntervalNs: UInt64
    private var pending: [[UInt8]] = []
    private var lastSyncNs: UInt64 = 0
    /// The head made durable by the last sync.
    public private(set) var syncedHead: UInt64

    public init(_ ring: RingFile, syncIntervalSeconds: Double = 1) {
        self.ring = ring
        self.syncIntervalNs = UInt64(syncIntervalSeconds * 1e9)
        self.syncedHead = ring.head
    }

    /// The sequence number the next appended record gets.
    public var nextSeq: UInt64 { ring.head + UInt64(pending.count) + 1 }

    /// Queues a record; flushes when the sync interval has passed. Returns its sequence number.
    @discardableResult
    public func append(_ payload: [UInt8], wallNs: UInt64, monoNs: UInt64) throws(RingError) -> UInt64 {
        precondition(payload.count <= ring.payloadCapacity, "payload of \(payload.count) bytes exceeds \(ring.payloadCapacity)")
        let seq = ring.head + UInt64(pending.count) + 1
        pending.append(ring.encode(seq: seq, wallNs: wallNs, monoNs: monoNs, payload: payload))
        if monoNs >= lastSyncNs + syncIntervalNs { try flush(monoNs: monoNs) }
        return seq
    }

    /// Flushes if the sync interval has passed since the last sync (call every cycle, so a quiet ring
    /// still reaches the disk within the interval).
    public func flushIfDue(monoNs: UInt64) throws(RingError) {
        if !pending.isEmpty && monoNs >= lastSyncNs + syncIntervalNs { try flush(monoNs: monoNs) }
    }

    /// Writes and syncs everything queued.
    public func flush(monoNs: UInt64) throws(RingError) {
        if !pending.isEmpty {
            try ring.write(pending, firstSeq: ring.head + 1)
            pending.removeAll(keepingCapacity: true)
        }
        try ring.sync()
        syncedHead = ring.head
        lastSyncNs = monoNs
    }
}
