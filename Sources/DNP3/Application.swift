/// The DNP3 application layer (IEEE 1815-2012 clause 4): fragments of an application control byte, a
/// function code, on responses two IIN bytes, then object headers. Pure: parsing and building only.

public enum FunctionCode: UInt8, Sendable, Equatable, CaseIterable {
    case confirm = 0, read = 1, write = 2, select = 3, operate = 4, directOperate = 5, directOperateNoResponse = 6
    case coldRestart = 13, warmRestart = 14
    case enableUnsolicited = 20, disableUnsolicited = 21
    case delayMeasure = 23, recordCurrentTime = 24
    case response = 129, unsolicitedResponse = 130
}

/// The application control byte: FIR 0x80, FIN 0x40, CON 0x20, UNS 0x10, a 4-bit sequence.
public struct AppControl: Sendable, Equatable {
    public var fir: Bool, fin: Bool, con: Bool, uns: Bool, seq: UInt8
    public init(fir: Bool = true, fin: Bool = true, con: Bool = false, uns: Bool = false, seq: UInt8) {
        self.fir = fir; self.fin = fin; self.con = con; self.uns = uns; self.seq = seq & 0x0F
    }
    public init(_ b: UInt8) { self.init(fir: b & 0x80 != 0, fin: b & 0x40 != 0, con: b & 0x20 != 0, uns: b & 0x10 != 0, seq: b & 0x0F) }
    public var byte: UInt8 { (fir ? 0x80 : 0) | (fin ? 0x40 : 0) | (con ? 0x20 : 0) | (uns ? 0x10 : 0) | (seq & 0x0F) }
}

/// Internal indications: the low byte is IIN1, the high byte IIN2.
public struct IIN: OptionSet, Sendable, Equatable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let broadcast = IIN(rawValue: 1 << 0)
    public static let class1Events = IIN(rawValue: 1 << 1)
    public static let class2Events = IIN(rawValue: 1 << 2)
    public static let class3Events = IIN(rawValue: 1 << 3)
    public static let needTime = IIN(rawValue: 1 << 4)
    public static let localControl = IIN(rawValue: 1 << 5)
    public static let deviceTrouble = IIN(rawValue: 1 << 6)
    public static let deviceRestart = IIN(rawValue: 1 << 7)
    public static let noFunctionSupport = IIN(rawValue: 1 << 8)
    public static let objectUnknown = IIN(rawValue: 1 << 9)
    public static let parameterError = IIN(rawValue: 1 << 10)
    public static let eventBufferOverflow = IIN(rawValue: 1 << 11)
    public static let alreadyExecuting = IIN(rawValue: 1 << 12)
    public static let configCorrupt = IIN(rawValue: 1 << 13)
    public var iin1: UInt8 { UInt8(rawValue & 0xFF) }
    public var iin2: UInt8 { UInt8(rawValue >> 8) }
}

/// The range part of an object header.
public enum ObjectRange: Sendable, Equatable {
    /// Qualifiers 0x00/0x01: indices start...stop.
    case startStop(UInt32, UInt32)
    /// Qualifier 0x06: all objects of the type.
    case all
    /// Qualifiers 0x07/0x08 (no prefix) or 0x17/0x28/0x27 (index prefixed): `n` objects.
    case count(UInt32)
}

/// One object header of a request and its objects (index and raw bytes), when it carries any.
public struct ObjectHeader: Sendable, Equatable {
    public var group: UInt8, variation: UInt8, qualifier: UInt8
    public var range: ObjectRange
    /// Objects with their indices: from the prefix (0x17, 0x28), from start…stop, or 0…count-1.
    public var objects: [(index: UInt32, data: [UInt8])]
    /// The header's bytes as received (echoed by control responses).
    public var raw: [UInt8]

    public static func == (a: ObjectHeader, b: ObjectHeader) -> Bool {
        a.group == b.group && a.variation == b.variation && a.qualifier == b.qualifier && a.range == b.range && a.raw == b.raw
    }
}

public struct Request: Sendable, Equatable {
    public var control: AppControl
    /// The function code byte (not every value is a known ``FunctionCode``).
    public var functionByte: UInt8
    public var function: FunctionCode? { FunctionCode(rawValue: functionByte) }
    public var headers: [ObjectHeader]
    /// Set when a header could not be parsed; `headers` holds those before it.
    public var headerError: AppError?
}

public enum AppError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case unknownObject(group: UInt8, variation: UInt8)
    case unsupportedQualifier(UInt8)
    case truncatedHeader(offset: Int)
    case truncatedObjects(group: UInt8, variation: UInt8, offset: Int)
    case badRange(start: UInt32, stop: UInt32)

    public var description: String {
        switch self {
        case .tooShort(let n): return "application fragment of \(n) bytes is shorter than its header"
        case .unknownObject(let g, let v): return "object g\(g)v\(v) is not supported"
        case .unsupportedQualifier(let q): return "qualifier 0x\(hex(q)) is not supported"
        case .truncatedHeader(let o): return "object header at byte \(o) is cut short"
        case .truncatedObjects(let g, let v, let o): return "objects g\(g)v\(v) at byte \(o) are cut short"
        case .badRange(let a, let b): return "range \(a)…\(b) has its stop before its start"
        }
    }
}

/// Object sizes in requests that carry data (writes and controls); 0: no data in a request.
enum ObjectSize {
    /// Bytes per object of g/v in a request of `function`; nil: not known (object unknown).
    static func request(group g: UInt8, variation v: UInt8, function: FunctionCode?) -> Int? {
        switch function {
        case .read?:
            switch g {
            case 1, 2, 20, 22, 30, 32, 40, 60, 50, 80, 12, 41, 10: return 0
            default: return nil
            }
        default:
            switch (g, v) {
            case (50, 1), (50, 3): return 6
            case (52, 2), (52, 1): return 2
            case (41, 1): return 5
            case (41, 2): return 3
            case (41, 3): return 5
            case (41, 4): return 9
            case (12, 1): return 11
            case (60, _): return 0
            case (80, 1): return -1 // packed bits
            default: return nil
            }
        }
    }
}

extension Request {
    /// Parses a request fragment. Header errors do not throw: the request keeps the headers before
    /// the bad one and the error, so the outstation can answer with the right IIN.
    public static func parse(_ f: [UInt8]) throws(AppError) -> Request {
        guard f.count >= 2 else { throw .tooShort(f.count) }
        var r = Request(control: AppControl(f[0]), functionByte: f[1], headers: [], headerError: nil)
        var p = 2
        func le(_ at: Int, _ n: Int) -> UInt32 { var v: UInt32 = 0; for k in 0..<n { v |= UInt32(f[at + k]) << (8 * k) }; return v }
        while p < f.count {
            let start = p
            guard p + 3 <= f.count else { r.headerError = .truncatedHeader(offset: p); break }
            let g = f[p], v = f[p + 1], q = f[p + 2]
            p += 3
            let prefix: Int, rangeSize: Int
            switch q {
            case 0x00: (prefix, rangeSize) = (0, 1)
            case 0x01: (prefix, rangeSize) = (0, 2)
            case 0x06: (prefix, rangeSize) = (0, 0)
            case 0x07: (prefix, rangeSize) = (0, 1)
            case 0x08: (prefix, rangeSize) = (0, 2)
            case 0x17: (prefix, rangeSize) = (1, 1)
            case 0x27: (prefix, rangeSize) = (2, 1)
            case 0x28: (prefix, rangeSize) = (2, 2)
            default: r.headerError = .unsupportedQualifier(q); return r
            }
            let range: ObjectRange
            var indices: [UInt32]
            let isStartStop = q == 0x00 || q == 0x01
            if q == 0x06 {
                range = .all; indices = []
            } else if isStartStop {
                guard p + 2 * rangeSize <= f.count else { r.headerError = .truncatedHeader(offset: start); return r }
                let a = le(p, rangeSize), b = le(p + rangeSize, rangeSize)
                p += 2 * rangeSize
                guard b >= a else { r.headerError = .badRange(start: a, stop: b); return r }
                range = .startStop(a, b)
                indices = b - a > 4096 ? [] : Array(a...b)
            } else {
                guard p + rangeSize <= f.count else { r.headerError = .truncatedHeader(offset: start); return r }
                let n = le(p, rangeSize)
                p += rangeSize
                range = .count(n)
                indices = prefix == 0 && n <= 4096 ? Array(0..<n) : []
            }
            guard let size = ObjectSize.request(group: g, variation: v, function: r.function) else {
                r.headerError = .unknownObject(group: g, variation: v); return r
            }
            var objects: [(index: UInt32, data: [UInt8])] = []
            let n: Int
            switch range {
            case .all: n = 0
            case .startStop(let a, let b): n = Int(b - a) + 1
            case .count(let c): n = Int(c)
            }
            if size == -1 {
                // Packed bits (g80v1): ceil(n/8) bytes, one object per bit.
                let bytes = (n + 7) / 8
                guard p + bytes <= f.count else { r.headerError = .truncatedObjects(group: g, variation: v, offset: p); return r }
                for k in 0..<n where k < indices.count {
                    objects.append((indices[k], [(f[p + k / 8] >> (k % 8)) & 1]))
                }
                p += bytes
            } else if size > 0 || prefix > 0 {
                // Each object: an index prefix, then its bytes.
                guard n * (prefix + size) <= f.count - p else { r.headerError = .truncatedObjects(group: g, variation: v, offset: p); return r }
                for k in 0..<n {
                    let index = prefix > 0 ? le(p, prefix) : (k < indices.count ? indices[k] : UInt32(k))
                    p += prefix
                    objects.append((index, Array(f[p..<p + size])))
                    p += size
                }
            }
            r.headers.append(ObjectHeader(group: g, variation: v, qualifier: q, range: range, objects: objects, raw: Array(f[start..<p])))
        }
        return r
    }
}

/// Builds a response fragment: control, function, IIN (filled in by ``finish(iin:)``), objects.
public struct FragmentWriter: Sendable {
    public private(set) var bytes: [UInt8]
    public let limit: Int

    public init(control: AppControl, function: FunctionCode = .response, limit: Int = 2048) {
        bytes = [control.byte, function.rawValue, 0, 0]
        self.limit = limit
    }

    public var remaining: Int { limit - bytes.count }
    public var isEmpty: Bool { bytes.count == 4 }

    public mutating func append(_ b: [UInt8]) { bytes += b }
    public mutating func setControl(_ c: AppControl) { bytes[0] = c.byte }

    /// A header with a start-stop range (qualifier 0x00 when stop ≤ 255, else 0x01), then its objects.
    public mutating func range(group: UInt8, variation: UInt8, start: Int, objects: [[UInt8]]) {
        let stop = start + objects.count - 1
        if stop <= 255 {
            bytes += [group, variation, 0x00, UInt8(start), UInt8(stop)]
        } else {
            bytes += [group, variation, 0x01] + u16(start) + u16(stop)
        }
        for o in objects { bytes += o }
    }

    /// A header with qualifier 0x28: a 2-byte count, each object prefixed with its 2-byte index.
    public mutating func indexed(group: UInt8, variation: UInt8, objects: [(index: Int, data: [UInt8])]) {
        bytes += [group, variation, 0x28] + u16(objects.count)
        for o in objects { bytes += u16(o.index) + o.data }
    }

    /// A header with qualifier 0x07 and one object (g52 delays, g50 times).
    public mutating func single(group: UInt8, variation: UInt8, data: [UInt8]) {
        bytes += [group, variation, 0x07, 1] + data
    }

    public func finish(iin: IIN) -> [UInt8] {
        var b = bytes
        b[2] = iin.iin1; b[3] = iin.iin2
        return b
    }
}

func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }

/// DNP3 time: milliseconds since 1970-01-01 UTC, 48 bits, little-endian.
public enum DNP3Time {
    public static func encode(_ ms: UInt64) -> [UInt8] { (0..<6).map { UInt8((ms >> (8 * UInt64($0))) & 0xFF) } }
    public static func decode(_ b: [UInt8]) -> UInt64 { b.prefix(6).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
}
