import ArgumentParser
import LMCPlatform
import ModbusBridge
import RingLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Ring log cost: append throughput, write amplification at the daemon's rate, export rate.
struct RingBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ring", abstract: "Ring log: append throughput, write amplification, export rate.")
    @Option(help: "Directory for the rings (on the disk to measure).") var dir: String = "/var/tmp/lmc-bench"
    @Option(help: "Records for the throughput run.") var records: Int = 500_000
    @Option(help: "Seconds of daemon time (10 Hz, 1 s sync) for the amplification run.") var daemonSeconds: Int = 120
    @Option(help: "The lmc binary, for the export rate.") var lmc: String = ".build/release/lmc"

    /// A typical cycle's record: one MP, one site.
    static func sample(_ i: Int) -> [UInt8] {
        SampleRecord(mode: 0, mps: [.init(value: 400_000 + Float(i % 1000), quality: 0)],
                     sites: [.init(setPointW: 250_000, boundBy: 1, importW: 240_000 + Float(i % 100))]).encode()
    }

    func run() throws {
        _ = mkdir(dir, 0o755)
        let payloadBytes = Double(Self.sample(0).count)

        // 1. Throughput: appends as fast as they come, synced every second of real time.
        let path = "\(dir)/samples.ring"
        unlink(path)
        let capacity = records + 16
        let w = RingWriter(try RingFile(path: path, ringName: "samples", boxID: "bench", recordSize: LogStore.recordSize, capacity: capacity),
                           syncIntervalSeconds: 1)
        let t0 = nowSeconds()
        for i in 0..<records {
            let mono = monotonicNanoseconds()
            try w.append(Self.sample(i), wallNs: mono, monoNs: mono)
        }
        try w.flush(monoNs: monotonicNanoseconds())
        let dt = nowSeconds() - t0
        let rate = Double(records) / dt
        row("ring append, full speed (1 s sync)", "\(Int(rate)) records/s", "10 records/s (10 Hz control)", "\(Int(rate / 10))× headroom",
            "\(records) records of \(Int(payloadBytes)) B payload in \(LogStore.recordSize) B slots, CRC-32C, one pwrite per batch + fdatasync each second")

        // 2. Write amplification at the daemon's rate: 10 records per (virtual) second, synced every
        //    sync interval — 1 s is the default; longer intervals trade durability for flash wear.
        for interval in [1, 10, 60] {
            let path2 = "\(dir)/amp.ring"
            unlink(path2)
            let w2 = RingWriter(try RingFile(path: path2, ringName: "samples", boxID: "bench", recordSize: LogStore.recordSize, capacity: 65_536),
                                syncIntervalSeconds: Double(interval))
            sync()
            let before = kernelWriteBytes()
            let seconds = max(daemonSeconds, interval * 4)
            let n = seconds * 10
            for i in 0..<n {
                let mono = UInt64(i) * 100_000_000
                try w2.append(Self.sample(i), wallNs: mono, monoNs: mono)
            }
            try w2.flush(monoNs: UInt64(n) * 100_000_000)
            let written = Double(kernelWriteBytes() - before)
            let amp = written / (Double(n) * payloadBytes)
            let handed = written / (Double(n) * Double(LogStore.recordSize))
            row("ring write amplification at 10 Hz, sync every \(interval) s", "\(fmt(amp)) B per payload B, \(fmt(handed, 2)) B per slot B (\(fmt(written / Double(seconds) / 1024, 2)) KiB/s)",
                "DESIGN ≤ 1.2 × payload", "\(fmt(amp / 1.2))×",
                "/proc/self/io write_bytes over \(seconds) s of 10 Hz cycles (\(Int(payloadBytes)) B payload in \(LogStore.recordSize) B slots), fdatasync every \(interval) s")
            unlink(path2)
        }

        // 3. Export rate: lmc log export of the throughput ring to CSV.
        if access(lmc, X_OK) == 0 {
            let out = "\(dir)/export.csv"
            let t1 = nowSeconds()
            let status = spawn(lmc, ["log", "export", "--ring", "samples", "--dir", dir], stdout: out)
            let dt1 = nowSeconds() - t1
            var st = stat()
            stat(out, &st)
            if status == 0 {
                row("ring export to CSV", "\(Int(Double(records) / dt1)) records/s, \(fmt(Double(st.st_size) / dt1 / 1_048_576)) MB/s",
                    "DESIGN ≥ 1 M records/s", "\(fmt(Double(records) / dt1 / 1e6, 2))×",
                    "lmc log export --ring samples of \(records) records, output to a file; constant memory")
            } else {
                printError("lmc log export failed with status \(status)")
            }
            unlink(out)
        }
        unlink(path)
    }
}

func printError(_ s: String) {
    let b = Array((s + "\n").utf8)
    _ = b.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// Runs a command to completion with stdout to a file; returns its exit status (-1: it did not start).
func spawn(_ exe: String, _ args: [String], stdout path: String) -> Int32 {
    guard case .success(let pid) = startProcess(exe, args, stdout: path, stderrToo: false) else { return -1 }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return (status >> 8) & 0xff
}

/// posix_spawn with stdin from /dev/null, stdout (and stderr, if asked) to a file, and no signal
/// blocked — the one way lmc-bench starts its children. Failure: posix_spawn's error number.
func startProcess(_ exe: String, _ args: [String], stdout path: String, stderrToo: Bool) -> Result<pid_t, Errno> {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if stderrToo { posix_spawn_file_actions_adddup2(&actions, 1, 2) }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, exe, &actions, &attr, argv, environ)
    return rc == 0 ? .success(pid) : .failure(Errno(code: rc))
}

struct Errno: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
}
