/// The Charge Project worked example day (scenarios/seed-example-day.csv, §3.2.3.2 of the
/// SP Energy Networks / Smarter Grid Solutions final report): background load at a 500 kVA
/// transformer, every 10 minutes from 00:00 to 23:50, in kVA. Embedded so `lmc demo` needs no files.
/// The EV site is rated 250 kVA with 150 kVA firm and wants 250 kVA all day.
enum ExampleDay {
    static let stepSeconds = 600.0
    static let backgroundKVA: [Double] = [
        157.0, 154.6, 152.3, 150.1, 147.9, 145.8, 143.8, 141.8, 140.0, 138.2,
        136.6, 135.0, 133.6, 132.2, 131.0, 129.9, 128.9, 128.0, 127.2, 126.5,
        126.0, 125.5, 125.2, 125.1, 125.0, 125.1, 125.2, 125.5, 126.0, 126.5,
        127.2, 128.0, 128.9, 129.9, 131.0, 132.2, 133.6, 135.0, 136.6, 138.2,
        140.0, 141.8, 143.8, 145.8, 147.9, 150.1, 152.3, 154.6, 157.0, 159.5,
        162.0, 164.5, 167.1, 169.8, 172.4, 175.2, 177.9, 180.7, 183.4, 186.2,
        189.0, 191.8, 194.6, 197.4, 200.1, 202.9, 205.6, 208.3, 210.9, 213.5,
        216.1, 218.6, 221.1, 223.6, 225.9, 228.3, 230.6, 232.8, 235.1, 237.3,
        239.6, 241.8, 244.1, 246.5, 249.1, 251.7, 254.6, 257.7, 261.1, 264.9,
        268.9, 273.4, 278.2, 283.4, 289.0, 294.9, 301.0, 307.3, 313.7, 320.0,
        326.1, 331.8, 337.0, 341.5, 345.2, 347.9, 349.5, 350.0, 349.2, 347.2,
        344.0, 339.6, 334.1, 327.7, 320.4, 312.6, 304.2, 295.5, 286.6, 277.8,
        269.0, 260.4, 252.2, 244.4, 237.0, 230.1, 223.7, 217.7, 212.1, 206.9,
        202.2, 197.8, 193.6, 189.8, 186.1, 182.7, 179.4, 176.2, 173.2, 170.3,
        167.5, 164.8, 162.2, 159.6,
    ]
    static let evDemandKVA = 250.0
    static let transformerKVA = 500.0
    static let firmKVA = 150.0
    static let ratedKVA = 250.0

    /// Background at `t` seconds after midnight, linearly interpolated.
    static func background(at t: Double) -> Double {
        let x = max(0, min(t / stepSeconds, Double(backgroundKVA.count - 1)))
        let i = min(Int(x), backgroundKVA.count - 2)
        let f = x - Double(i)
        return backgroundKVA[i] * (1 - f) + backgroundKVA[i + 1] * f
    }
}
