#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the daemon records every control cycle (the samples ring). Values in SI units; NaN: no value.
public struct SampleRecord: Sendable, Equatable {
    public struct MP: Sendable, Equatable {
        public var value: Float
        /// 0 good, 1 estimated, 2 bad.
        public var quality: UInt8
        public init(value: Float, quality: UInt8) { self.value = value; self.quality = quality }
    }
    public struct Site: Sendable, Equatable {
        public var setPointW: Float
        /// Index into `LimitCodes.names`.
        public var boundBy: UInt8
        public var importW: Float
        public init(setPointW: Float, boundBy: UInt8, importW: Float) { self.setPointW = setPointW; self.boundBy = boundBy; self.importW = importW }
    }
    /// Index into `ModeCodes.names`.
    public var mode: UInt8
    public var mps: [MP]
    public var sites: [Site]
    /// The wall clock was known to be synchronised at this cycle (the cycle snapshot's state); nil:
    /// not recorded — a sample written before the flag existed (0.1.0 rings) reads as unknown.
    public var clockSynchronised: Bool?

    public init(mode: UInt8, mps: [MP], sites: [Site], clockSynchronised: Bool? = nil) {
        self.mode = mode; self.mps = mps; self.sites = sites; self.clockSynchronised = clockSynchronised
    }

    public static let maxMPs = 8, maxSites = 8

    public func encode() -> [UInt8] {
        var b = Bytes()
        b.u8(mode); b.u8(UInt8(min(mps.count, Self.maxMPs)))
        for m in mps.prefix(Self.maxMPs) { b.f32(m.value); b.u8(m.quality) }
        b.u8(UInt8(min(sites.count, Self.maxSites)))
        for s in sites.prefix(Self.maxSites) { b.f32(s.setPointW); b.u8(s.boundBy); b.f32(s.importW) }
        b.clock(clockSynchronised)
        return b.bytes
    }

    public static func decode(_ bytes: [UInt8]) -> SampleRecord? {
        var r = Reader(bytes)
        guard let mode = r.u8(), let nmp = r.u8() else { return nil }
        var mps: [MP] = []
        for _ in 0..<nmp {
            guard let v = r.f32(), let q = r.u8() else { return nil }
            mps.append(MP(value: v, quality: q))
        }
        guard let nsite = r.u8() else { return nil }
        var sites: [Site] = []
        for _ in 0..<nsite {
            guard let sp = r.f32(), let bound = r.u8(), let imp = r.f32() else { return nil }
            sites.append(Site(setPointW: sp, boundBy: bound, importW: imp))
        }
        return SampleRecord(mode: mode, mps: mps, sites: sites, clockSynchronised: r.clock())
    }
}

public enum ModeCodes {
    public static let names = ["NORMAL", "DEGRADED", "STARTUP", "FAILSAFE", "NON_RESPONSE", "TRIPPED", "LOCKOUT"]
}

public enum LimitCodes {
    public static let names = ["ceiling", "mp", "tcc", "dsc", "schedule", "override", "remote", "floor", "ramp", "fail-safe"]
    /// The code of a binding source as Headroom names it ("mp:trafo", "schedule:evening", "tcc" …).
    public static func code(_ source: String) -> UInt8 {
        UInt8(names.firstIndex(of: String(source.split(separator: ":").first ?? "")) ?? 0)
    }
}

/// An event: mode changes with reasons, alarms, trips, config loads, operator commands with the user,
/// clock jumps, start and stop.
public struct EventRecord: Sendable, Equatable {
    public enum Kind: UInt8, Sendable, CaseIterable {
        case start = 1, stop, mode, alarmRaised, alarmCleared, breaker, config, command, clockJump, log
        public var name: String {
            switch self {
            case .start: "start"
            case .stop: "stop"
            case .mode: "mode"
            case .alarmRaised: "alarm_raised"
            case .alarmCleared: "alarm_cleared"
            case .breaker: "breaker"
            case .config: "config"
            case .command: "command"
            case .clockJump: "clock_jump"
            case .log: "log"
            }
        }
    }
    public var kind: Kind
    public var text: String
    public init(kind: Kind, text: String) { self.kind = kind; self.text = text }

    func encode(max: Int) -> [UInt8] {
        var bytes = Array(text.utf8)
        if bytes.count > max - 1 {
            bytes = Array(bytes.prefix(max - 4))
            // Do not cut a UTF-8 sequence in half.
            while let last = bytes.last, last & 0xC0 == 0x80 { bytes.removeLast() }
            if let last = bytes.last, last >= 0xC0 { bytes.removeLast() }
            bytes += Array("…".utf8)
        }
        return [kind.rawValue] + bytes
    }

    static func decode(_ b: [UInt8]) -> EventRecord? {
        guard let first = b.first, let k = Kind(rawValue: first) else { return nil }
        return EventRecord(kind: k, text: String(decoding: b.dropFirst(), as: UTF8.self))
    }
}

/// The daemon's rings in one directory: `samples.ring` (every cycle), `halfhours.ring` (a record per
/// UTC half hour) and `events.ring`.
public final class LogStore {
    public static let recordSize = 256
    public let directory: String
    public let samples: RingWriter
    public let halfHours: RingWriter
    public let events: RingWriter
    /// A trip record per trip (Trips.swift): its samples span several records of this size.
    public let trips: RingWriter
    /// A record per UTC minute (Minutes.swift).
    public let minutes: RingWriter
    public static let tripRecordSize = 4096

    /// - Parameters: sizes in MB decide each ring's capacity (`lmc log info` shows the span it holds).
    public init(directory: String, boxID: String, samplesMB: Double, eventsMB: Double, halfHoursMB: Double = 64,
                tripsMB: Double = 16, minutesMB: Double = 72, syncIntervalSeconds: Double = 1) throws(RingError) {
        self.directory = directory
        func ring(_ name: String, _ mb: Double, _ size: Int) throws(RingError) -> RingWriter {
            RingWriter(try RingFile(path: "\(directory)/\(name).ring", ringName: name, boxID: boxID, recordSize: size,
                                    capacity: max(16, Int(mb * 1_048_576) / size)), syncIntervalSeconds: syncIntervalSeconds)
        }
        samples = try ring("samples", samplesMB, Self.recordSize)
        halfHours = try ring("halfhours", halfHoursMB, HalfHourRecord.recordSize)
        events = try ring("events", eventsMB, Self.recordSize)
        trips = try ring("trips", tripsMB, Self.tripRecordSize)
        minutes = try ring("minutes", minutesMB, MinuteRecord.recordSize)
    }

    private var writers: [RingWriter] { [samples, halfHours, events, trips, minutes] }

    /// False for a store that a writer thread owns: appends only queue, and the thread syncs with
    /// `flushDue` on its own clock (the daemon: the control loop never waits on the disk).
    public var syncsOnAppend: Bool {
        get { samples.syncsOnAppend }
        set { for w in writers { w.syncsOnAppend = newValue } }
    }

    /// Writes and syncs each ring whose sync interval has passed (`nowNs`: the caller's monotonic clock).
    public func flushDue(nowNs: UInt64) throws(RingError) {
        for w in writers { try w.flushIfDue(monoNs: nowNs) }
    }

    /// The earliest time a ring is due for `flushDue` (monotonic ns); nil while nothing is queued.
    public var flushDueNs: UInt64? { writers.compactMap(\.flushDueNs).min() }

    /// Rings whose size changed and whose records were moved into the new size (reported at start).
    public var resized: [String] { [samples.ring.resized, halfHours.ring.resized, events.ring.resized, trips.ring.resized, minutes.ring.resized].compactMap { $0 } }

    /// Files moved aside because their header was corrupt (reported at start).
    public var movedAside: [String] { [samples.ring.movedAside, halfHours.ring.movedAside, events.ring.movedAside, trips.ring.movedAside, minutes.ring.movedAside].compactMap { $0 } }

    public func record(_ s: SampleRecord, wallNs: UInt64, monoNs: UInt64) throws(RingError) {
        try samples.append(s.encode(), wallNs: wallNs, monoNs: monoNs)
    }

    /// A closed half hour, written and synced at once: these are few and kept for years.
    public func record(_ h: HalfHourRecord, wallNs: UInt64, monoNs: UInt64) throws(RingError) {
        try halfHours.append(h.encode(), wallNs: wallNs, monoNs: monoNs)
        try halfHours.flush(monoNs: monoNs)
    }

    public func event(_ e: EventRecord, wallNs: UInt64, monoNs: UInt64) throws(RingError) {
        try events.append(e.encode(max: events.ring.payloadCapacity), wallNs: wallNs, monoNs: monoNs)
    }

    /// A trip record, written and synced at once. Returns its number (the head's sequence number).
    @discardableResult
    public func record(_ t: TripRecord, wallNs: UInt64, monoNs: UInt64) throws(RingError) -> UInt64 {
        let head = trips.nextSeq
        for p in t.encode(headSeq: head, payloadCapacity: trips.ring.payloadCapacity) { try trips.append(p, wallNs: wallNs, monoNs: monoNs) }
        try trips.flush(monoNs: monoNs)
        return head
    }

    /// The names the samples from the next one on carry (at start and after a reload that changed them):
    /// kept in the samples ring's header, so exports name their columns.
    public func noteLayout(_ layout: SampleLayout) throws(RingError) {
        try samples.ring.noteLayout(layout, fromSeq: samples.nextSeq)
    }

    /// A closed minute (synced with the next sync of the samples).
    public func record(_ m: MinuteRecord, wallNs: UInt64, monoNs: UInt64) throws(RingError) {
        try minutes.append(m.encode(), wallNs: wallNs, monoNs: monoNs)
    }

    public func flush(monoNs: UInt64) throws(RingError) {
        try samples.flush(monoNs: monoNs)
        try minutes.flush(monoNs: monoNs)
        try trips.flush(monoNs: monoNs)
        try halfHours.flush(monoNs: monoNs)
        try events.flush(monoNs: monoNs)
    }
}

/// Opens a ring for reading only, whatever its size: what `lmc log` and the DNO's SSH account use.
public struct RingReader {
    public let path: String
    public let recordSize: Int
    public let capacity: Int
    public let ringName: String
    public let boxID: String
    let fd: Int32

    public init(path: String) throws(RingError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RingError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        var h = [UInt8](repeating: 0, count: RingFile.headerSize)
        guard pread(fd, &h, RingFile.headerSize, 0) >= 124, Array(h[0..<8]) == RingFile.magic,
              RingFile.get32(h, 120) == CRC32C.checksum(Array(h[0..<120])) else {
            closeFD(fd)
            throw RingError(path: path, message: "not a ring log, or its header is corrupt")
        }
        self.path = path
        // The header is checked by its CRC, but a crafted file has a valid CRC too: its geometry is
        // believed only within what the file really holds (no loop over 2^63 slots, no huge buffers).
        let size = Int(RingFile.get32(h, 12)), slots = RingFile.get64(h, 16)
        var st = stat()
        let fileSize = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        guard size >= RingFile.overhead + 8, size <= RingFile.maxRecordSize, slots >= 2,
              slots <= UInt64(max(0, fileSize - RingFile.headerSize) / size) else {
            closeFD(fd)
            throw RingError(path: path, message: "header claims \(slots) slots of \(size) bytes, more than the file's \(fileSize) bytes hold")
        }
        recordSize = size
        capacity = Int(slots)
        ringName = String(decoding: h[24..<56].prefix { $0 != 0 }, as: UTF8.self)
        boxID = String(decoding: h[56..<120].prefix { $0 != 0 }, as: UTF8.self)
        let n = RingFile.readNote(h)
        note = n?.text
        firstSeq = n?.firstSeq ?? 0
    }

    /// The oldest sequence number this file ever held (after a resize: the oldest moved into it).
    private let firstSeq: UInt64

    /// The header's note: what a resize did ("resized … from … to …: N of M records moved").
    public let note: String?

    public func release() { closeFD(fd) }

    /// Streams every valid record, oldest first, in constant memory; returns the count of skipped slots.
    @discardableResult
    public func forEach(_ body: (RingRecord) throws -> Void) rethrows -> (records: Int, skipped: Int) {
        var window = SlotWindow(fd: fd, recordSize: recordSize, capacity: capacity)
        // Pass 1: the head (highest valid sequence).
        var head: UInt64 = 0
        for slot in 0..<capacity {
            guard let seq = window.withSlot(slot, { RingFile.validSeq($0, slot: slot, capacity: capacity, recordSize: recordSize) }) else { continue }
            if let seq { head = max(head, seq) }
        }
        guard head > 0 else { return (0, 0) }
        var count = 0, skipped = 0
        var seq = max(firstSeq, head > UInt64(capacity) ? head - UInt64(capacity) + 1 : 1)
        while seq <= head {
            let slot = Int((seq - 1) % UInt64(capacity))
            let rec: RingRecord? = window.withSlot(slot) { r in
                guard RingFile.validSeq(r, slot: slot, capacity: capacity, recordSize: recordSize) == seq else { return nil }
                let len = Int(RingFile.get16(r, 24))
                let p = r.startIndex + 26
                return RingRecord(seq: seq, wallNs: RingFile.get64(r, 8), monoNs: RingFile.get64(r, 16), payload: Array(r[p..<(p + len)]))
            } ?? nil
            if let rec {
                try body(rec)
                count += 1
            } else {
                skipped += 1
            }
            seq += 1
        }
        return (count, skipped)
    }
}

/// Reads slots through a 64 KiB window: one pread per window instead of one per record.
struct SlotWindow {
    let fd: Int32
    let recordSize: Int
    let capacity: Int
    let slotsPerWindow: Int
    var buffer: [UInt8]
    var first = -1
    var count = 0

    init(fd: Int32, recordSize: Int, capacity: Int) {
        self.fd = fd
        self.recordSize = recordSize
        self.capacity = capacity
        slotsPerWindow = max(1, 65_536 / recordSize)
        buffer = [UInt8](repeating: 0, count: slotsPerWindow * recordSize)
    }

    /// Calls `body` with the slot's bytes; nil when the file is shorter than the slot.
    mutating func withSlot<T>(_ slot: Int, _ body: (ArraySlice<UInt8>) -> T) -> T? {
        if slot < first || slot >= first + count {
            first = slot - slot % slotsPerWindow
            let want = min(slotsPerWindow, capacity - first) * recordSize
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(RingFile.headerSize + first * recordSize)) }
            count = max(0, got) / recordSize
        }
        guard slot < first + count else { return nil }
        let start = (slot - first) * recordSize
        return body(buffer[start..<(start + recordSize)])
    }
}

extension EventRecord {
    public static func decodePayload(_ b: [UInt8]) -> EventRecord? { decode(b) }
}

private func closeFD(_ fd: Int32) { _ = close(fd) }

