import ModbusBridge

/// An Eastron SDM630 as a libmodbus server shows it (hw/meters/eastron-sdm630.toml): what `lmc demo` and
/// `lmc-bench loop` serve on loopback in place of a real meter. Three phases at 230 V, power factor 0.98.
public enum SimulatedSDM630 {
    /// The input registers the profile reads.
    public static let layout = ModbusServer.Layout(input: 0..<0x50)
    static let f32 = RegisterCodec(.f32)

    /// Publishes an apparent power (kVA) as the meter would show it. A real meter's last digits never
    /// stand still under load (lmc calls a constant reading frozen): `jitter` is the relative noise.
    public static func publish(_ m: ModbusServer, kva exact: Double, jitter: Double = 0.0005) {
        let kva = exact * (1 + Double.random(in: -jitter...jitter))
        let amps = kva * 1000 / 690
        for (i, a) in [UInt16(0x00), 0x02, 0x04].enumerated() { try? m.set(230 + Double(i) * 0.3, as: f32, in: .input, address: a) }
        for a in [UInt16(0x06), 0x08, 0x0A] { try? m.set(amps, as: f32, in: .input, address: a) }
        try? m.set(kva * 1000 * 0.98, as: f32, in: .input, address: 0x34)
        try? m.set(kva * 1000, as: f32, in: .input, address: 0x38)
        try? m.set(50, as: f32, in: .input, address: 0x46)
    }
}
