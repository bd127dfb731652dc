/// Trip records (docs/ringlog.md, "trips"): for every trip the breaker was commanded to make, the control
/// cycle's samples from 60 s before it to 60 s after, the decision and its reason, and the breaker's answer.
///
/// One trip is written as consecutive records of the trips ring: a head record (what, why, the answer, the
/// names of the points and sites) and then as many sample records as its samples need. A torn or
/// overwritten sample record loses only its own samples; the head says how many there should be.
public struct TripRecord: Sendable, Equatable {
    public struct Sample: Sendable, Equatable {
        /// Milliseconds from the trip command (negative: before it), on the monotonic clock.
        public var offsetMs: Int32
        public var sample: SampleRecord
        public init(offsetMs: Int32, sample: SampleRecord) { self.offsetMs = offsetMs; self.sample = sample }
    }
    public var site: String
    /// What decided the trip (non-response, last resort, a test trip by whom).
    public var reason: String
    /// The breaker's answer in the cycles after: auxiliary contact confirmed open, TRIP_FAILED,
    /// BREAKER_UNAVAILABLE, trips commanded again; "no answer" when none came.
    public var answer: String
    /// When the trip was commanded: wall clock (ns since 1970) and monotonic clock.
    public var wallNs: UInt64
    public var monoNs: UInt64
    /// Whether the wall clock was synchronised when the trip was commanded.
    public var clockSynchronised: Bool
    /// The whole window after the trip was collected (false: cut short by a stop or a reload).
    public var complete: Bool
    /// The names of the measurement points and sites, in the order of each sample's values.
    public var mpNames: [String]
    public var siteNames: [String]
    public var samples: [Sample]

    public init(site: String, reason: String, answer: String, wallNs: UInt64, monoNs: UInt64, clockSynchronised: Bool, complete: Bool,
                mpNames: [String], siteNames: [String], samples: [Sample]) {
        self.site = site; self.reason = reason; self.answer = answer; self.wallNs = wallNs; self.monoNs = monoNs
        self.clockSynchronised = clockSynchronised; self.complete = complete; self.mpNames = mpNames; self.siteNames = siteNames
        self.samples = samples
    }

    static let headKind: UInt8 = 0x54      // "T"
    static let samplesKind: UInt8 = 0x53   // "S"
    static let version: UInt8 = 1

    /// The record's payloads: the head, then its samples in order. `headSeq` is the sequence number the
    /// head gets in the ring (the sample records name it); `payloadCapacity` what one record holds.
    public func encode(headSeq: UInt64, payloadCapacity: Int) -> [[UInt8]] {
        precondition(payloadCapacity >= 512)
        var chunks: [[UInt8]] = []
        var current = Bytes()
        func startChunk() {
            current = Bytes()
            current.u8(Self.samplesKind); current.u64(headSeq); current.u16(UInt16(chunks.count)); current.u16(0)
        }
        startChunk()
        var inChunk = 0
        for s in samples {
            let bytes = s.sample.encode()
            if current.bytes.count + 5 + bytes.count > payloadCapacity {
                current.set16(11, UInt16(inChunk))
                chunks.append(current.bytes)
                startChunk()
                inChunk = 0
            }
            current.i32(s.offsetMs); current.u8(UInt8(bytes.count)); current.bytes += bytes
            inChunk += 1
        }
        if inChunk > 0 {
            current.set16(11, UInt16(inChunk))
            chunks.append(current.bytes)
        }
        var h = Bytes()
        h.u8(Self.headKind); h.u8(Self.version)
        h.u64(wallNs); h.u64(monoNs)
        h.u8((clockSynchronised ? 1 : 0) | (complete ? 2 : 0))
        h.u16(UInt16(chunks.count)); h.u32(UInt32(samples.count))
        h.str(site, max: 64)
        // What is left for the texts once the names are in.
        let names = (mpNames + siteNames).reduce(2) { $0 + 1 + min(16, $1.utf8.count) }
        let room = max(64, (payloadCapacity - h.bytes.count - names - 4) / 2)
        h.str16(reason, max: room); h.str16(answer, max: room)
        h.u8(UInt8(min(mpNames.count, SampleRecord.maxMPs))); for n in mpNames.prefix(SampleRecord.maxMPs) { h.str(n, max: 16) }
        h.u8(UInt8(min(siteNames.count, SampleRecord.maxSites))); for n in siteNames.prefix(SampleRecord.maxSites) { h.str(n, max: 16) }
        return [h.bytes] + chunks
    }

    /// A head record's fields (its samples come from the records after it).
    public struct Head: Sendable, Equatable {
        public var record: TripRecord
        public var chunkCount: Int
        public var sampleCount: Int
    }

    public static func decodeHead(_ b: [UInt8]) -> Head? {
        var r = Reader(b)
        guard r.u8() == headKind, r.u8() == version, let wall = r.u64(), let mono = r.u64(), let flags = r.u8(),
              let chunks = r.u16(), let count = r.u32(), let site = r.str(), let reason = r.str16(), let answer = r.str16(),
              let nmp = r.u8() else { return nil }
        var mps: [String] = []
        for _ in 0..<nmp { guard let n = r.str() else { return nil }; mps.append(n) }
        guard let nsite = r.u8() else { return nil }
        var sites: [String] = []
        for _ in 0..<nsite { guard let n = r.str() else { return nil }; sites.append(n) }
        return Head(record: TripRecord(site: site, reason: reason, answer: answer, wallNs: wall, monoNs: mono, clockSynchronised: flags & 1 != 0,
                                       complete: flags & 2 != 0, mpNames: mps, siteNames: sites, samples: []),
                    chunkCount: Int(chunks), sampleCount: Int(count))
    }

    /// A sample record's head sequence number and index, without its samples.
    static func samplesHeader(_ b: [UInt8]) -> (UInt64, Int)? {
        var r = Reader(b)
        guard r.u8() == samplesKind, let head = r.u64(), let index = r.u16() else { return nil }
        return (head, Int(index))
    }

    /// A sample record: the head it belongs to, its index, its samples.
    public static func decodeSamples(_ b: [UInt8]) -> (headSeq: UInt64, index: Int, samples: [Sample])? {
        var r = Reader(b)
        guard r.u8() == samplesKind, let head = r.u64(), let index = r.u16(), let count = r.u16() else { return nil }
        var out: [Sample] = []
        for _ in 0..<count {
            guard let off = r.u32(), let len = r.u8(), let bytes = r.bytes(Int(len)), let s = SampleRecord.decode(bytes) else { return nil }
            out.append(Sample(offsetMs: Int32(bitPattern: off), sample: s))
        }
        return (head, Int(index), out)
    }
}

/// The trips ring read back: each trip whose head record is readable, with the samples that are.
public struct TripLog {
    public struct Entry: Sendable, Equatable {
        /// The head's sequence number: the trip's number in `lmc log trips` and `export --trip`.
        public var number: UInt64
        public var record: TripRecord
        /// Sample records the head announces that are not readable (torn, or overwritten by the ring).
        public var missingChunks: Int
    }

    /// Groups a ring's records (oldest first) into trips. With `samples: false` only the heads are kept
    /// (a listing), and missing chunks are still counted. Sample records whose head is gone are ignored.
    public static func read(_ records: some Sequence<RingRecord>, samples: Bool = true, only: UInt64? = nil) -> [Entry] {
        var entries: [Entry] = []
        var seen: [UInt64: Set<Int>] = [:]
        var index: [UInt64: Int] = [:]
        for rec in records {
            if let head = TripRecord.decodeHead(rec.payload) {
                if let only, only != rec.seq { continue }
                index[rec.seq] = entries.count
                seen[rec.seq] = []
                entries.append(Entry(number: rec.seq, record: head.record, missingChunks: head.chunkCount))
            } else if let (headSeq, chunk) = TripRecord.samplesHeader(rec.payload), let i = index[headSeq],
                      seen[headSeq]?.contains(chunk) == false {
                if samples {
                    // A record whose CRC checks but whose samples do not decode counts as missing.
                    guard let decoded = TripRecord.decodeSamples(rec.payload) else { continue }
                    entries[i].record.samples += decoded.samples
                }
                seen[headSeq]!.insert(chunk)
                entries[i].missingChunks -= 1
            }
        }
        return entries
    }

    /// Reads the ring file. A trip's records are consecutive, so memory holds one trip at a time
    /// (plus the listing).
    public static func read(_ reader: RingReader, samples: Bool = true, only: UInt64? = nil) -> (entries: [Entry], skipped: Int) {
        var group: [RingRecord] = []
        var entries: [Entry] = []
        let (_, skipped) = reader.forEach { rec in
            let isHead = TripRecord.decodeHead(rec.payload) != nil
            if isHead, !group.isEmpty {
                entries += read(group, samples: samples, only: only)
                group.removeAll()
            }
            // Without samples only the heads and the sample records' first bytes matter; keep them small.
            group.append(samples || isHead ? rec : RingRecord(seq: rec.seq, wallNs: rec.wallNs, monoNs: rec.monoNs,
                                                                payload: Array(rec.payload.prefix(13))))
        }
        entries += read(group, samples: samples, only: only)
        return (entries, skipped)
    }
}

/// What the shell reads of a breaker each cycle, as the trip recorder needs it.
public enum TripBreakerRead: Sendable, Equatable {
    case open, closed, notWired, unavailable(String)
}

/// Keeps the last 60 s of samples and collects a trip record for every trip commanded: the 60 s before,
/// the 60 s after, and what the breaker answered meanwhile. Pure: the shell feeds it each cycle and
/// writes what it returns.
public struct TripRecorder {
    public let beforeNs: UInt64
    public let afterNs: UInt64
    private var history: [(monoNs: UInt64, sample: SampleRecord)] = []
    private var historyStart = 0
    private struct Pending {
        var record: TripRecord
        var notes: [String] = []
        var noted: Set<String> = []
        var retries = 0
    }
    private var pending: [Pending] = []

    public init(beforeSeconds: Double = 60, afterSeconds: Double = 60) {
        beforeNs = UInt64(beforeSeconds * 1e9)
        afterNs = UInt64(afterSeconds * 1e9)
    }

    /// Trips still collecting their window after.
    public var collecting: Int { pending.count }

    /// One control cycle: its sample, the trips it commanded (site, reason), what each breaker read and
    /// which alarms stand (code, site). Returns the trip records whose window after has closed.
    public mutating func cycle(sample: SampleRecord, wallNs: UInt64, monoNs: UInt64, clockSynchronised: Bool,
                               trips: [(site: String, reason: String)], breakers: [String: TripBreakerRead],
                               alarms: [(code: String, site: String, message: String)],
                               mpNames: [String], siteNames: [String]) -> [TripRecord] {
        // The trips already collecting: this cycle's sample, and the breaker's answer so far.
        for i in pending.indices {
            let site = pending[i].record.site
            let at = Self.seconds(monoNs &- pending[i].record.monoNs)
            pending[i].record.samples.append(.init(offsetMs: Self.offsetMs(monoNs, pending[i].record.monoNs), sample: sample))
            func note(_ key: String, _ text: String) {
                if pending[i].noted.insert(key).inserted { pending[i].notes.append(text) }
            }
            switch breakers[site] {
            case .open: note("open", "auxiliary contact confirmed open at +\(at) s")
            case .notWired: note("notwired", "no auxiliary contact wired: not confirmed")
            case .unavailable(let why): note("unavailable", "BREAKER_UNAVAILABLE at +\(at) s: \(why)")
            case .closed, nil: break
            }
            for a in alarms where a.site == site && ["TRIP_FAILED", "BREAKER_UNAVAILABLE", "LOCKOUT"].contains(a.code) {
                note(a.code == "BREAKER_UNAVAILABLE" ? "unavailable" : a.code, "\(a.code) at +\(at) s: \(a.message)")
            }
            if trips.contains(where: { $0.site == site }) { pending[i].retries += 1 }
        }
        // New trips: the window before from the history, this cycle's sample at 0.
        for t in trips where !pending.contains(where: { $0.record.site == t.site }) {
            var samples: [TripRecord.Sample] = []
            for h in history[historyStart...] where h.monoNs &+ beforeNs >= monoNs && h.monoNs < monoNs {
                samples.append(.init(offsetMs: Self.offsetMs(h.monoNs, monoNs), sample: h.sample))
            }
            samples.append(.init(offsetMs: 0, sample: sample))
            pending.append(Pending(record: TripRecord(site: t.site, reason: t.reason, answer: "", wallNs: wallNs, monoNs: monoNs,
                                                      clockSynchronised: clockSynchronised, complete: false, mpNames: mpNames,
                                                      siteNames: siteNames, samples: samples)))
        }
        history.append((monoNs, sample))
        while historyStart < history.count && history[historyStart].monoNs &+ beforeNs < monoNs { historyStart += 1 }
        if historyStart > 1024 && historyStart * 2 > history.count {
            history.removeFirst(historyStart)
            historyStart = 0
        }
        var done: [TripRecord] = []
        pending.removeAll { p in
            guard monoNs &- p.record.monoNs >= afterNs else { return false }
            done.append(Self.close(p, complete: true, nowNs: monoNs))
            return true
        }
        return done
    }

    /// At a stop or a reload: every trip still collecting, with what there is.
    public mutating func finish(monoNs: UInt64) -> [TripRecord] {
        let done = pending.map { Self.close($0, complete: false, nowNs: monoNs) }
        pending = []
        return done
    }

    private static func close(_ p: Pending, complete: Bool, nowNs: UInt64) -> TripRecord {
        var r = p.record
        var notes = p.notes
        if p.retries > 0 { notes.append("trip commanded \(p.retries) more time\(p.retries == 1 ? "" : "s")") }
        if !p.noted.contains("open") && !p.noted.contains("notwired") {
            let span = seconds(nowNs &- r.monoNs)
            notes.insert(complete ? "not confirmed open within \(span) s" : "not confirmed open when the record was cut at +\(span) s", at: 0)
        }
        r.answer = notes.joined(separator: "; ")
        r.complete = complete
        return r
    }

    static func offsetMs(_ t: UInt64, _ ref: UInt64) -> Int32 {
        Int32(clamping: (Int64(bitPattern: t) &- Int64(bitPattern: ref)) / 1_000_000)
    }

    static func seconds(_ ns: UInt64) -> String { "\(Double(ns / 100_000_000) / 10)" }
}

extension Bytes {
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
    mutating func set16(_ at: Int, _ v: UInt16) { bytes[at] = UInt8(v & 0xFF); bytes[at + 1] = UInt8(v >> 8) }
    /// UTF-8 text with a u8 length, cut at `max` bytes on a character boundary.
    mutating func str(_ s: String, max: Int) {
        let b = Self.cut(s, Swift.min(max, 255))
        u8(UInt8(b.count)); bytes += b
    }
    /// The same with a u16 length.
    mutating func str16(_ s: String, max: Int) {
        let b = Self.cut(s, Swift.min(max, 65_535))
        u16(UInt16(b.count)); bytes += b
    }
    static func cut(_ s: String, _ max: Int) -> [UInt8] {
        var b = Array(s.utf8)
        guard b.count > max else { return b }
        b = Array(b.prefix(max))
        while let last = b.last, last & 0xC0 == 0x80 { b.removeLast() }
        if let last = b.last, last >= 0xC0 { b.removeLast() }
        return b
    }
}

extension Reader {
    mutating func u64() -> UInt64? {
        guard let lo = u32(), let hi = u32() else { return nil }
        return UInt64(lo) | UInt64(hi) << 32
    }
    mutating func bytes(_ n: Int) -> [UInt8]? {
        guard i + n <= b.count else { return nil }
        defer { i += n }
        return Array(b[i..<(i + n)])
    }
    mutating func str() -> String? { u8().flatMap { bytes(Int($0)) }.map { String(decoding: $0, as: UTF8.self) } }
    mutating func str16() -> String? { u16().flatMap { bytes(Int($0)) }.map { String(decoding: $0, as: UTF8.self) } }
}
