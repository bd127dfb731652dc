/// The server side of the Modbus application protocol as pure logic: a register image, the parsing of a
/// request PDU into what it addresses, and the reply PDU. No I/O and no locks here — the TCP server
/// (``ModbusServer``) frames bytes, asks its filter, and calls ``RegisterImage/respond(to:)`` while it
/// holds the image's lock for a few microseconds; it sends the reply later, outside any lock.
///
/// Limits and exception codes follow the Modbus Application Protocol v1.1b3 and what libmodbus 3.1
/// answers (`modbus_reply`): counts outside the function's limits or a byte count that does not match
/// are 0x03 (illegal data value); an address range outside the image is 0x02; any other function 0x01.
public struct RegisterImage: Sendable, Equatable {
    public var coilsStart: Int, coils: [UInt8]
    public var discreteStart: Int, discrete: [UInt8]
    public var holdingStart: Int, holding: [UInt16]
    public var inputStart: Int, input: [UInt16]

    public init(_ layout: ModbusServer.Layout) {
        coilsStart = Int(layout.coils.lowerBound); coils = Array(repeating: 0, count: layout.coils.count)
        discreteStart = Int(layout.discreteInputs.lowerBound); discrete = Array(repeating: 0, count: layout.discreteInputs.count)
        holdingStart = Int(layout.holding.lowerBound); holding = Array(repeating: 0, count: layout.holding.count)
        inputStart = Int(layout.input.lowerBound); input = Array(repeating: 0, count: layout.input.count)
    }

    /// What a request PDU (function code first) addresses, or the exception it must get without
    /// looking at the image (unknown function, a count outside the limits, a malformed length).
    public enum Parsed: Sendable, Equatable {
        /// `address…+count` is what is read or written; for function 23 (read/write multiple) the
        /// *written* range, with the read range in `read`.
        case request(function: UInt8, address: UInt16, count: Int, read: (address: UInt16, count: Int)?)
        case exception(function: UInt8, ModbusException)

        public static func == (a: Parsed, b: Parsed) -> Bool {
            switch (a, b) {
            case let (.request(f1, a1, c1, r1), .request(f2, a2, c2, r2)):
                f1 == f2 && a1 == a2 && c1 == c2 && r1?.address == r2?.address && r1?.count == r2?.count
            case let (.exception(f1, x1), .exception(f2, x2)): f1 == f2 && x1 == x2
            default: false
            }
        }
    }

    static let maxReadBits = 2000, maxWriteBits = 1968, maxReadRegisters = 125, maxWriteRegisters = 123, maxRWWriteRegisters = 121

    /// Parses a request PDU. Pure; total over any bytes (fuzzed: target `modbus-server`).
    public static func parse(_ pdu: ArraySlice<UInt8>) -> Parsed {
        guard let function = pdu.first else { return .exception(function: 0, .illegalFunction) }
        let p = Array(pdu)
        func u16(_ i: Int) -> Int { Int(p[i]) << 8 | Int(p[i + 1]) }
        func bad() -> Parsed { .exception(function: function, .illegalDataValue) }
        switch function {
        case 1, 2, 3, 4:
            guard p.count == 5 else { return bad() }
            let n = u16(3), limit = function <= 2 ? maxReadBits : maxReadRegisters
            guard (1...limit).contains(n) else { return bad() }
            return .request(function: function, address: UInt16(u16(1)), count: n, read: nil)
        case 5:
            guard p.count == 5, u16(3) == 0xFF00 || u16(3) == 0 else { return bad() }
            return .request(function: function, address: UInt16(u16(1)), count: 1, read: nil)
        case 6:
            guard p.count == 5 else { return bad() }
            return .request(function: function, address: UInt16(u16(1)), count: 1, read: nil)
        case 15:
            guard p.count >= 6 else { return bad() }
            let n = u16(3)
            guard (1...maxWriteBits).contains(n), Int(p[5]) == (n + 7) / 8, p.count == 6 + Int(p[5]) else { return bad() }
            return .request(function: function, address: UInt16(u16(1)), count: n, read: nil)
        case 16:
            guard p.count >= 6 else { return bad() }
            let n = u16(3)
            guard (1...maxWriteRegisters).contains(n), Int(p[5]) == 2 * n, p.count == 6 + 2 * n else { return bad() }
            return .request(function: function, address: UInt16(u16(1)), count: n, read: nil)
        case 22:
            guard p.count == 7 else { return bad() }
            return .request(function: function, address: UInt16(u16(1)), count: 1, read: nil)
        case 23:
            guard p.count >= 10 else { return bad() }
            let nr = u16(3), nw = u16(7)
            guard (1...maxReadRegisters).contains(nr), (1...maxRWWriteRegisters).contains(nw),
                  Int(p[9]) == 2 * nw, p.count == 10 + 2 * nw else { return bad() }
            return .request(function: function, address: UInt16(u16(5)), count: nw, read: (UInt16(u16(1)), nr))
        default:
            return .exception(function: function, .illegalFunction)
        }
    }

    /// The exception reply PDU.
    public static func exceptionPDU(_ function: UInt8, _ x: ModbusException) -> [UInt8] { [function | 0x80, x.rawValue] }

    private static func inside(_ address: Int, _ count: Int, _ start: Int, _ size: Int) -> Bool {
        address >= start && address + count <= start + size
    }

    /// Applies the request to the image (writes) and returns the reply PDU — an exception PDU for an
    /// address outside the image. Bounded work: at most 2000 bits or 125 registers.
    public mutating func respond(to pdu: ArraySlice<UInt8>) -> [UInt8] {
        let parsed = Self.parse(pdu)
        guard case let .request(function, address16, count, read) = parsed else {
            if case let .exception(f, x) = parsed { return Self.exceptionPDU(f, x) }
            return Self.exceptionPDU(0, .illegalFunction)
        }
        let p = Array(pdu), address = Int(address16)
        func u16(_ i: Int) -> UInt16 { UInt16(p[i]) << 8 | UInt16(p[i + 1]) }
        func refuse() -> [UInt8] { Self.exceptionPDU(function, .illegalDataAddress) }
        func be(_ regs: ArraySlice<UInt16>) -> [UInt8] { regs.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] } }
        switch function {
        case 1, 2:
            let (start, table) = function == 1 ? (coilsStart, coils) : (discreteStart, discrete)
            guard Self.inside(address, count, start, table.count) else { return refuse() }
            var bytes = [UInt8](repeating: 0, count: (count + 7) / 8)
            for i in 0..<count where table[address - start + i] != 0 { bytes[i / 8] |= 1 << UInt8(i % 8) }
            return [function, UInt8(bytes.count)] + bytes
        case 3, 4:
            let (start, table) = function == 3 ? (holdingStart, holding) : (inputStart, input)
            guard Self.inside(address, count, start, table.count) else { return refuse() }
            let o = address - start
            return [function, UInt8(2 * count)] + be(table[o..<o + count])
        case 5:
            guard Self.inside(address, 1, coilsStart, coils.count) else { return refuse() }
            coils[address - coilsStart] = u16(3) == 0xFF00 ? 1 : 0
            return p
        case 6:
            guard Self.inside(address, 1, holdingStart, holding.count) else { return refuse() }
            holding[address - holdingStart] = u16(3)
            return p
        case 15:
            guard Self.inside(address, count, coilsStart, coils.count) else { return refuse() }
            for i in 0..<count { coils[address - coilsStart + i] = (p[6 + i / 8] >> UInt8(i % 8)) & 1 }
            return Array(p[0..<5])
        case 16:
            guard Self.inside(address, count, holdingStart, holding.count) else { return refuse() }
            for i in 0..<count { holding[address - holdingStart + i] = u16(6 + 2 * i) }
            return Array(p[0..<5])
        case 22:
            guard Self.inside(address, 1, holdingStart, holding.count) else { return refuse() }
            let and = u16(3), or = u16(5), o = address - holdingStart
            holding[o] = (holding[o] & and) | (or & ~and)
            return p
        case 23:
            guard let read, Self.inside(address, count, holdingStart, holding.count),
                  Self.inside(Int(read.address), read.count, holdingStart, holding.count) else { return refuse() }
            for i in 0..<count { holding[address - holdingStart + i] = u16(10 + 2 * i) }
            let o = Int(read.address) - holdingStart
            return [function, UInt8(2 * read.count)] + be(holding[o..<o + read.count])
        default:
            return Self.exceptionPDU(function, .illegalFunction)
        }
    }
}

/// Modbus TCP framing (MBAP header) for one connection's input, as pure logic: bytes in, whole frames
/// out. A frame whose header is impossible (protocol id not 0, length outside 2…254) is an error: the
/// server closes the connection rather than guess where the next frame starts.
public struct MBAPFramer: Sendable {
    public struct Frame: Sendable, Equatable {
        public var transaction: UInt16
        public var unit: UInt8
        public var pdu: ArraySlice<UInt8>
    }

    public enum Failure: Error, Equatable { case badProtocol(UInt16), badLength(Int) }

    /// Bytes received and not yet framed (never more than one frame: 260 bytes).
    public private(set) var pending: [UInt8] = []
    public init() {}

    public var isMidFrame: Bool { !pending.isEmpty }

    /// Appends received bytes; returns every complete frame, in order.
    public mutating func push(_ bytes: ArraySlice<UInt8>) throws(Failure) -> [Frame] {
        var frames: [Frame] = []
        var input = bytes
        while !input.isEmpty {
            // Take only what completes the header, then only what completes the frame: `pending` never
            // holds more than one frame, whatever a peer sends.
            let need: Int
            if pending.count < 7 {
                need = 7 - pending.count
            } else {
                need = 6 + (Int(pending[4]) << 8 | Int(pending[5])) - pending.count
            }
            let take = input.prefix(need)
            pending += take
            input = input.dropFirst(take.count)
            if pending.count == 7 {
                let proto = UInt16(pending[2]) << 8 | UInt16(pending[3])
                let length = Int(pending[4]) << 8 | Int(pending[5])
                guard proto == 0 else { throw .badProtocol(proto) }
                guard (2...254).contains(length) else { throw .badLength(length) }
            }
            if pending.count >= 7, pending.count == 6 + (Int(pending[4]) << 8 | Int(pending[5])) {
                frames.append(Frame(transaction: UInt16(pending[0]) << 8 | UInt16(pending[1]), unit: pending[6], pdu: pending[7...]))
                pending = []
            }
        }
        return frames
    }

    /// The reply frame: the request's transaction and unit, protocol 0, the PDU.
    public static func reply(to f: Frame, pdu: [UInt8]) -> [UInt8] {
        let length = pdu.count + 1
        return [UInt8(f.transaction >> 8), UInt8(f.transaction & 0xFF), 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), f.unit] + pdu
    }
}
