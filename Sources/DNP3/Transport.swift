/// The DNP3 transport function (IEEE 1815-2012 clause 8): one header byte (FIN 0x80, FIR 0x40, a 6-bit
/// sequence) in front of up to 249 bytes of an application fragment. Pure.
public enum Transport {
    public static let maxSegmentPayload = 249

    /// Splits a fragment into link user data, the first segment with sequence `seq`. Returns the
    /// segments and the sequence number to use next.
    public static func segment(_ fragment: [UInt8], seq: UInt8) -> (segments: [[UInt8]], nextSeq: UInt8) {
        var out: [[UInt8]] = []
        var s = seq & 0x3F
        var i = 0
        repeat {
            let end = min(i + maxSegmentPayload, fragment.count)
            let header = (i == 0 ? 0x40 : 0) | (end == fragment.count ? 0x80 : 0) | s
            out.append([header] + fragment[i..<end])
            s = (s + 1) & 0x3F
            i = end
        } while i < fragment.count
        return (out, s)
    }
}

/// Reassembles segments into fragments. A FIR segment starts a fragment (discarding one in progress);
/// a segment out of sequence, without FIR and nothing in progress, or growing the fragment past
/// `maxFragment` is discarded with the fragment in progress (the master retries on its timeout).
public struct TransportReassembler: Sendable {
    public enum Drop: Sendable, Equatable { case empty, noFirst, outOfSequence(expected: UInt8, got: UInt8), oversize(Int) }
    public let maxFragment: Int
    private var partial: [UInt8]? = nil
    private var expectedSeq: UInt8 = 0
    public private(set) var lastDrop: Drop? = nil
    public private(set) var drops = 0

    public init(maxFragment: Int = 2048) { self.maxFragment = maxFragment }

    /// One segment (a link frame's user data). Returns the fragment when this segment completes one.
    public mutating func receive(_ segment: [UInt8]) -> [UInt8]? {
        guard let h = segment.first else { drop(.empty); return nil }
        let fir = h & 0x40 != 0, fin = h & 0x80 != 0, seq = h & 0x3F
        if fir {
            partial = []
        } else {
            guard partial != nil else { drop(.noFirst); return nil }
            guard seq == expectedSeq else { drop(.outOfSequence(expected: expectedSeq, got: seq)); partial = nil; return nil }
        }
        partial! += segment.dropFirst()
        guard partial!.count <= maxFragment else { drop(.oversize(partial!.count)); partial = nil; return nil }
        expectedSeq = (seq + 1) & 0x3F
        if fin {
            defer { partial = nil }
            return partial
        }
        return nil
    }

    private mutating func drop(_ d: Drop) { lastDrop = d; drops += 1 }
}
