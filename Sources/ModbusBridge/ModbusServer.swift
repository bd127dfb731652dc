#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CModbus
import Synchronization

import LMCPlatform

/// A Modbus slave (server).
///
/// Used for the upstream interface (SCADA, DERMS, a CPMS that polls) and, in tests and the demo, to
/// stand in for a meter or charger. It serves from its own POSIX thread. The registers live in a
/// ``RegisterImage`` under a lock that is only ever held for in-memory work (a copy, or computing one
/// reply of at most 250 bytes) — never while sending or receiving — so a thread publishing values
/// (the control loop) never waits on a peer.
///
/// TCP is served with our own framing over non-blocking sockets and `poll()` (no `FD_SETSIZE` limit):
/// at most ``TCPLimits/maxClients`` connections (more are accepted and closed at once), each closed
/// when idle too long, when a frame does not complete within its deadline (a byte-dripping client),
/// or when its replies are not read within the send deadline (a client that never reads). RTU uses
/// libmodbus for framing and CRC and the same reply logic.
///
/// A ``Filter`` sees each request first and may answer it with an exception, drop it (the client times
/// out) or delay it — how write allow-lists and device faults are expressed.
public final class ModbusServer: Sendable {
    /// The address ranges the server holds; requests outside them get exception 0x02.
    public struct Layout: Sendable, Equatable {
        public var coils: Range<UInt16>
        public var discreteInputs: Range<UInt16>
        public var holding: Range<UInt16>
        public var input: Range<UInt16>

        public init(coils: Range<UInt16> = 0..<0, discreteInputs: Range<UInt16> = 0..<0,
                    holding: Range<UInt16> = 0..<0, input: Range<UInt16> = 0..<0) {
            self.coils = coils
            self.discreteInputs = discreteInputs
            self.holding = holding
            self.input = input
        }
    }

    /// What one TCP client may hold of the server.
    public struct TCPLimits: Sendable, Equatable {
        /// Connections served at once; one more is accepted and closed at once (counted as refused).
        public var maxClients: Int
        /// A connection without a complete request for this long is closed.
        public var idleTimeoutMilliseconds: Int
        /// A frame's bytes must all arrive within this time from its first byte.
        public var frameDeadlineMilliseconds: Int
        /// Replies waiting to be sent for this long (the client does not read) close the connection.
        public var sendDeadlineMilliseconds: Int

        public init(maxClients: Int = 16, idleTimeoutMilliseconds: Int = 60_000, frameDeadlineMilliseconds: Int = 1_000,
                    sendDeadlineMilliseconds: Int = 2_000) {
            self.maxClients = maxClients
            self.idleTimeoutMilliseconds = idleTimeoutMilliseconds
            self.frameDeadlineMilliseconds = frameDeadlineMilliseconds
            self.sendDeadlineMilliseconds = sendDeadlineMilliseconds
        }
    }

    /// Counters of the TCP server, for status and alarms.
    public struct Stats: Sendable, Equatable {
        public var open = 0
        public var accepted = 0
        /// Connections closed at once because ``TCPLimits/maxClients`` were already served.
        public var refused = 0
        public var closedIdle = 0
        /// A frame that did not complete within its deadline (a byte-dripping or stalled client).
        public var closedSlowFrame = 0
        /// Replies the client did not read within the send deadline.
        public var closedSlowReader = 0
        /// A header that is not Modbus TCP (protocol id, length).
        public var closedBadFrame = 0
    }

    /// A request as the filter sees it.
    public struct Request: Sendable, Equatable {
        public var unit: UInt8
        public var function: UInt8
        /// The first register or bit read or written. For function 23 (read/write multiple registers)
        /// the first one *written* — what a write allow-list must judge; the read range is `readAddress`.
        public var address: UInt16
        /// Registers or bits addressed (1 for functions 5, 6 and 22); for function 23, those written.
        public var count: Int
        /// The client's IP address (TCP) or nil (RTU).
        public var peer: String?
        /// Function 23 only: the registers read back.
        public var readAddress: UInt16? = nil
        public var readCount: Int? = nil

        public init(unit: UInt8, function: UInt8, address: UInt16, count: Int, peer: String?, readAddress: UInt16? = nil, readCount: Int? = nil) {
            self.unit = unit; self.function = function; self.address = address; self.count = count; self.peer = peer
            self.readAddress = readAddress; self.readCount = readCount
        }

        public var isWrite: Bool { [5, 6, 15, 16, 22, 23].contains(function) }
    }

    public enum Action: Sendable, Equatable {
        case reply
        case exception(ModbusException)
        /// Send nothing: the client sees a timeout.
        case drop
        /// Reply after a pause, e.g. to exceed the client's response timeout.
        case delay(milliseconds: Int)
    }

    public typealias Filter = @Sendable (Request) -> Action

    private struct Context: @unchecked Sendable { let pointer: OpaquePointer }

    private let image: Mutex<RegisterImage>
    private let context: Context?
    private let listener: Int32
    private let served = Atomic<Int>(0)
    private let counters = Mutex(Stats())
    private let loop = LoopThread()
    private let filter: Filter?
    public let limits: TCPLimits

    /// The TCP port actually bound (useful with port 0), or 0 for RTU.
    public let port: Int
    public let endpointDescription: String

    // MARK: Construction

    /// A TCP server on `host:port` (port 0: the kernel picks one; read ``port``). `host` is a numeric
    /// IPv4 or IPv6 address.
    public static func tcp(host: String = "127.0.0.1", port: Int = 0, layout: Layout, limits: TCPLimits = .init(),
                           filter: Filter? = nil) throws(ModbusError) -> ModbusServer {
        let where_ = "tcp \(host):\(port)"
        let v6 = host.contains(":")
        var storage = sockaddr_storage()
        var length: socklen_t
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(clamping: port).bigEndian)
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else {
                throw ModbusError(.invalidArgument("listen address \"\(host)\" is not a numeric IP address"), operation: "listen", endpoint: where_)
            }
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: a) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else {
                throw ModbusError(.invalidArgument("listen address \"\(host)\" is not a numeric IP address"), operation: "listen", endpoint: where_)
            }
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: a) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let fd = Seam.serverSocket(v6 ? AF_INET6 : AF_INET)
        guard fd >= 0 else { throw ModbusError(ModbusError.kind(fromErrno: errno), operation: "create server", endpoint: where_) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Seam.bindAndListen(fd, $0, length, 128) } }
        if rc != 0 {
            let e = errno
            Sys.close(fd)
            throw ModbusError(ModbusError.kind(fromErrno: e), operation: "listen", endpoint: where_)
        }
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let bound = withUnsafeBytes(of: storage) { raw -> Int in
            // sin_port and sin6_port are both at offset 2, big-endian.
            Int(UInt16(raw[2]) << 8 | UInt16(raw[3]))
        }
        let server = ModbusServer(ctx: nil, listener: fd, layout: layout, limits: limits, filter: filter, port: bound,
                                  description: "tcp \(host):\(bound)")
        server.start { server.serveTCP() }
        return server
    }

    /// An RTU server answering as `unit` on a serial line (or one end of a socat pty pair).
    public static func rtu(_ line: SerialLine, unit: UInt8, layout: Layout,
                           filter: Filter? = nil) throws(ModbusError) -> ModbusServer {
        let where_ = "rtu \(line)"
        guard let ctx = Seam.newRTU(line.device, Int32(line.baud),
                                    CChar(UInt8(ascii: line.parity.rawValue.unicodeScalars.first!)),
                                    Int32(line.dataBits), Int32(line.stopBits)) else {
            throw ModbusError(ModbusError.kind(fromErrno: errno), operation: "create server", endpoint: where_)
        }
        _ = Seam.setSlave(ctx, Int32(unit))
        if Seam.connect(ctx) == -1 {
            let e = errno
            Seam.free(ctx)
            throw ModbusError(ModbusError.kind(fromErrno: e), operation: "open", endpoint: where_)
        }
        _ = Seam.setIndicationTimeout(ctx, milliseconds: 50)
        // RTU frames end with silence: a short byte timeout lets a torn or misaligned frame fail on
        // its own before the next request arrives, so the server resynchronises instead of merging
        // the fragment with the next frame. libmodbus also waits this response timeout for another
        // unit's reply after ignoring a request that was not for us.
        _ = Seam.setByteTimeout(ctx, milliseconds: 20)
        _ = Seam.setResponseTimeout(ctx, milliseconds: 200)
        let server = ModbusServer(ctx: ctx, listener: -1, layout: layout, limits: .init(), filter: filter, port: 0, description: where_)
        server.start { server.serveRTU() }
        return server
    }

    private init(ctx: OpaquePointer?, listener: Int32, layout: Layout, limits: TCPLimits, filter: Filter?, port: Int, description: String) {
        image = Mutex(RegisterImage(layout))
        context = ctx.map(Context.init)
        self.listener = listener
        self.limits = limits
        self.filter = filter
        self.port = port
        self.endpointDescription = description
    }

    private func start(_ body: @escaping @Sendable () -> Void) { loop.start(body) }

    deinit {
        stop()
        if let context { Seam.free(context.pointer) }
    }

    /// Stops serving and closes every connection. Idempotent.
    public func stop() { loop.stop() }

    /// Requests answered so far (replies and exceptions).
    public var requestsServed: Int { served.load(ordering: .relaxed) }

    /// The TCP server's connection counters.
    public var stats: Stats { counters.withLock { $0 } }

    // MARK: Register access (each a short copy under the image lock)

    /// The offset of `address…+count` inside an area, or a precondition failure naming the range.
    private static func offset(_ address: UInt16, _ count: Int, start: Int, size: Int, _ table: RegisterTable) -> Int {
        let offset = Int(address) - start
        precondition(offset >= 0 && offset + count <= size, "\(address)+\(count) outside the \(table) layout")
        return offset
    }

    /// Sets registers in the holding or input table.
    public func setRegisters(_ table: RegisterTable, address: UInt16, _ values: [UInt16]) {
        image.withLock { m in
            if table == .input {
                let o = Self.offset(address, values.count, start: m.inputStart, size: m.input.count, table)
                m.input.replaceSubrange(o..<o + values.count, with: values)
            } else {
                let o = Self.offset(address, values.count, start: m.holdingStart, size: m.holding.count, table)
                m.holding.replaceSubrange(o..<o + values.count, with: values)
            }
        }
    }

    /// Several register blocks in one lock acquisition (a whole published cycle).
    public func setRegisterBlocks(_ table: RegisterTable, _ blocks: [(address: UInt16, values: [UInt16])]) {
        image.withLock { m in
            for (address, values) in blocks {
                if table == .input {
                    let o = Self.offset(address, values.count, start: m.inputStart, size: m.input.count, table)
                    m.input.replaceSubrange(o..<o + values.count, with: values)
                } else {
                    let o = Self.offset(address, values.count, start: m.holdingStart, size: m.holding.count, table)
                    m.holding.replaceSubrange(o..<o + values.count, with: values)
                }
            }
        }
    }

    /// Sets one value laid out by `codec`.
    public func set(_ value: Double, as codec: RegisterCodec, in table: RegisterTable, address: UInt16) throws(RegisterCodec.CodecError) {
        setRegisters(table, address: address, try codec.encode(value))
    }

    public func registers(_ table: RegisterTable, address: UInt16, count: Int) -> [UInt16] {
        image.withLock { m in
            if table == .input {
                let o = Self.offset(address, count, start: m.inputStart, size: m.input.count, table)
                return Array(m.input[o..<o + count])
            }
            let o = Self.offset(address, count, start: m.holdingStart, size: m.holding.count, table)
            return Array(m.holding[o..<o + count])
        }
    }

    public func setBits(_ table: RegisterTable, address: UInt16, _ values: [Bool]) {
        image.withLock { m in
            if table == .coils {
                let o = Self.offset(address, values.count, start: m.coilsStart, size: m.coils.count, table)
                for (i, v) in values.enumerated() { m.coils[o + i] = v ? 1 : 0 }
            } else {
                let o = Self.offset(address, values.count, start: m.discreteStart, size: m.discrete.count, table)
                for (i, v) in values.enumerated() { m.discrete[o + i] = v ? 1 : 0 }
            }
        }
    }

    public func bits(_ table: RegisterTable, address: UInt16, count: Int) -> [Bool] {
        image.withLock { m in
            if table == .coils {
                let o = Self.offset(address, count, start: m.coilsStart, size: m.coils.count, table)
                return m.coils[o..<o + count].map { $0 != 0 }
            }
            let o = Self.offset(address, count, start: m.discreteStart, size: m.discrete.count, table)
            return m.discrete[o..<o + count].map { $0 != 0 }
        }
    }

    // MARK: Serving

    private var stopping: Bool { loop.isStopping }

    /// What to do with one request: the filter's verdict, then the reply computed under the image lock
    /// (pure memory work). Returns the reply PDU and a delay, or nil to send nothing.
    private func answer(unit: UInt8, pdu: ArraySlice<UInt8>, peer: String?) -> (pdu: [UInt8], delayMs: Int)? {
        var delay = 0
        if let filter, case let .request(function, address, count, read) = RegisterImage.parse(pdu) {
            let request = Request(unit: unit, function: function, address: address, count: count, peer: peer,
                                  readAddress: read?.address, readCount: read?.count)
            switch filter(request) {
            case .drop: return nil
            case .exception(let x):
                served.add(1, ordering: .relaxed)
                return (RegisterImage.exceptionPDU(function, x), 0)
            case .delay(let ms): delay = ms
            case .reply: break
            }
        }
        let reply = image.withLock { $0.respond(to: pdu) }
        // Counted before replying, so a client that has its answer sees the count include it.
        served.add(1, ordering: .relaxed)
        return (reply, delay)
    }

    /// One TCP client's state in the poll loop.
    private struct Connection {
        var fd: Int32
        var peer: String?
        var framer = MBAPFramer()
        var queue: [MBAPFramer.Frame] = []
        var out: [UInt8] = []
        /// A delayed reply is not sent before this time (monotonic ns).
        var holdUntilNs: UInt64 = 0
        var lastRequestNs: UInt64
        var frameStartNs: UInt64 = 0
        /// Since when replies have been waiting for the client to read them.
        var outSinceNs: UInt64 = 0
    }

    private static let maxPendingOut = 1024

    private func serveTCP() {
        var clients: [Connection] = []
        var buf = [UInt8](repeating: 0, count: 1024)
        defer {
            for c in clients { Sys.close(c.fd) }
            Sys.close(listener)
            counters.withLock { $0.open = 0 }
        }
        let idleNs = UInt64(limits.idleTimeoutMilliseconds) * 1_000_000
        let frameNs = UInt64(limits.frameDeadlineMilliseconds) * 1_000_000
        let sendNs = UInt64(limits.sendDeadlineMilliseconds) * 1_000_000
        while !stopping {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            var now = monotonicNanoseconds()
            for c in clients {
                var events: Int16 = 0
                if c.queue.isEmpty && c.out.count < Self.maxPendingOut { events |= Int16(POLLIN) }
                if !c.out.isEmpty && now >= c.holdUntilNs { events |= Int16(POLLOUT) }
                fds.append(pollfd(fd: c.fd, events: events, revents: 0))
            }
            _ = poll(&fds, nfds_t(fds.count), 20)
            now = monotonicNanoseconds()
            var closing = Set<Int32>()
            func drop(_ i: Int, _ why: WritableKeyPath<Stats, Int>?) {
                closing.insert(clients[i].fd)
                if let why { counters.withLock { $0[keyPath: why] += 1 } }
            }
            for i in clients.indices {
                let r = fds[i + 1].revents
                if r & Int16(POLLIN | POLLHUP | POLLERR) != 0 && fds[i + 1].events & Int16(POLLIN) != 0 {
                    let n = buf.withUnsafeMutableBytes { Seam.recv(clients[i].fd, $0.baseAddress, $0.count) }
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { drop(i, nil); continue }
                    if n > 0 {
                        var completed = false
                        do {
                            let frames = try clients[i].framer.push(buf[0..<n])
                            completed = !frames.isEmpty
                            clients[i].queue += frames
                            if !frames.isEmpty { clients[i].lastRequestNs = now }
                        } catch {
                            drop(i, \.closedBadFrame)
                            continue
                        }
                        // A frame's deadline runs from its first byte (a new frame may start in the read that completed one).
                        if !clients[i].framer.isMidFrame { clients[i].frameStartNs = 0 } else if clients[i].frameStartNs == 0 || completed { clients[i].frameStartNs = now }
                    }
                } else if r & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 {
                    drop(i, nil)
                    continue
                }
                // Answer queued requests while the client keeps reading its replies.
                while !clients[i].queue.isEmpty && clients[i].out.count < Self.maxPendingOut && now >= clients[i].holdUntilNs {
                    let f = clients[i].queue.removeFirst()
                    guard let a = answer(unit: f.unit, pdu: f.pdu, peer: clients[i].peer) else { continue }
                    if clients[i].out.isEmpty { clients[i].outSinceNs = now }
                    clients[i].out += MBAPFramer.reply(to: f, pdu: a.pdu)
                    if a.delayMs > 0 {
                        clients[i].holdUntilNs = now + UInt64(a.delayMs) * 1_000_000
                        clients[i].outSinceNs = clients[i].holdUntilNs
                        break
                    }
                }
                if !clients[i].out.isEmpty && now >= clients[i].holdUntilNs {
                    let n = clients[i].out.withUnsafeBytes { Seam.send(clients[i].fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        clients[i].out.removeFirst(n)
                        if clients[i].out.isEmpty { clients[i].outSinceNs = 0 }
                    } else if n < 0 && errno != EAGAIN && errno != EINTR {
                        drop(i, nil)
                        continue
                    }
                }
                // While its replies wait (we do not read it), a frame's deadline does not run: the
                // send deadline judges that client.
                if clients[i].framer.isMidFrame && !(clients[i].queue.isEmpty && clients[i].out.count < Self.maxPendingOut) {
                    clients[i].frameStartNs = now
                }
                // Deadlines: a frame dripped byte by byte, replies not read, a silent connection.
                let c = clients[i]
                if c.framer.isMidFrame && c.frameStartNs != 0 && now &- c.frameStartNs > frameNs {
                    drop(i, \.closedSlowFrame)
                } else if !c.out.isEmpty && c.outSinceNs != 0 && now > c.outSinceNs && now - c.outSinceNs > sendNs {
                    drop(i, \.closedSlowReader)
                } else if c.queue.isEmpty && c.out.isEmpty && !c.framer.isMidFrame && now &- c.lastRequestNs > idleNs {
                    drop(i, \.closedIdle)
                }
            }
            if !closing.isEmpty {
                for fd in closing { Sys.close(fd) }
                clients.removeAll { closing.contains($0.fd) }
            }
            if fds[0].revents & Int16(POLLIN) != 0 {
                // Everything waiting, up to a bound per turn; beyond the cap: accepted and closed at once,
                // so a flood neither fills the backlog nor holds descriptors.
                for _ in 0..<64 {
                    let fd = Seam.acceptClient(listener)
                    if fd < 0 { break }
                    if clients.count >= limits.maxClients {
                        counters.withLock { $0.refused += 1 }
                        Sys.close(fd)
                        continue
                    }
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    // Replies are at most 260 bytes: a small kernel buffer lets a client that does not
                    // read meet the send deadline soon, and bounds what it holds of our memory.
                    var sndbuf: Int32 = 32 * 1024
                    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, socklen_t(MemoryLayout<Int32>.size))
                    clients.append(Connection(fd: fd, peer: peerAddress(fd), lastRequestNs: now))
                    counters.withLock { $0.accepted += 1 }
                }
            }
            let open = clients.count
            counters.withLock { $0.open = open }
        }
    }

    private func serveRTU() {
        guard let ctx = context?.pointer else { return }
        var buf = [UInt8](repeating: 0, count: Int(MODBUS_RTU_MAX_ADU_LENGTH))
        defer { Seam.close(ctx) }
        while !stopping {
            let n = buf.withUnsafeMutableBufferPointer { Seam.receive(ctx, $0.baseAddress!) }
            if n == -1 {
                if errno != ETIMEDOUT { _ = Seam.flush(ctx); usleep(1000) }
                continue
            }
            // unit, PDU, CRC (2 bytes)
            guard n >= 4 else { continue }
            let unit = buf[0]
            guard let a = answer(unit: unit, pdu: buf[1..<Int(n) - 2], peer: nil) else { continue }
            if a.delayMs > 0 { usleep(UInt32(a.delayMs) * 1000) }
            // A broadcast (unit 0) is applied and not answered.
            if unit == 0 { continue }
            let frame = [unit] + a.pdu
            _ = frame.withUnsafeBufferPointer { Seam.sendRaw(ctx, $0.baseAddress!, Int32($0.count)) }
        }
    }

    private func peerAddress(_ fd: Int32) -> String? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch Int32(storage.ss_family) {
        case AF_INET:
            var a = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr } }
            inet_ntop(AF_INET, &a, &text, socklen_t(text.count))
        case AF_INET6:
            var a = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr } }
            inet_ntop(AF_INET6, &a, &text, socklen_t(text.count))
        default:
            return nil
        }
        let s = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // An IPv4 client of a dual-stack socket: its IPv4 address, as allow-lists name it.
        return s.hasPrefix("::ffff:") && s.contains(".") ? String(s.dropFirst(7)) : s
    }
}
