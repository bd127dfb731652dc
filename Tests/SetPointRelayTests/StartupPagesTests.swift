import Foundation
import LMCPlatform
import Testing

/// `lmc run` unmaps, a few seconds into its loop, the pages of its read-only segments that start-up
/// touched (LMCPlatform's StartupPages; docs/PERFORMANCE.md, footprint). What it drops and what it keeps.
@Suite(.serialized) struct StartupPagesTests {
    /// smaps_rollup's Rss and Anonymous (KiB): exact, where /proc/PID/status may lag on older kernels.
    private func rollup() -> (rss: Int, anon: Int) {
        let text = (try? String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            text.split(separator: "\n").first { $0.hasPrefix(name + ":") }.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
        }
        return (field("Rss"), field("Anonymous"))
    }

    @Test func theReadOnlySegmentsAreUnmappedAndTheProcessRunsOn() throws {
        let before = rollup()
        #expect(before.rss > 0, "smaps_rollup readable")
        let r = StartupPages.release()
        let after = rollup()
        #expect(r.segments >= 2 && r.kib > 1024 && r.failed == 0, "this test binary's and its libraries' text at least: \(r)")
        // The test binary's text and Foundation's, resident since the suite started, are no longer
        // mapped; what this test runs next comes back.
        #expect(after.rss < before.rss - 1024, "RSS \(before.rss) → \(after.rss) KiB")
        #expect(after.anon >= before.anon - 256, "lmc's own memory is not touched: \(before.anon) → \(after.anon) KiB")
    }

    @Test func writableSegmentsKeepWhatWasWrittenToThem() throws {
        // Relocated pointers (the GOT, RELRO) and data written since start-up live in writable segments.
        // Were they unmapped, they would read the file's bytes again: calls through the GOT into libc and
        // Foundation would jump to unrelocated addresses, and `Counter.value` would read 0.
        Counter.value = 41
        StartupPages.release()
        Counter.value += 1
        #expect(Counter.value == 42)
        #expect(getpid() > 0)
        let s = String(format: "%d-%@", 7, "seven")   // Foundation, through its relocated tables
        #expect(s == "7-seven")
        #expect(try JSONSerialization.jsonObject(with: Data("[1]".utf8)) as? [Int] == [1])
    }

    @Test func hugePagesAreDeclined() {
        #expect(StartupPages.declineHugePages(), "PR_SET_THP_DISABLE taken and read back")
    }
}

private enum Counter { nonisolated(unsafe) static var value = 0 }
