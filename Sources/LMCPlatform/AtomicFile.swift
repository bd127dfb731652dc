#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small state files that must survive a power cut whole or not at all (`oscp.state`,
/// `breakers.state`): written to `NAME.new`, synced, renamed over the old one, and the directory synced.
/// A reader sees the old file or the new one, never a torn one.
public enum AtomicFile {
    public struct Failure: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public static func write(_ text: String, to path: String, mode: mode_t = 0o640) throws(Failure) {
        let tmp = path + ".new"
        func fail(_ what: String) -> Failure { Failure(path: path, reason: "\(what): \(String(cString: strerror(errno)))") }
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw fail("cannot create \(tmp)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Sys.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { let e = fail("write failed"); Sys.close(fd); unlink(tmp); throw e }
        guard fsync(fd) == 0 else { let e = fail("fsync failed"); Sys.close(fd); unlink(tmp); throw e }
        Sys.close(fd)
        guard rename(tmp, path) == 0 else { let e = fail("cannot replace"); unlink(tmp); throw e }
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); Sys.close(dfd) }
    }
}
