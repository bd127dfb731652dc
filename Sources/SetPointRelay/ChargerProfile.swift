import ModbusBridge

/// A hub charger's Modbus map for set points, loaded from `hw/chargers/*.toml`.
public struct ChargerProfile: Sendable, Equatable {
    /// One register the relay reads or writes.
    public struct Register: Sendable, Equatable {
        public var address: UInt16
        public var codec: RegisterCodec
        /// Function 6 (one register) or 16 (several; required by Alfen for float32).
        public var writeFunction: Int
        /// The value in the register is mA rather than A (ABB, KEBA).
        public var milliamps: Bool

        public init(address: UInt16, codec: RegisterCodec, writeFunction: Int = 16, milliamps: Bool = false) {
            self.address = address
            self.codec = codec
            self.writeFunction = writeFunction
            self.milliamps = milliamps
        }

        /// Register value for a current in A. An integer register takes the value rounded toward zero at
        /// its resolution: a charger is never told more than it was given (the codec itself rounds to
        /// nearest, as `lmc modbus write` wants).
        func encode(amps: Double) throws(RegisterCodec.CodecError) -> [UInt16] {
            var v = milliamps ? amps * 1000 : amps
            if !codec.type.isFloat, v.isFinite {
                v = ((v / codec.scale) + 1e-9 * (v < 0 ? -1 : 1)).rounded(.towardZero) * codec.scale
            }
            return try codec.encode(v)
        }

        func decodeAmps(_ regs: [UInt16]) throws(RegisterCodec.CodecError) -> Double {
            let v = try codec.decode(regs)
            return milliamps ? v / 1000 : v
        }
    }

    public var name: String
    public var description: String
    public var defaultUnit: UInt8
    public var minCurrentA: Double
    public var maxCurrentA: Double
    /// The set point: maximum current per phase.
    public var limit: Register
    /// The charger's own fallback current, used when we fall silent (nil: set on the charger itself).
    public var safeCurrent: Register?
    /// The communication timeout / validity time register we program, in seconds (nil: fixed on the
    /// charger, e.g. Alfen's "max current valid time" set in its service tool).
    public var timeout: Register?
    /// How long a written limit stays valid on the charger (s): we refresh well inside it.
    public var validitySeconds: Double
    /// The current the charger applies now, for readback.
    public var readback: Register?
    /// Which table readback lives in.
    public var readbackTable: RegisterTable
    /// A register to write 1 to on every refresh (Webasto NEXT's life bit).
    public var lifeBit: Register?

    public init(name: String, description: String, defaultUnit: UInt8 = 1, minCurrentA: Double = 6, maxCurrentA: Double = 32,
                limit: Register, safeCurrent: Register? = nil, timeout: Register? = nil, validitySeconds: Double = 60,
                readback: Register? = nil, readbackTable: RegisterTable = .holding, lifeBit: Register? = nil) {
        self.name = name
        self.description = description
        self.defaultUnit = defaultUnit
        self.minCurrentA = minCurrentA
        self.maxCurrentA = maxCurrentA
        self.limit = limit
        self.safeCurrent = safeCurrent
        self.timeout = timeout
        self.validitySeconds = validitySeconds
        self.readback = readback
        self.readbackTable = readbackTable
        self.lifeBit = lifeBit
    }

    /// Refresh period: a third of the validity, so two refreshes can fail before the charger reverts.
    public var refreshSeconds: Double { max(1, validitySeconds / 3) }
}

/// How a site's set point (W) becomes a charger current (A per phase).
public struct CurrentConversion: Sendable, Equatable {
    public var phases: Int
    public var phaseVoltage: Double
    public var powerFactor: Double
    /// Step of the charger's current, A (0.1 for float registers, 1 for whole-amp chargers).
    public var stepA: Double

    public init(phases: Int = 3, phaseVoltage: Double = 230, powerFactor: Double = 1, stepA: Double = 0.1) {
        self.phases = phases
        self.phaseVoltage = phaseVoltage
        self.powerFactor = powerFactor
        self.stepA = stepA
    }

    /// Amps per phase for `watts`, rounded down to the step; below the charger's minimum the set point
    /// cannot be honoured without exceeding it, so it means stop (0 A); above its maximum, the maximum.
    public func amps(forWatts watts: Double, profile: ChargerProfile) -> Double {
        amps(forWatts: watts, minA: profile.minCurrentA, maxA: profile.maxCurrentA)
    }

    /// As above with the limits given (a hub charger's site limit may exceed a socket's maximum).
    public func amps(forWatts watts: Double, minA: Double, maxA: Double) -> Double {
        let raw = max(0, watts) / (Double(phases) * phaseVoltage * powerFactor)
        let stepped = stepA > 0 ? ((raw / stepA) + 1e-9).rounded(.down) * stepA : raw
        if stepped < minA { return 0 }
        return min(stepped, maxA)
    }
}
