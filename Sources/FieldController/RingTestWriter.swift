import ArgumentParser
import LMCPlatform
import ModbusBridge
import RingLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Hidden: appends to a ring at full speed, printing "SYNCED <head>" after each sync — the process the
/// crash tests kill with SIGKILL at random moments. Payload of record n: its sequence number, repeated.
struct RingTestWriter: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_ring-test-writer", abstract: "Crash-test writer for the ring log.",
                                                    shouldDisplay: false)
    @Option var path: String
    @Option var capacity: Int = 512
    @Option var count: Int = 1_000_000
    @Option(name: .customLong("sync-ms")) var syncMs: Int = 5

    func run() throws {
        let ring = try RingFile(path: path, ringName: "samples", boxID: "crash-test", recordSize: 64, capacity: capacity)
        let w = RingWriter(ring, syncIntervalSeconds: Double(syncMs) / 1000)
        print("START \(ring.head)")
        fflush(nil)
        var last = w.syncedHead
        for _ in 0..<count {
            let seq = w.nextSeq
            var payload = [UInt8](repeating: 0, count: 32)
            for i in 0..<32 { payload[i] = UInt8(truncatingIfNeeded: seq >> (8 * UInt64(i % 8))) }
            let mono = monotonicNanoseconds()
            _ = try w.append(payload, wallNs: mono, monoNs: mono)
            if w.syncedHead != last {
                last = w.syncedHead
                print("SYNCED \(last)")
                fflush(nil)
            }
        }
        try w.flush(monoNs: 0)
    }
}
