import Foundation
@testable import LMCPlatform
import Testing

/// `lmc run` unmaps, a few seconds into its loop, the read-only file pages start-up touched once
/// (LMCPlatform's StartupPages; docs/PERFORMANCE.md, footprint). What it may drop and what it must keep.
@Suite struct StartupPagesTests {
    /// A file of `pages` pages, each filled with its own byte (1, 2, 3, …), mapped private with `prot`.
    private func mapFile(pages: Int, prot: Int32) throws -> (UnsafeMutablePointer<UInt8>, Int) {
        let path = NSTemporaryDirectory() + "lmc-startup-pages-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var data = Data()
        for i in 0..<pages { data.append(Data(repeating: UInt8(i + 1), count: 4096)) }
        try data.write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let len = pages * 4096
        let p = mmap(nil, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        #expect(p != MAP_FAILED)
        let bytes = p!.assumingMemoryBound(to: UInt8.self)
        if prot != PROT_READ | PROT_WRITE { #expect(mprotect(p, len, prot) == 0) }
        return (bytes, len)
    }

    private func mapping(at p: UnsafeMutablePointer<UInt8>) -> StartupPages.Mapping? {
        let text = StartupPages.readAll("/proc/self/smaps") ?? ""
        return StartupPages.mappings(in: text).first { $0.start == Int(bitPattern: p) }
    }

    @Test func readOnlyFilePagesAreUnmappedAndReadBackUnchanged() throws {
        let pages = 64
        let (p, len) = try mapFile(pages: pages, prot: PROT_READ)
        defer { munmap(p, len) }
        var sum = 0
        for i in 0..<pages { sum += Int(p[i * 4096]) }   // every page resident
        #expect(sum == (1...pages).reduce(0, +))
        let before = try #require(mapping(at: p))
        #expect(before.perms == "r--p" && before.rssKiB == pages * 4 && before.anonymousKiB == 0, "\(before)")

        let r = StartupPages.release()
        #expect(r.mappings >= 1 && r.kib >= pages * 4, "\(r)")
        let after = try #require(mapping(at: p))
        #expect(after.rssKiB == 0, "the file's pages are no longer mapped: \(after)")
        for i in 0..<pages { #expect(p[i * 4096 + 4095] == UInt8(i + 1), "page \(i) reads the file again") }
    }

    @Test func aReadOnlyMappingHoldingPrivateCopiesIsKept() throws {
        // What the dynamic loader leaves of a relocated segment (RELRO): written while writable, then
        // made read-only. Unmapping it would put the file's bytes back under the relocated ones.
        let pages = 4
        let (p, len) = try mapFile(pages: pages, prot: PROT_READ | PROT_WRITE)
        defer { munmap(p, len) }
        for i in 0..<len { p[i] = 0xAB }
        #expect(mprotect(p, len, PROT_READ) == 0)
        let before = try #require(mapping(at: p))
        #expect(before.perms == "r--p" && before.anonymousKiB == pages * 4, "\(before)")

        let r = StartupPages.release()
        #expect(r.kept >= 1, "\(r)")
        for i in 0..<pages { #expect(p[i * 4096] == 0xAB && p[i * 4096 + 4095] == 0xAB, "page \(i) keeps its private copy") }
        #expect(mapping(at: p)?.anonymousKiB == pages * 4)
    }

    @Test func onlyReadOnlyPrivateFileMappingsAreCandidates() {
        let smaps = """
        00400000-00500000 r-xp 00000000 08:01 123 /usr/bin/lmc
        Rss:                1024 kB
        Anonymous:             0 kB
        VmFlags: rd ex mr mw me
        00500000-00600000 r--p 00100000 08:01 123 /usr/bin/lmc
        Rss:                  64 kB
        Anonymous:            64 kB
        00600000-00700000 rw-p 00200000 08:01 123 /usr/bin/lmc
        Rss:                  32 kB
        Anonymous:             8 kB
        00700000-00800000 r--s 00000000 08:01 124 /var/lib/lmc/shared file
        Rss:                   4 kB
        Anonymous:             0 kB
        7fff0000-7fff2000 r-xp 00000000 00:00 0                          [vdso]
        Rss:                   8 kB
        7ffe0000-7fff0000 r--p 00000000 00:00 0
        Rss:                   4 kB
        """
        let m = StartupPages.mappings(in: smaps)
        #expect(m.map(\.releasable) == [true, true, false, false, false, false])
        #expect(m[0].start == 0x400000 && m[0].end == 0x500000 && m[0].rssKiB == 1024 && m[0].anonymousKiB == 0)
        #expect(m[1].anonymousKiB == 64, "a relocated segment: releasable by its flags, kept by release() for its private copies")
        #expect(m[3].path == "/var/lib/lmc/shared file")
    }
}
