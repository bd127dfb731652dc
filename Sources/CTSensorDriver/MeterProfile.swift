import ModbusBridge

/// A measured quantity, always in SI units once decoded.
public enum Quantity: String, Sendable, CaseIterable, Comparable {
    case voltageL1 = "voltage_l1", voltageL2 = "voltage_l2", voltageL3 = "voltage_l3"
    case currentL1 = "current_l1", currentL2 = "current_l2", currentL3 = "current_l3"
    case powerL1 = "power_l1", powerL2 = "power_l2", powerL3 = "power_l3"
    case powerTotal = "power_total"
    case apparentPowerL1 = "apparent_power_l1", apparentPowerL2 = "apparent_power_l2", apparentPowerL3 = "apparent_power_l3"
    case apparentPowerTotal = "apparent_power_total"
    case frequency
    case energyImport = "energy_import"

    public var unit: String {
        switch self {
        case .voltageL1, .voltageL2, .voltageL3: "V"
        case .currentL1, .currentL2, .currentL3: "A"
        case .powerL1, .powerL2, .powerL3, .powerTotal: "W"
        case .apparentPowerL1, .apparentPowerL2, .apparentPowerL3, .apparentPowerTotal: "VA"
        case .frequency: "Hz"
        case .energyImport: "Wh"
        }
    }

    public var isVoltage: Bool { [.voltageL1, .voltageL2, .voltageL3].contains(self) }
    public var isCurrent: Bool { [.currentL1, .currentL2, .currentL3].contains(self) }

    public static func < (a: Quantity, b: Quantity) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One quantity's place in the register map.
public struct RegisterSpec: Sendable, Equatable {
    public var quantity: Quantity
    public var address: UInt16
    /// Layout and scale to SI (e.g. 0.1 for tenths of a volt, 1000 for kW → W).
    public var codec: RegisterCodec

    public init(quantity: Quantity, address: UInt16, codec: RegisterCodec) {
        self.quantity = quantity
        self.address = address
        self.codec = codec
    }
}

/// A meter's register map, loaded from `hw/meters/*.toml`: a new meter is a new file, not code.
public struct MeterProfile: Sendable, Equatable {
    public var name: String
    public var description: String
    /// Where the values live: input registers (function 4) or holding registers (function 3).
    public var table: RegisterTable
    public var registers: [RegisterSpec]
    /// The most registers the device answers in one read.
    public var maxRegistersPerRead: Int
    /// The longest run of registers between two used ones that one read may span: the device answers
    /// them (unused values are read and ignored) instead of refusing the request. A per-device fact
    /// (`max_gap_registers` in the profile; hw/README.md).
    public var maxGapRegisters: Int

    public init(name: String, description: String, table: RegisterTable, registers: [RegisterSpec], maxRegistersPerRead: Int = 100,
                maxGapRegisters: Int = 8) {
        self.name = name
        self.description = description
        self.table = table
        self.registers = registers.sorted { $0.address < $1.address }
        self.maxRegistersPerRead = maxRegistersPerRead
        self.maxGapRegisters = maxGapRegisters
    }

    /// The reads that cover every register of the profile (`lmc meter read` shows them all).
    public var reads: [(address: UInt16, count: Int)] { Self.reads(covering: registers, maxGap: maxGapRegisters, maxCount: maxRegistersPerRead) }

    /// The registers control and plausibility use: voltages and currents (range checks, frozen under
    /// load, V·I), the total power (is the board loaded) and the total apparent power — or its phases
    /// when the meter has no total. Energy, frequency and per-phase W are not read on the bus.
    public var controlRegisters: [RegisterSpec] {
        let hasTotal = registers.contains { $0.quantity == .apparentPowerTotal }
        return registers.filter { r in
            switch r.quantity {
            case .voltageL1, .voltageL2, .voltageL3, .currentL1, .currentL2, .currentL3, .powerTotal, .apparentPowerTotal: true
            case .apparentPowerL1, .apparentPowerL2, .apparentPowerL3: !hasTotal
            default: false
            }
        }
    }

    /// The reads a poll makes (the bus thread, `lmc doctor`, the bus-load warning): the control
    /// registers, a gap between them read across when the device answers it (`maxGapRegisters`) and it
    /// costs the line less than a request of its own would. Over TCP, or on a fast line, that is one
    /// request whenever the control registers lie within one span; at 9600 baud a gap of more than
    /// about 14 registers takes longer to send than a second request and its turnaround.
    public func controlReads(on line: SerialLine?) -> [(address: UInt16, count: Int)] {
        let gapWorthReading: Int
        if let line {
            gapWorthReading = min(maxGapRegisters, Int(Self.requestOverheadSeconds(line) / (2 * Self.characterSeconds(line))))
        } else {
            gapWorthReading = maxGapRegisters
        }
        return Self.reads(covering: controlRegisters, maxGap: gapWorthReading, maxCount: maxRegistersPerRead)
    }

    /// One character on the line: start bit, data bits, parity bit, stop bits.
    public static func characterSeconds(_ line: SerialLine) -> Double {
        Double(1 + line.dataBits + (line.parity == .none ? 0 : 1) + line.stopBits) / Double(line.baud)
    }

    /// What a read costs beyond its registers: the 8-byte request, the 5 bytes around the reply's data,
    /// 3.5 characters of silence after each frame, and about 10 ms for the meter to answer.
    public static func requestOverheadSeconds(_ line: SerialLine) -> Double {
        (8 + 3.5 + 5 + 3.5) * characterSeconds(line) + 0.010
    }

    /// The line time of one read of `count` registers, request and reply.
    public static func readSeconds(count: Int, on line: SerialLine) -> Double {
        requestOverheadSeconds(line) + 2 * Double(count) * characterSeconds(line)
    }

    /// Consecutive ranges merged while the span stays within `maxCount` and the gap within `maxGap`
    /// (reading a few unused registers is cheaper than another round trip on a 9600-baud bus).
    public static func reads(covering specs: [RegisterSpec], maxGap: Int, maxCount: Int) -> [(address: UInt16, count: Int)] {
        var out: [(UInt16, Int)] = []
        for r in specs.sorted(by: { $0.address < $1.address }) {
            let end = Int(r.address) + r.codec.registerCount
            if let last = out.last, Int(r.address) - (Int(last.0) + last.1) <= maxGap, end - Int(last.0) <= maxCount {
                out[out.count - 1].1 = max(last.1, end - Int(last.0))
            } else {
                out.append((r.address, r.codec.registerCount))
            }
        }
        return out
    }

    /// True when the meter has no voltage channel (a CT-only meter).
    public var measuresVoltage: Bool { registers.contains { $0.quantity.isVoltage } }
}
