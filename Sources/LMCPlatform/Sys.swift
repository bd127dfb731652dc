// The few libc calls and constants whose spelling differs between glibc (Debian, the x86_64 build)
// and musl (the static Linux SDK, the aarch64 box): everything else is plain POSIX in both.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum Sys {
    #if canImport(Glibc)
    public static let sockStream = Int32(SOCK_STREAM.rawValue)
    public static let sockDgram = Int32(SOCK_DGRAM.rawValue)
    public static let sockCloexec = Int32(SOCK_CLOEXEC.rawValue)
    public static let sockNonblock = Int32(SOCK_NONBLOCK.rawValue)
    #else
    public static let sockStream = Int32(SOCK_STREAM)
    public static let sockDgram = Int32(SOCK_DGRAM)
    public static let sockCloexec = Int32(SOCK_CLOEXEC)
    public static let sockNonblock = Int32(SOCK_NONBLOCK)
    #endif

    // Module-qualified so that types with methods of the same name can still reach libc.
    #if canImport(Glibc)
    @discardableResult public static func close(_ fd: Int32) -> Int32 { Glibc.close(fd) }
    public static func write(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int { Glibc.write(fd, p, n) }
    public static func send(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int, _ flags: Int32) -> Int { Glibc.send(fd, p, n, flags) }
    public static func recv(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int, _ flags: Int32) -> Int { Glibc.recv(fd, p, n, flags) }
    public static func connect(_ fd: Int32, _ a: UnsafePointer<sockaddr>?, _ len: socklen_t) -> Int32 { Glibc.connect(fd, a, len) }
    public static func accept(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>?, _ len: UnsafeMutablePointer<socklen_t>?) -> Int32 { Glibc.accept(fd, a, len) }
    #else
    @discardableResult public static func close(_ fd: Int32) -> Int32 { Musl.close(fd) }
    public static func write(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int { Musl.write(fd, p, n) }
    public static func send(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int, _ flags: Int32) -> Int { Musl.send(fd, p, n, flags) }
    public static func recv(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int, _ flags: Int32) -> Int { Musl.recv(fd, p, n, flags) }
    public static func connect(_ fd: Int32, _ a: UnsafePointer<sockaddr>?, _ len: socklen_t) -> Int32 { Musl.connect(fd, a, len) }
    public static func accept(_ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>?, _ len: UnsafeMutablePointer<socklen_t>?) -> Int32 { Musl.accept(fd, a, len) }
    #endif
}

extension Sys {
    /// A POSIX thread that is never joined (a connection's, bounded by its server's cap); false when
    /// none could be created. `pthread_t` is a value on glibc and an optional pointer on musl.
    public static func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        #if canImport(Glibc)
        var t = pthread_t()
        #else
        var t: pthread_t? = nil
        #endif
        let rc = pthread_create(&t, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, arg)
        guard rc == 0 else { Unmanaged<Box>.fromOpaque(arg).release(); return false }
        #if canImport(Glibc)
        pthread_detach(t)
        #else
        pthread_detach(t!)
        #endif
        return true
    }
}
