import CMemory

/// Pages that start-up touched once and the running loop does not need mapped.
///
/// Starting `lmc run` runs code the loop never runs again: argument parsing, the TOML reader, the
/// config's validation, profile loading, the ring log's recovery, the dynamic loader's relocation
/// tables (in a dynamically linked build), OpenSSL's initialisation. Each page of the binary that code
/// touched stays mapped into the process, together with its neighbours (the kernel maps up to 64 KiB
/// around each fault), and counts in its RSS for the life of the process: about 7 MiB of a 16 MiB RSS
/// on the bench (docs/PERFORMANCE.md, footprint). `release()` unmaps (MADV_DONTNEED) the pages of every
/// segment the executable and its libraries loaded without write permission — text and read-only
/// data, found by `dl_iterate_phdr`, never a mapping lmc made itself; the pages the loop uses come back
/// at their next use as minor faults from the page cache, so the RSS settles at what the loop really
/// runs. Those segments are never written, so nothing is lost: relocated data (RELRO, the GOT, the
/// stack-protector canary of a static aarch64 binary) lives in writable segments, which are not
/// touched. (glibc's `malloc_trim` after it gave back nothing measurable on the bench: not done.)
public enum StartupPages {
    /// What one `release()` did.
    public struct Released: Sendable, Equatable {
        /// Read-only segments whose pages were unmapped.
        public var segments = 0
        /// Their size (KiB), resident or not.
        public var kib = 0
        /// Segments madvise refused.
        public var failed = 0
        public init() {}
    }

    /// Unmaps the pages of the read-only segments of the executable and its libraries (above).
    @discardableResult
    public static func release() -> Released {
        let r = lmc_release_readonly_segments()
        var done = Released()
        done.segments = Int(r.segments)
        done.kib = Int(r.bytes / 1024)
        done.failed = Int(r.failed)
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
}
