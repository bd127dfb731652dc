import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `lmc-bench`: each subcommand measures one row of docs/PERFORMANCE.md and prints it as Markdown table
/// rows: | benchmark | ours | limit or peer | ratio | method |.
@main
struct LMCBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lmc-bench",
        abstract: "Measurements behind docs/PERFORMANCE.md (run them all with make bench).",
        subcommands: [RingBench.self, LoopBench.self, BridgeBench.self, CoreBench.self, DNP3Bench.self]
    )
}

/// One table row.
func row(_ name: String, _ ours: String, _ against: String, _ ratio: String, _ method: String) {
    print("| \(name) | \(ours) | \(against) | \(ratio) | \(method) |")
    fflush(nil)
}

/// The kernel's count of bytes this process caused to be written to storage (/proc/self/io).
func kernelWriteBytes() -> UInt64 {
    guard let f = fopen("/proc/self/io", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("write_bytes:") { return UInt64(s.dropFirst(12).trimmingCharacters(in: " \n")) ?? 0 }
    }
    return 0
}

func nowSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func fmt(_ v: Double, _ digits: Int = 1) -> String {
    let p = pow(10.0, Double(digits))
    return "\((v * p).rounded() / p)"
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
