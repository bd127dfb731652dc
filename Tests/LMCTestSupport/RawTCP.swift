import Foundation

/// A plain TCP client to a loopback port for tests that misbehave on purpose (never read, drip bytes,
/// send raw frames). Loopback only: the constructor refuses any other address.
public final class RawTCP {
    public private(set) var fd: Int32

    public init(port: Int, host: String = "127.0.0.1", receiveBuffer: Int32? = nil) throws {
        guard host == "127.0.0.1" || host.hasPrefix("127.") else { throw PeerError("RawTCP is for loopback only, not \(host)") }
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { fd = -1; throw PeerError("socket: \(errno)") }
        if var rb = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, socklen_t(MemoryLayout<Int32>.size)) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &a.sin_addr)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { let e = errno; Glibc.close(fd); fd = -1; throw PeerError("connect 127.0.0.1:\(port): \(String(cString: strerror(e)))") }
    }

    /// Sends all bytes (bounded by the 2 s send timeout); returns how many went.
    @discardableResult public func send(_ bytes: [UInt8]) -> Int {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }

    /// Non-blocking send of as much as fits; returns how many went (0 when the buffers are full).
    public func trySend(_ bytes: [UInt8]) -> Int {
        let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(0, n)
    }

    /// Reads what arrives within the 2 s receive timeout, up to `max` bytes ([] on EOF or timeout).
    public func receive(max: Int = 4096) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = recv(fd, &buf, max, 0)
        return n > 0 ? Array(buf[0..<n]) : []
    }

    /// True once the server has closed the connection (EOF or reset), polling up to `seconds`.
    public func closedByPeer(within seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 50) > 0 {
                let n = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
                if n == 0 || (n < 0 && errno != EAGAIN) { return true }
            }
        }
        return false
    }

    public func close() { if fd >= 0 { Glibc.close(fd); fd = -1 } }
    deinit { close() }

    /// A Modbus TCP request frame: MBAP header (transaction, protocol 0, length, unit) and the PDU.
    public static func mbap(transaction: UInt16 = 1, unit: UInt8 = 1, pdu: [UInt8]) -> [UInt8] {
        let length = pdu.count + 1
        return [UInt8(transaction >> 8), UInt8(transaction & 0xFF), 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), unit] + pdu
    }
}

/// A loopback TCP server for tests that play a hostile peer: each connection is handed to `serve` on
/// its own thread (the handler gets the fd and must return; the server closes it). Stops with `stop()`
/// or when released; at most `maxConnections` are served in all (bounded work).
public final class RawServer: @unchecked Sendable {
    public let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?

    public init(maxConnections: Int = 50, serve: @escaping @Sendable (Int32) -> Void) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, listen(fd, 16) == 0 else { Glibc.close(fd); throw PeerError("RawServer: cannot listen") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: a.sin_port))
        let listener = fd
        let t = Thread { [weak self] in
            var served = 0
            while served < maxConnections {
                guard let self, !self.isStopping else { return }
                var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 50) > 0 else { continue }
                let c = accept(listener, nil, nil)
                guard c >= 0 else { continue }
                served += 1
                Thread.detachNewThread { serve(c); Glibc.close(c) }
            }
        }
        thread = t
        t.start()
    }

    var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    public func stop() {
        lock.lock(); let was = stopping; stopping = true; lock.unlock()
        if !was { usleep(100_000); Glibc.close(fd) }
    }
    deinit { stop() }

    /// Reads what the client sends until a blank line (and at most 64 KiB or 3 s).
    public static func readHead(_ c: Int32) -> String {
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while got.count < 65_536 {
            let n = recv(c, &buf, buf.count, 0)
            if n <= 0 { break }
            got += buf[0..<n]
            if String(decoding: got, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        return String(decoding: got, as: UTF8.self)
    }

    public static func write(_ c: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
