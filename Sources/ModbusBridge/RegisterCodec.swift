/// How a value is laid out in consecutive 16-bit Modbus registers.
///
/// Meters disagree on layout: Eastron SDM630 sends float32 with the high word first ("ABCD"), Carlo
/// Gavazzi EM24 sends int32 with the low word first ("CDAB"), a few devices also swap bytes inside a
/// register. The codec makes each of those explicit, so a register map (a data file in `hw/`) can say
/// exactly what the device does.
public struct RegisterCodec: Sendable, Equatable, CustomStringConvertible {
    public enum ValueType: String, Sendable, CaseIterable {
        case u16, i16, u32, i32, u64, i64, f32, f64

        /// Registers one value occupies.
        public var registerCount: Int {
            switch self {
            case .u16, .i16: 1
            case .u32, .i32, .f32: 2
            case .u64, .i64, .f64: 4
            }
        }
        public var isFloat: Bool { self == .f32 || self == .f64 }
    }

    /// Order of the registers of a multi-register value.
    public enum WordOrder: String, Sendable, CaseIterable {
        /// Most significant register first (Modbus convention; Eastron, Schneider).
        case big
        /// Least significant register first (Carlo Gavazzi, many PLCs).
        case little
    }

    /// Order of the two bytes inside each register.
    public enum ByteOrder: String, Sendable, CaseIterable {
        /// High byte first, as the Modbus specification says.
        case big
        /// Bytes swapped inside each register (rare; some gateways).
        case little
    }

    public var type: ValueType
    public var wordOrder: WordOrder
    public var byteOrder: ByteOrder
    /// Engineering value = raw × scale (e.g. 0.1 for a meter that reports tenths of a volt).
    public var scale: Double

    public init(_ type: ValueType, wordOrder: WordOrder = .big, byteOrder: ByteOrder = .big, scale: Double = 1) {
        self.type = type
        self.wordOrder = wordOrder
        self.byteOrder = byteOrder
        self.scale = scale
    }

    public var registerCount: Int { type.registerCount }

    public var description: String {
        var s = "\(type.rawValue)"
        if type.registerCount > 1 { s += " words \(wordOrder.rawValue)" }
        if byteOrder == .little { s += " bytes swapped" }
        if scale != 1 { s += " ×\(scale)" }
        return s
    }

    public enum CodecError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Fewer registers than the type needs.
        case wrongRegisterCount(type: ValueType, expected: Int, got: Int)
        /// The value does not fit the integer type once scaled, or is not finite.
        case outOfRange(value: Double, type: ValueType, scale: Double)

        public var description: String {
            switch self {
            case let .wrongRegisterCount(type, expected, got):
                "\(type.rawValue) needs \(expected) registers, got \(got)"
            case let .outOfRange(value, type, scale):
                "value \(value) does not fit \(type.rawValue)\(scale == 1 ? "" : " at scale \(scale)")"
            }
        }
    }

    // MARK: Raw bits

    /// The registers as one unsigned integer, most significant byte first, after undoing the
    /// device's word and byte order.
    public func rawBits(_ registers: some Collection<UInt16>) throws(CodecError) -> UInt64 {
        guard registers.count == registerCount else {
            throw .wrongRegisterCount(type: type, expected: registerCount, got: registers.count)
        }
        var bits: UInt64 = 0
        let ordered: [UInt16] = wordOrder == .big ? Array(registers) : registers.reversed()
        for word in ordered {
            let w = byteOrder == .big ? word : word.byteSwapped
            bits = (bits << 16) | UInt64(w)
        }
        return bits
    }

    /// Lays out raw bits (most significant first) in the device's word and byte order.
    public func registers(fromRawBits bits: UInt64) -> [UInt16] {
        let n = registerCount
        var words = [UInt16](repeating: 0, count: n)
        for i in 0..<n {
            let shift = UInt64(16 * (n - 1 - i))
            let w = UInt16(truncatingIfNeeded: bits >> shift)
            words[i] = byteOrder == .big ? w : w.byteSwapped
        }
        return wordOrder == .big ? words : words.reversed()
    }

    // MARK: Values

    /// Decodes registers to an engineering value (raw × scale). Floats may decode to NaN or ±Inf:
    /// the caller judges plausibility, the codec does not hide what the device sent.
    public func decode(_ registers: some Collection<UInt16>) throws(CodecError) -> Double {
        let bits = try rawBits(registers)
        let raw: Double
        switch type {
        case .u16: raw = Double(UInt16(truncatingIfNeeded: bits))
        case .i16: raw = Double(Int16(bitPattern: UInt16(truncatingIfNeeded: bits)))
        case .u32: raw = Double(UInt32(truncatingIfNeeded: bits))
        case .i32: raw = Double(Int32(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .u64: raw = Double(bits)
        case .i64: raw = Double(Int64(bitPattern: bits))
        case .f32: raw = Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .f64: raw = Double(bitPattern: bits)
        }
        return scale == 1 ? raw : raw * scale
    }

    /// Encodes an engineering value (divided by scale, rounded to the nearest integer for integer types).
    public func encode(_ value: Double) throws(CodecError) -> [UInt16] {
        let raw = scale == 1 ? value : value / scale
        let bits: UInt64
        switch type {
        case .f32:
            bits = UInt64(Float(raw).bitPattern)
        case .f64:
            bits = raw.bitPattern
        default:
            guard raw.isFinite else { throw .outOfRange(value: value, type: type, scale: scale) }
            let r = raw.rounded()
            switch type {
            case .u16:
                guard let v = UInt16(exactly: r) else { throw .outOfRange(value: value, type: type, scale: scale) }
                bits = UInt64(v)
            case .i16:
                guard let v = Int16(exactly: r) else { throw .outOfRange(value: value, type: type, scale: scale) }
                bits = UInt64(UInt16(bitPattern: v))
            case .u32:
                guard let v = UInt32(exactly: r) else { throw .outOfRange(value: value, type: type, scale: scale) }
                bits = UInt64(v)
            case .i32:
                guard let v = Int32(exactly: r) else { throw .outOfRange(value: value, type: type, scale: scale) }
                bits = UInt64(UInt32(bitPattern: v))
            case .u64:
                guard let v = UInt64(exactly: r) else { throw .outOfRange(value: value, type: type, scale: scale) }
                bits = v
            case .i64:
                guard let v = Int64(exactly: r) else { throw .outOfRange(value: value, type: type, scale: scale) }
                bits = UInt64(bitPattern: v)
            case .f32, .f64:
                fatalError("unreachable")
            }
        }
        return registers(fromRawBits: bits)
    }

    /// Decodes an integer type exactly (no Double rounding), for energy counters above 2^53.
    public func decodeInteger(_ registers: some Collection<UInt16>) throws(CodecError) -> Int64? {
        let bits = try rawBits(registers)
        switch type {
        case .u16: return Int64(UInt16(truncatingIfNeeded: bits))
        case .i16: return Int64(Int16(bitPattern: UInt16(truncatingIfNeeded: bits)))
        case .u32: return Int64(UInt32(truncatingIfNeeded: bits))
        case .i32: return Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: bits)))
        case .u64: return Int64(exactly: bits)
        case .i64: return Int64(bitPattern: bits)
        case .f32, .f64: return nil
        }
    }
}
