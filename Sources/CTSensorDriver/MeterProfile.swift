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

    public init(name: String, description: String, table: RegisterTable, registers: [RegisterSpec], maxRegistersPerRead: Int = 100) {
        self.name = name
        self.description = description
        self.table = table
        self.registers = registers.sorted { $0.address < $1.address }
        self.maxRegistersPerRead = maxRegistersPerRead
    }

    /// The reads that cover every register: consecutive ranges merged while the span stays within
    /// `maxRegistersPerRead` and the gap is small (reading a few unused registers is cheaper than
    /// another round trip on a 9600-baud bus).
    public var reads: [(address: UInt16, count: Int)] {
        var out: [(UInt16, Int)] = []
        for r in registers {
            let end = Int(r.address) + r.codec.registerCount
            if let last = out.last, Int(r.address) - (Int(last.0) + last.1) <= 8, end - Int(last.0) <= maxRegistersPerRead {
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
