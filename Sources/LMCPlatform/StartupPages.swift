import CMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Pages that start-up touched once and the running loop does not need mapped.
///
/// Starting `lmc run` runs code the loop never runs again: argument parsing, the TOML reader, the
/// config's validation, profile loading, the ring log's recovery, the dynamic loader's relocation
/// tables (in a dynamically linked build), OpenSSL's initialisation. Each page of the binary that code
/// touched stays mapped into the process, together with its neighbours (the kernel maps up to 64 KiB
/// around each fault), and counts in its RSS for the life of the process: about 7 MiB of a 15 MiB RSS
/// on the bench (docs/PERFORMANCE.md, footprint). `release()` unmaps the read-only file pages of every
/// private file mapping; the pages the loop uses come back at their next use as minor faults from the
/// page cache (the file is not read again while the page cache holds it), so the RSS settles at what
/// the loop really runs. Nothing lmc owns is dropped: a read-only mapping that holds private copies
/// (a relocated segment, `Anonymous:` above 0 in smaps) is left alone, and writable mappings are never
/// touched. (glibc's `malloc_trim` after it gave back nothing measurable on the bench: not done.)
public enum StartupPages {
    /// What one `release()` did.
    public struct Released: Sendable, Equatable {
        /// Read-only private file mappings whose pages were unmapped.
        public var mappings = 0
        /// Their resident size before (KiB, smaps `Rss:`).
        public var kib = 0
        /// Read-only private file mappings kept because they hold private copies (relocated pages).
        public var kept = 0
        public init() {}
    }

    /// Unmaps the read-only file pages of this process's private file mappings (above).
    /// `smaps` is the process's own smaps, a parameter for the tests only.
    @discardableResult
    public static func release(smaps: String = "/proc/self/smaps") -> Released {
        var done = Released()
        guard let text = readAll(smaps) else { return done }
        for m in mappings(in: text) where m.releasable {
            if m.anonymousKiB > 0 { done.kept += 1; continue }
            guard m.rssKiB > 0, let p = UnsafeMutableRawPointer(bitPattern: m.start) else { continue }
            if madvise(p, m.end - m.start, MADV_DONTNEED) == 0 {
                done.mappings += 1
                done.kib += m.rssKiB
            }
        }
        return done
    }

    /// No transparent huge pages for lmc, from the start of `main`, before any thread or heap grows.
    ///
    /// A box's kernel (Debian 12: `transparent_hugepage=always`) backs every anonymous region that covers
    /// a whole aligned 2 MiB with one 2 MiB page at its first touch. The glibc the arm64 release links
    /// (Debian sid's 2.43) has a default huge page size on aarch64 and sizes each thread's malloc arena
    /// and the heap's growth in aligned 2 MiB steps (under qemu-aarch64 an arena starts at 2 MiB; with
    /// the amd64 release's glibc 2.36, at 132 KiB), so each arena a thread touches costs a 2 MiB page
    /// instead of the few KiB it uses: 11.5 MiB of lmc's own memory on the arm64 box against 0.6 MiB on
    /// amd64 (docs/PERFORMANCE.md). A 10 Hz controller gains nothing from huge pages. True when the
    /// kernel took the setting.
    @discardableResult
    public static func declineHugePages() -> Bool {
        lmc_thp_disable() == 0 && lmc_thp_disabled() == 1
    }

    /// One mapping of an smaps file: its range, permissions, path and the two sizes `release` reads.
    struct Mapping {
        var start = 0, end = 0
        var perms = ""
        var path = ""
        var rssKiB = 0, anonymousKiB = 0
        /// Readable, not writable, private, and backed by a file (not [vdso], [heap] or anonymous).
        var releasable: Bool {
            let p = Array(perms.utf8)
            return p.count == 4 && p[0] == UInt8(ascii: "r") && p[1] == UInt8(ascii: "-") && p[3] == UInt8(ascii: "p")
                && path.hasPrefix("/")
        }
    }

    static func mappings(in text: String) -> [Mapping] {
        var out: [Mapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard !out.isEmpty, fields.count >= 2, let v = Int(fields[1]) else { continue }
                if first == "Rss:" { out[out.count - 1].rssKiB = v }
                if first == "Anonymous:" { out[out.count - 1].anonymousKiB = v }
                continue
            }
            // A header: start-end perms offset dev inode [path]
            let range = first.split(separator: "-")
            guard range.count == 2, fields.count >= 5, let s = Int(range[0], radix: 16), let e = Int(range[1], radix: 16) else { continue }
            var m = Mapping(start: s, end: e, perms: String(fields[1]))
            if fields.count >= 6 { m.path = fields[5...].joined(separator: " ") }
            out.append(m)
        }
        return out
    }

    static func readAll(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
