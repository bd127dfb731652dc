import LMCPlatform
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The outstation over TCP (DNP3/IP, IEEE 1815-2012 annex on TCP/IP: the link layer frames carried
/// as a byte stream). It serves from its own POSIX thread with non-blocking sockets and `poll()`. The
/// control loop calls ``publish(_:)``, which holds the outstation's lock only to compare values and
/// queue events (in-memory work, no I/O); the network thread takes the same lock only to answer one
/// fragment, and sends outside it. So the loop never waits on a master.
///
/// One master connection at a time: a new connection from an allowed address replaces the old one
/// (a master that reconnects after a network break is not locked out by its own dead socket).
/// Connections from addresses not in `allowedIPs` are closed at once.
public final class DNP3Server: Sendable {
    public struct Parameters: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var allowedIPs: Set<String>
        public var outstation: OutstationConfig
        /// Replies not read by the master within this time close the connection.
        public var sendDeadlineMs: Int
        public init(host: String = "127.0.0.1", port: Int = 20000, allowedIPs: Set<String> = ["127.0.0.1"],
                    outstation: OutstationConfig = .init(), sendDeadlineMs: Int = 2_000) {
            self.host = host; self.port = port; self.allowedIPs = allowedIPs; self.outstation = outstation; self.sendDeadlineMs = sendDeadlineMs
        }
    }

    public struct Status: Sendable, Equatable {
        public var connectedPeer: String?
        public var connections = 0
        public var refused = 0
        /// When the master's last request arrived (monotonic ns).
        public var lastRequestNs: UInt64?
        public var requests = 0
        public var framesDropped = 0
        public var lastNote: String?
    }

    public enum ServerError: Error, Equatable, CustomStringConvertible {
        case badAddress(String)
        case socket(operation: String, errno: Int32, endpoint: String)
        public var description: String {
            switch self {
            case .badAddress(let h): return "DNP3 listen address \"\(h)\" is not a numeric IP address ([dnp3] listen)"
            case .socket(let op, let e, let ep): return "DNP3 \(op) on tcp \(ep): \(String(cString: strerror(e)))"
            }
        }
    }

    private let state: Mutex<Outstation>
    private let operationsBox = Mutex<[Outstation.Operation]>([])
    private let statusBox = Mutex(Status())
    private let loop = LoopThread()
    private let listener: Int32
    /// A pipe the publisher writes a byte to when it queued events: the network thread wakes at once
    /// to send them unsolicited instead of at its next 50 ms turn.
    private let wake: (read: Int32, write: Int32)
    public let parameters: Parameters
    /// The point map served.
    public let map: PointMap
    /// The port actually bound (port 0 lets the kernel pick).
    public let port: Int
    private let utcMs: @Sendable () -> UInt64

    public init(_ p: Parameters, map: PointMap = .standard,
                utcMs: @escaping @Sendable () -> UInt64 = { DNP3Server.wallClockMs() }) throws(ServerError) {
        parameters = p
        self.map = map
        self.utcMs = utcMs
        state = Mutex(Outstation(map: map, config: p.outstation))
        let endpoint = "\(p.host):\(p.port)"
        let v6 = p.host.contains(":")
        var storage = sockaddr_storage()
        var length: socklen_t
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(clamping: p.port).bigEndian)
            guard inet_pton(AF_INET6, p.host, &a.sin6_addr) == 1 else { throw .badAddress(p.host) }
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: a) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(clamping: p.port).bigEndian)
            guard inet_pton(AF_INET, p.host, &a.sin_addr) == 1 else { throw .badAddress(p.host) }
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: a) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let fd = socket(v6 ? AF_INET6 : AF_INET, Sys.sockStream | Sys.sockCloexec | Sys.sockNonblock, 0)
        guard fd >= 0 else { throw .socket(operation: "socket", errno: errno, endpoint: endpoint) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard rc == 0, listen(fd, 8) == 0 else {
            let e = errno
            Sys.close(fd)
            throw .socket(operation: "listen", errno: e, endpoint: endpoint)
        }
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = withUnsafeBytes(of: storage) { Int(UInt16($0[2]) << 8 | UInt16($0[3])) }
        listener = fd
        var p: [Int32] = [-1, -1]
        if pipe(&p) == 0 {
            for e in p { _ = fcntl(e, F_SETFL, fcntl(e, F_GETFL) | O_NONBLOCK); _ = fcntl(e, F_SETFD, FD_CLOEXEC) }
        }
        wake = (p[0], p[1])
        loop.start { [self] in serve() }
    }

    public static func wallClockMs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    private func clock() -> OutstationClock { OutstationClock(utcMs: utcMs(), monoMs: monotonicNanoseconds() / 1_000_000) }

    /// The control loop's picture of every point (SI units). Never waits on the network.
    public func publish(_ values: PointValues) {
        let c = clock()
        let queued = state.withLock { o -> Bool in
            let last = o.events.events.last?.id
            o.update(values, clock: c)
            return o.events.events.last?.id != last
        }
        if queued && wake.write >= 0 {
            var b: UInt8 = 1
            _ = Sys.write(wake.write, &b, 1)   // non-blocking: a full pipe already means "wake up"
        }
    }

    /// A closed half hour (see ``Outstation/recordHalfHour(_:endUtcMs:)``); wakes the network thread.
    public func recordHalfHour(_ analogs: [Int: Double?], endUtcMs: UInt64) {
        state.withLock { $0.recordHalfHour(analogs, endUtcMs: endUtcMs) }
        if wake.write >= 0 { var b: UInt8 = 1; _ = Sys.write(wake.write, &b, 1) }
    }

    /// Operates carried out since the last call, oldest first.
    public func takeOperations() -> [Outstation.Operation] { operationsBox.withLock { ops in defer { ops = [] }; return ops } }

    public var status: Status { statusBox.withLock { $0 } }

    /// Unsolicited responses given up after their retries, and whether one is waiting for its confirm.
    public var unsolicitedSummary: (givenUp: Int, awaitingConfirm: Bool, failing: Bool) {
        state.withLock { ($0.unsolicitedGivenUp, $0.pendingUnsolicited != nil, $0.unsolicitedFailing) }
    }

    /// A copy of the outstation's state (tests, status).
    public var outstation: Outstation { state.withLock { $0 } }

    public func stop() { loop.stop() }

    deinit { loop.stop() }

    // MARK: The network thread

    private struct Connection {
        var fd: Int32
        var peer: String
        var parser = LinkStreamParser()
        var transport = TransportReassembler()
        var out: [UInt8] = []
        var outSinceNs: UInt64 = 0
        var txSeq: UInt8 = 0
    }

    /// Response bytes waiting for a master before its requests are no longer read.
    static let maxPendingOut = 64 * 1024

    private func serve() {
        var conn: Connection? = nil
        var buf = [UInt8](repeating: 0, count: 4096)
        defer {
            if let c = conn { Sys.close(c.fd) }
            Sys.close(listener)
            if wake.read >= 0 { Sys.close(wake.read); Sys.close(wake.write) }
        }
        while !loop.isStopping {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            // A master that does not read its responses is not read either (TCP holds it back), and is
            // cut after the send deadline.
            if let c = conn {
                fds.append(pollfd(fd: c.fd, events: (c.out.count < Self.maxPendingOut ? Int16(POLLIN) : 0) | (c.out.isEmpty ? 0 : Int16(POLLOUT)), revents: 0))
            }
            _ = poll(&fds, nfds_t(fds.count), 50)
            if fds[1].revents & Int16(POLLIN) != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while drain.withUnsafeMutableBytes({ readFD(wake.read, $0) }) > 0 {}
            }
            if fds[0].revents & Int16(POLLIN) != 0 { accept(&conn) }
            guard var c = conn, fds.count > 2, c.fd == fds[2].fd else { continue }
            let r = fds[2].revents
            var closed = false
            if r & Int16(POLLIN | POLLHUP | POLLERR) != 0 && fds[2].events & Int16(POLLIN) != 0 {
                let n = buf.withUnsafeMutableBytes { Sys.recv(c.fd, $0.baseAddress, $0.count, 0) }
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
                    closed = true
                } else if n > 0 {
                    let before = c.parser.errorCount + c.transport.drops
                    let frames = c.parser.feed(buf[0..<n])
                    for f in frames { receive(f, &c) }
                    let dropped = c.parser.errorCount + c.transport.drops - before
                    if dropped > 0 { statusBox.withLock { $0.framesDropped += dropped } }
                }
            } else if r & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                closed = true
            }
            // Unsolicited responses go out while a master is connected: checked every turn (≤ 50 ms),
            // at once when the publisher queued events, and after every request (a confirm may
            // have made way for the next one).
            if !closed, let master = parameters.outstation.masterAddresses.min(), c.out.count < Self.maxPendingOut {
                let clk = clock()
                if let u = state.withLock({ $0.pollUnsolicited(clock: clk) }) { enqueue(u, to: master, &c) }
            }
            if !closed && !c.out.isEmpty {
                let n = c.out.withUnsafeBytes { Sys.send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 { c.out.removeFirst(n); c.outSinceNs = monotonicNanoseconds() }
                else if n < 0 && errno != EAGAIN && errno != EINTR { closed = true }
                if !c.out.isEmpty && monotonicNanoseconds() &- c.outSinceNs > UInt64(parameters.sendDeadlineMs) * 1_000_000 { closed = true }
            }
            if closed {
                Sys.close(c.fd)
                conn = nil
                statusBox.withLock { $0.connectedPeer = nil }
            } else {
                conn = c
            }
        }
    }

    private func accept(_ conn: inout Connection?) {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Sys.accept(listener, $0, &len) } }
        guard fd >= 0 else { return }
        let peer = Self.address(storage)
        guard parameters.allowedIPs.contains(peer) else {
            // Counted before the close: whoever sees the connection closed sees it counted.
            statusBox.withLock { $0.refused += 1; $0.lastNote = "refused a connection from \(peer): not in [dnp3] allowed_ips" }
            Sys.close(fd)
            return
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if let old = conn { Sys.close(old.fd) }
        conn = Connection(fd: fd, peer: peer)
        state.withLock { $0.connectionOpened() }
        statusBox.withLock { $0.connectedPeer = peer; $0.connections += 1 }
    }

    static func address(_ s: sockaddr_storage) -> String {
        var copy = s
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if Int32(s.ss_family) == AF_INET {
            withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p in
                var a = p.pointee.sin_addr
                _ = inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
            } }
        } else {
            withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                var a = p.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
            } }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// One link frame from the master.
    private func receive(_ f: LinkFrame, _ c: inout Connection) {
        let cfg = parameters.outstation
        guard f.destination == cfg.localAddress, cfg.masterAddresses.contains(f.source), f.fromMaster else {
            statusBox.withLock { $0.framesDropped += 1; $0.lastNote = "dropped a link frame from \(f.source) to \(f.destination)" }
            return
        }
        func reply(_ fn: LinkSecondaryFunction) {
            c.out += LinkFrame(fromMaster: false, primary: false, function: fn.rawValue, destination: f.source, source: cfg.localAddress).encode()
        }
        guard f.primary else { return }   // acknowledgements of ours: we send no confirmed frames
        switch LinkFunction(rawValue: f.function) {
        case .requestLinkStatus?: reply(.linkStatus)
        case .resetLinkStates?, .testLinkStates?: reply(.ack)
        case .confirmedUserData?:
            reply(.ack)
            deliver(f, &c)
        case .unconfirmedUserData?: deliver(f, &c)
        case nil: reply(.notSupported)
        }
    }

    private func deliver(_ f: LinkFrame, _ c: inout Connection) {
        guard let fragment = c.transport.receive(f.userData) else { return }
        let clk = clock()
        let out = state.withLock { $0.handle(fragment, source: f.source, clock: clk) }
        statusBox.withLock { s in
            s.requests += 1
            s.lastRequestNs = clk.monoMs * 1_000_000
            if let n = out.note { s.lastNote = n }
        }
        if !out.operations.isEmpty { operationsBox.withLock { $0 += out.operations } }
        guard let resp = out.response else { return }
        enqueue(resp, to: f.source, &c)
    }

    /// A fragment as transport segments in unconfirmed user data frames.
    private func enqueue(_ fragment: [UInt8], to destination: UInt16, _ c: inout Connection) {
        let (segments, next) = Transport.segment(fragment, seq: c.txSeq)
        c.txSeq = next
        if c.out.isEmpty { c.outSinceNs = monotonicNanoseconds() }
        for s in segments {
            c.out += LinkFrame(fromMaster: false, primary: true, function: LinkFunction.unconfirmedUserData.rawValue,
                               destination: destination, source: parameters.outstation.localAddress, userData: s).encode()
        }
    }
}

/// read(2) at file scope (no method of the server shadows it).
private func readFD(_ fd: Int32, _ buf: UnsafeMutableRawBufferPointer) -> Int { read(fd, buf.baseAddress, buf.count) }
