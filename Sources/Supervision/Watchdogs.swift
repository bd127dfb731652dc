#if canImport(Glibc)
import LMCPlatform
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET per message (READY=1, WATCHDOG=1,
/// STATUS=…). The daemon sends WATCHDOG=1 only after a control cycle completed on time, so a stalled
/// loop is restarted by systemd (OpenEMS: the watchdog is fed from a completed cycle only).
public struct SystemdNotifier: Sendable {
    public let socketPath: String?

    /// From the environment (`NOTIFY_SOCKET`); nil when not started by systemd with Type=notify.
    public init(socketPath: String? = getenv("NOTIFY_SOCKET").map { String(cString: $0) }) {
        self.socketPath = socketPath?.isEmpty == true ? nil : socketPath
    }

    public var isEnabled: Bool { socketPath != nil }

    /// The watchdog interval systemd asks for ($WATCHDOG_USEC), in seconds, if any.
    public static var watchdogInterval: Double? {
        guard let v = getenv("WATCHDOG_USEC").flatMap({ Double(String(cString: $0)) }), v > 0 else { return nil }
        return v / 1_000_000
    }

    /// Sends one message; returns false (and sends nothing) when not under systemd or on failure.
    @discardableResult
    public func send(_ message: String) -> Bool {
        guard let path = socketPath else { return false }
        let fd = socket(AF_UNIX, Sys.sockDgram | Sys.sockCloexec, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let sent = message.withCString { text in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == message.utf8.count
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func watchdog() { send("WATCHDOG=1") }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func stopping() { send("STOPPING=1") }
}

/// The Linux hardware watchdog (/dev/watchdog): any write pets it; writing "V" before closing disarms
/// it (magic close), so a clean stop does not reset the box while a crash or hang does.
public final class HardwareWatchdog {
    private var fd: Int32
    public let path: String

    public init(path: String = "/dev/watchdog") throws(WatchdogError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw WatchdogError(path: path, errno: errno) }
    }

    /// Pets the watchdog.
    public func pet() throws(WatchdogError) {
        guard write(fd, "1", 1) == 1 else { throw WatchdogError(path: path, errno: errno) }
    }

    /// Disarms with the magic character and closes.
    public func disarm() {
        guard fd >= 0 else { return }
        _ = write(fd, "V", 1)
        close(fd)
        fd = -1
    }

    deinit { if fd >= 0 { close(fd) } }  // no magic close: an unclean end keeps the watchdog armed
}

public struct WatchdogError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var errno: Int32
    public var description: String { "\(path): \(String(cString: strerror(errno))) (is the watchdog driver loaded and the service allowed to open it?)" }
}
