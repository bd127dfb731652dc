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
                // Four typed partial sums: as one expression, Swift 6.2's type checker gives up on it.
                let a: UInt32 = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                let b: UInt32 = t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                let d: UInt32 = t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                let e: UInt32 = t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                c = a ^ b ^ d ^ e
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
    let fd: Int32

    /// The highest valid sequence number found or written.
    public private(set) var head: UInt64 = 0
    /// Slots that held a record whose CRC or position did not check out, at the last recovery.
    public private(set) var corruptSlots = 0
    /// Set when the header was unreadable and the old file was moved aside.
    public private(set) var movedAside: String?
    /// Set when the ring had another size and its records were moved into this one (also in the header's note).
    public private(set) var resized: String?

    public var payloadCapacity: Int { recordSize - Self.overhead }

    /// Opens or creates the ring; recovers the head. A corrupt header is moved aside (`.corrupt-N`) and
    /// a new ring started — nothing is silently discarded.
    public init(path: String, ringName: String, boxID: String, recordSize: Int, capacity: Int) throws(RingError) {
        precondition(recordSize >= Self.overhead + 8 && capacity >= 2)
        self.path = path
        self.ringName = ringName
        self.boxID = boxID
        var fd = open(path, O_RDWR | O_CLOEXEC)
        if fd >= 0, !Self.headerValid(fd: fd, recordSize: recordSize, capacity: capacity), Self.headerValid(fd: fd, recordSize: nil, capacity: nil) {
            // A sound ring of another size (the config's size changed): its records move into the new size,
            // newest first; what does not fit stays in the old file, kept beside it.
            close(fd)
            fd = -1
            if let report = try? Self.resize(path: path, ringName: ringName, boxID: boxID, recordSize: recordSize, capacity: capacity) {
                resized = report
                fd = open(path, O_RDWR | O_CLOEXEC)
            } else {
                fd = open(path, O_RDWR | O_CLOEXEC)   // could not migrate: moved aside below, as a corrupt one
            }
        }
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

    /// Magic, CRC and version check out, and (when given) the geometry is this one.
    static func headerValid(fd: Int32, recordSize: Int?, capacity: Int?) -> Bool {
        var h = [UInt8](repeating: 0, count: 124)
        guard pread(fd, &h, 124, 0) == 124, Array(h[0..<8]) == magic else { return false }
        guard get32(h, 120) == CRC32C.checksum(Array(h[0..<120])), get32(h, 8) == 1 else { return false }
        return (recordSize.map { Int(get32(h, 12)) == $0 } ?? true) && (capacity.map { Int(get64(h, 16)) == $0 } ?? true)
    }

    /// Where the header's note lives: the first sequence number the ring holds (u64: sequence numbers
    /// below it were never in this file, so they are not "unreadable"), u16 length, UTF-8 text, CRC-32C
    /// of all three (docs/ringlog.md). Outside the header CRC, so 0.1.0 readers ignore it.
    static let noteOffset = 128, noteMax = 1024

    static func writeNote(_ h: inout [UInt8], _ text: String, firstSeq: UInt64) {
        let b = Bytes.cut(text, noteMax)
        put64(&h, noteOffset, firstSeq)
        put16(&h, noteOffset + 8, UInt16(b.count))
        for (i, x) in b.enumerated() { h[noteOffset + 10 + i] = x }
        put32(&h, noteOffset + 10 + b.count, CRC32C.checksum(Array(h[noteOffset..<(noteOffset + 10 + b.count)])))
    }

    /// The header's note (what a resize did) and the first sequence number, if there is one and it checks out.
    static func readNote(_ h: [UInt8]) -> (text: String, firstSeq: UInt64)? {
        guard h.count >= noteOffset + 14 else { return nil }
        let n = Int(get16(h, noteOffset + 8))
        guard n > 0, n <= noteMax, noteOffset + 14 + n <= h.count,
              get32(h, noteOffset + 10 + n) == CRC32C.checksum(Array(h[noteOffset..<(noteOffset + 10 + n)])) else { return nil }
        return (String(decoding: h[(noteOffset + 10)..<(noteOffset + 10 + n)], as: UTF8.self), get64(h, noteOffset))
    }

    /// Moves a sound ring of another geometry into a new file of this one: the newest records that fit
    /// (the same sequence numbers, so readers see the same records), written to `PATH.resizing`, synced,
    /// then renamed over PATH. When records do not fit (a smaller ring, or a record too big for the new
    /// size) the old file is kept as `PATH.before-resize-N` — `lmc log info` lists it, any `lmc log`
    /// reads it with `--file`. Returns what was done.
    static func resize(path: String, ringName: String, boxID: String, recordSize: Int, capacity: Int) throws(RingError) -> String {
        let old = try RingReader(path: path)
        defer { old.release() }
        var head: UInt64 = 0, held = 0
        old.forEach { head = $0.seq; held += 1 }
        let cutoff = head > UInt64(capacity) ? head - UInt64(capacity) : 0
        let tmp = "\(path).resizing"
        unlink(tmp)
        let fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw RingError(path: tmp, message: "cannot create: \(String(cString: strerror(errno)))") }
        var ok = false
        defer { close(fd); if !ok { unlink(tmp) } }
        let size = off_t(headerSize + recordSize * capacity)
        let rc = posix_fallocate(fd, 0, size)
        if rc != 0 && (rc != EOPNOTSUPP && rc != EINVAL || ftruncate(fd, size) != 0) {
            throw RingError(path: tmp, message: "cannot preallocate for the resize (\(String(cString: strerror(rc != 0 ? rc : errno))))")
        }
        var kept = 0, tooBig = 0
        var failed = false
        var firstSeq: UInt64 = 0
        let payloadMax = recordSize - overhead
        old.forEach { rec in
            guard rec.seq > cutoff, !failed else { return }
            guard rec.payload.count <= payloadMax else { tooBig += 1; return }
            let r = encode(seq: rec.seq, wallNs: rec.wallNs, monoNs: rec.monoNs, payload: rec.payload, recordSize: recordSize)
            let slot = Int((rec.seq - 1) % UInt64(capacity))
            if pwrite(fd, r, r.count, off_t(headerSize + slot * recordSize)) != r.count { failed = true }
            if kept == 0 { firstSeq = rec.seq }
            kept += 1
        }
        if failed { throw RingError(path: tmp, message: "write failed during the resize: \(String(cString: strerror(errno)))") }
        let dropped = held - kept
        var keptAs: String? = nil
        if dropped > 0 {
            var n = 1
            while access("\(path).before-resize-\(n)", F_OK) == 0 { n += 1 }
            keptAs = "\(path).before-resize-\(n)"
        }
        let stamp = Self.utcNow()
        let note = "resized \(stamp) from \(old.capacity) records of \(old.recordSize) B to \(capacity) of \(recordSize) B: \(kept) of \(held) records moved"
            + (tooBig > 0 ? " (\(tooBig) too big for the new record size)" : "") + (keptAs.map { "; the \(dropped) that did not fit stay in \($0)" } ?? "")
        var header = [UInt8](repeating: 0, count: headerSize)
        writeHeader(&header, recordSize: recordSize, capacity: capacity, ringName: ringName, boxID: boxID)
        writeNote(&header, note, firstSeq: firstSeq)
        // Layouts (samples ring) move with the records: their sequence numbers are the same.
        let layouts = old.layouts()
        if !layouts.isEmpty {
            let block = SampleLayout.encode(layouts)
            if block.count <= SampleLayout.size { for (i, x) in block.enumerated() { header[SampleLayout.offset + i] = x } }
        }
        guard pwrite(fd, header, header.count, 0) == header.count, fsync(fd) == 0 else {
            throw RingError(path: tmp, message: "cannot write the header: \(String(cString: strerror(errno)))")
        }
        // The old file is replaced only once the new one is on disk; kept beside it when not all fit.
        if let keptAs { guard link(path, keptAs) == 0 else { throw RingError(path: keptAs, message: "cannot keep the old ring: \(String(cString: strerror(errno)))") } }
        guard rename(tmp, path) == 0 else { throw RingError(path: path, message: "cannot replace: \(String(cString: strerror(errno)))") }
        ok = true
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return "\(path): \(note)"
    }

    static func utcNow() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        func p(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tmv.tm_year + 1900)-\(p(tmv.tm_mon + 1))-\(p(tmv.tm_mday))T\(p(tmv.tm_hour)):\(p(tmv.tm_min)):\(p(tmv.tm_sec))Z"
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
        Self.encode(seq: seq, wallNs: wallNs, monoNs: monoNs, payload: payload, recordSize: recordSize)
    }

    static func encode(seq: UInt64, wallNs: UInt64, monoNs: UInt64, payload: [UInt8], recordSize: Int) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: recordSize)
        put64(&r, 0, seq)
        put64(&r, 8, wallNs)
        put64(&r, 16, monoNs)
        put16(&r, 24, UInt16(payload.count))
        for (i, b) in payload.enumerated() { r[26 + i] = b }
        put32(&r, recordSize - 4, CRC32C.checksum(Array(r[0..<(recordSize - 4)])))
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
        #if LMC_TEST_HOOKS
        // Fault injection: LMC_RING_SYNC_DELAY_MS makes every sync that slow (a flash card that stalls).
        if let ms = getenv("LMC_RING_SYNC_DELAY_MS").flatMap({ UInt32(String(cString: $0)) }) { usleep(ms * 1000) }
        #endif
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
    /// False when a writer thread of its own calls `flushIfDue` with its own clock: an append then
    /// never syncs, so records stamped with the time of their cycle do not decide when the disk syncs.
    public var syncsOnAppend = true

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
        if syncsOnAppend && monoNs >= lastSyncNs + syncIntervalNs { try flush(monoNs: monoNs) }
        return seq
    }

    /// Flushes if the sync interval has passed since the last sync (call every cycle, so a quiet ring
    /// still reaches the disk within the interval).
    public func flushIfDue(monoNs: UInt64) throws(RingError) {
        if let due = flushDueNs, monoNs >= due { try flush(monoNs: monoNs) }
    }

    /// When `flushIfDue` will next have something to do (monotonic ns); nil while nothing is queued.
    /// The one statement of "due", for the writer and for the ring log thread's sleep.
    public var flushDueNs: UInt64? { pending.isEmpty ? nil : lastSyncNs + syncIntervalNs }

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
