/// The DNP3 data link layer (IEEE 1815-2012 clause 9): frames of a 10-byte header (0x05 0x64, length,
/// control, destination, source, CRC) and up to 250 bytes of user data in blocks of 16, each block
/// followed by its CRC. Pure: bytes in, values or errors out.

/// The DNP3 CRC-16: polynomial 0x3D65 (reflected 0xA6BC), initial 0, complemented, sent low byte first.
public enum DNP3CRC {
    static let table: [UInt16] = (0..<256).map { i -> UInt16 in
        var c = UInt16(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xA6BC : c >> 1 }
        return c
    }

    public static func compute<C: Collection>(_ bytes: C) -> UInt16 where C.Element == UInt8 {
        var crc: UInt16 = 0
        for b in bytes { crc = (crc >> 8) ^ table[Int((crc ^ UInt16(b)) & 0xFF)] }
        return ~crc
    }
}

public enum LinkFunction: UInt8, Sendable, Equatable {
    // Primary (PRM = 1), from the initiating station.
    case resetLinkStates = 0
    case testLinkStates = 2
    case confirmedUserData = 3
    case unconfirmedUserData = 4
    case requestLinkStatus = 9
}

public enum LinkSecondaryFunction: UInt8, Sendable {
    case ack = 0, nack = 1, linkStatus = 11, notSupported = 15
}

public struct LinkFrame: Sendable, Equatable {
    /// DIR: set on frames from the master.
    public var fromMaster: Bool
    /// PRM: set on frames from the initiating station.
    public var primary: Bool
    public var fcb: Bool
    public var fcv: Bool
    /// The 4-bit function code (its meaning depends on `primary`).
    public var function: UInt8
    public var destination: UInt16
    public var source: UInt16
    public var userData: [UInt8]

    public static let maxUserData = 250

    public init(fromMaster: Bool, primary: Bool, fcb: Bool = false, fcv: Bool = false, function: UInt8,
                destination: UInt16, source: UInt16, userData: [UInt8] = []) {
        self.fromMaster = fromMaster; self.primary = primary; self.fcb = fcb; self.fcv = fcv
        self.function = function; self.destination = destination; self.source = source; self.userData = userData
    }

    public var control: UInt8 {
        (fromMaster ? 0x80 : 0) | (primary ? 0x40 : 0) | (fcb ? 0x20 : 0) | (fcv ? 0x10 : 0) | (function & 0x0F)
    }

    /// The frame on the wire, CRCs included. `userData` beyond 250 bytes is a programming error.
    public func encode() -> [UInt8] {
        precondition(userData.count <= Self.maxUserData, "link frame user data over 250 bytes")
        var header: [UInt8] = [0x05, 0x64, UInt8(5 + userData.count), control,
                               UInt8(destination & 0xFF), UInt8(destination >> 8), UInt8(source & 0xFF), UInt8(source >> 8)]
        let hc = DNP3CRC.compute(header)
        header += [UInt8(hc & 0xFF), UInt8(hc >> 8)]
        var i = 0
        while i < userData.count {
            let block = userData[i..<min(i + 16, userData.count)]
            header += block
            let c = DNP3CRC.compute(block)
            header += [UInt8(c & 0xFF), UInt8(c >> 8)]
            i += 16
        }
        return header
    }

    /// The whole frame's size on the wire for a length byte (5…255).
    public static func wireSize(lengthByte: UInt8) -> Int {
        let data = Int(lengthByte) - 5
        return 10 + data + (data + 15) / 16 * 2
    }
}

public enum LinkError: Error, Equatable, Sendable, CustomStringConvertible {
    case badStart(UInt8, UInt8)
    case badLength(UInt8)
    case headerCRC(expected: UInt16, got: UInt16)
    case blockCRC(block: Int, expected: UInt16, got: UInt16)
    case truncated(need: Int, have: Int)

    public var description: String {
        switch self {
        case .badStart(let a, let b): return "link frame does not start with 05 64 (got \(hex(a)) \(hex(b)))"
        case .badLength(let l): return "link length \(l) is below 5"
        case .headerCRC(let e, let g): return "link header CRC \(hex16(g)) is not \(hex16(e))"
        case .blockCRC(let b, let e, let g): return "link data block \(b) CRC \(hex16(g)) is not \(hex16(e))"
        case .truncated(let n, let h): return "link frame needs \(n) bytes, has \(h)"
        }
    }
}

func hex(_ b: UInt8) -> String { let s = String(b, radix: 16, uppercase: true); return s.count == 1 ? "0" + s : s }
func hex16(_ v: UInt16) -> String { hex(UInt8(v >> 8)) + hex(UInt8(v & 0xFF)) }

extension LinkFrame {
    /// Decodes one complete frame (exactly `wireSize` bytes, or more: the rest is ignored).
    public static func decode(_ b: [UInt8]) throws(LinkError) -> LinkFrame {
        guard b.count >= 10 else { throw .truncated(need: 10, have: b.count) }
        guard b[0] == 0x05, b[1] == 0x64 else { throw .badStart(b[0], b[1]) }
        guard b[2] >= 5 else { throw .badLength(b[2]) }
        let hc = DNP3CRC.compute(b[0..<8])
        let got = UInt16(b[8]) | UInt16(b[9]) << 8
        guard hc == got else { throw .headerCRC(expected: hc, got: got) }
        let size = wireSize(lengthByte: b[2])
        guard b.count >= size else { throw .truncated(need: size, have: b.count) }
        var data: [UInt8] = []
        data.reserveCapacity(Int(b[2]) - 5)
        var remaining = Int(b[2]) - 5
        var p = 10
        var block = 0
        while remaining > 0 {
            let n = min(16, remaining)
            let chunk = b[p..<p + n]
            let c = DNP3CRC.compute(chunk)
            let g = UInt16(b[p + n]) | UInt16(b[p + n + 1]) << 8
            guard c == g else { throw .blockCRC(block: block, expected: c, got: g) }
            data += chunk
            p += n + 2
            remaining -= n
            block += 1
        }
        let control = b[3]
        return LinkFrame(fromMaster: control & 0x80 != 0, primary: control & 0x40 != 0, fcb: control & 0x20 != 0,
                         fcv: control & 0x10 != 0, function: control & 0x0F,
                         destination: UInt16(b[4]) | UInt16(b[5]) << 8, source: UInt16(b[6]) | UInt16(b[7]) << 8,
                         userData: data)
    }
}

/// Splits a byte stream into link frames: resynchronises on 05 64 after garbage, a bad header CRC
/// (drops one byte and searches again) or a bad block CRC (drops the frame). Bounded memory.
public struct LinkStreamParser: Sendable {
    private var buffer: [UInt8] = []
    public private(set) var errors: [LinkError] = []
    /// Every error so far (`errors` keeps only the last 16).
    public private(set) var errorCount = 0
    public init() {}

    /// Appends bytes; returns the frames completed, in order. Errors are kept in `errors` (the last 16).
    public mutating func feed<C: Collection>(_ bytes: C) -> [LinkFrame] where C.Element == UInt8 {
        buffer += bytes
        var frames: [LinkFrame] = []
        while true {
            // Find the start: drop everything before the first 05 64 (keep a trailing 05).
            var s = 0
            while s + 1 < buffer.count, !(buffer[s] == 0x05 && buffer[s + 1] == 0x64) { s += 1 }
            if s + 1 >= buffer.count {
                buffer = buffer.last == 0x05 ? [0x05] : []
                break
            }
            if s > 0 { buffer.removeFirst(s) }
            guard buffer.count >= 10 else { break }
            let header = Array(buffer[0..<10])
            do throws(LinkError) {
                _ = try LinkFrame.decode(header) // the header's checks; a longer frame is "truncated" here
            } catch {
                if case .truncated = error {} else { note(error); buffer.removeFirst(1); continue }
            }
            let size = LinkFrame.wireSize(lengthByte: buffer[2])
            guard buffer.count >= size else { break }
            let frame = Array(buffer[0..<size])
            buffer.removeFirst(size)
            do throws(LinkError) { frames.append(try LinkFrame.decode(frame)) } catch { note(error) }
        }
        return frames
    }

    private mutating func note(_ e: LinkError) {
        errorCount += 1
        errors.append(e)
        if errors.count > 16 { errors.removeFirst(errors.count - 16) }
    }
}
