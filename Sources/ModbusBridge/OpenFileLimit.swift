#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// libmodbus waits for replies and requests with select(), and select() can watch only descriptors
/// below FD_SETSIZE (1024): glibc aborts the process for any other ("bit out of range 0 - FD_SETSIZE
/// on fd_set"). A process that uses libmodbus therefore keeps its soft open-file limit at FD_SETSIZE:
/// past it a new socket fails with EMFILE, an error every caller already handles.
public enum OpenFileLimit {
    /// FD_SETSIZE of glibc and musl.
    public static let selectable: rlim_t = 1024

    /// Lowers the soft RLIMIT_NOFILE to `selectable` if it is higher (systemd's default soft limit is
    /// 1024 already; a shell's or a unit's raised one is not). Returns the soft limit now in force.
    @discardableResult
    public static func capAtSelectable() -> rlim_t {
        var r = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &r) == 0 else { return selectable }
        if r.rlim_cur > selectable {
            r.rlim_cur = selectable
            _ = setrlimit(resource, &r)
        }
        return r.rlim_cur
    }
}
