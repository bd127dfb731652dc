#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the values of a sample are: the names of its measurement points (with their unit, `trafo_va`) and
/// sites, as CSV columns carry them. The samples ring keeps its layouts in its header (below), so a
/// sample read back needs no config of its time.
public struct SampleLayout: Sendable, Equatable {
    public var mps: [String]
    public var sites: [String]
    public init(mps: [String], sites: [String]) { self.mps = mps; self.sites = sites }

    /// Where in a ring's header the layouts live: after the note, in the header's last 2 KiB. Written
    /// without touching the first sector (magic, geometry, CRC), so a torn write cannot cost the ring.
    static let offset = 2048, size = 2048
    public static let maxEntries = 7

    /// The layouts block: count (u8), then per entry the first sequence number it applies to (u64), MP
    /// count and names, site count and names (u8 length + UTF-8 each); CRC-32C of all that.
    static func encode(_ entries: [(fromSeq: UInt64, layout: SampleLayout)]) -> [UInt8] {
        var b = Bytes()
        b.u8(UInt8(entries.count))
        for e in entries {
            b.u64(e.fromSeq)
            b.u8(UInt8(e.layout.mps.count)); for n in e.layout.mps { b.str(n, max: 32) }
            b.u8(UInt8(e.layout.sites.count)); for n in e.layout.sites { b.str(n, max: 32) }
        }
        b.u32(CRC32C.checksum(b.bytes))
        return b.bytes
    }

    static func decode(_ block: ArraySlice<UInt8>) -> [(fromSeq: UInt64, layout: SampleLayout)] {
        var r = Reader(Array(block))
        guard let n = r.u8(), n > 0, n <= maxEntries else { return [] }
        var out: [(UInt64, SampleLayout)] = []
        for _ in 0..<n {
            guard let from = r.u64(), let nmp = r.u8() else { return [] }
            var mps: [String] = []
            for _ in 0..<nmp { guard let s = r.str() else { return [] }; mps.append(s) }
            guard let nsite = r.u8() else { return [] }
            var sites: [String] = []
            for _ in 0..<nsite { guard let s = r.str() else { return [] }; sites.append(s) }
            out.append((from, SampleLayout(mps: mps, sites: sites)))
        }
        let end = r.i
        guard let crc = r.u32(), crc == CRC32C.checksum(Array(block.prefix(end))) else { return [] }
        return out
    }

    /// The layout of sample `seq`: the entry with the greatest first sequence number not after it.
    public static func at(_ seq: UInt64, in entries: [(fromSeq: UInt64, layout: SampleLayout)]) -> SampleLayout? {
        entries.last { $0.fromSeq <= seq }?.layout
    }
}

extension RingFile {
    /// The layouts in this ring's header, oldest first.
    public func layouts() -> [(fromSeq: UInt64, layout: SampleLayout)] {
        var block = [UInt8](repeating: 0, count: SampleLayout.size)
        guard pread(fd, &block, block.count, off_t(SampleLayout.offset)) == block.count else { return [] }
        return SampleLayout.decode(block[...])
    }

    /// Records that samples from `fromSeq` on have this layout (unless the newest entry says so already),
    /// keeping the newest entries that fit; synced.
    public func noteLayout(_ layout: SampleLayout, fromSeq: UInt64) throws(RingError) {
        var entries = layouts()
        if entries.last?.layout == layout { return }
        entries.append((fromSeq, layout))
        var block = SampleLayout.encode(Array(entries.suffix(SampleLayout.maxEntries)))
        var keep = SampleLayout.maxEntries
        while block.count > SampleLayout.size && keep > 1 {
            keep -= 1
            block = SampleLayout.encode(Array(entries.suffix(keep)))
        }
        guard block.count <= SampleLayout.size else { return }
        guard pwrite(fd, block, block.count, off_t(SampleLayout.offset)) == block.count, fdatasync(fd) == 0 else {
            throw RingError(path: path, message: "cannot write the layout: \(String(cString: strerror(errno)))")
        }
    }
}

extension RingReader {
    /// The layouts in the ring's header, oldest first (none in a ring written before 0.2).
    public func layouts() -> [(fromSeq: UInt64, layout: SampleLayout)] {
        var block = [UInt8](repeating: 0, count: SampleLayout.size)
        guard pread(fd, &block, block.count, off_t(SampleLayout.offset)) == block.count else { return [] }
        return SampleLayout.decode(block[...])
    }
}
