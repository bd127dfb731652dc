#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CModbus
import Synchronization

/// A Modbus slave (server) backed by libmodbus's own register mapping and reply logic.
///
/// Used for the upstream interface (SCADA, DERMS, a CPMS that polls) and, in tests and the demo, to
/// stand in for a meter or charger. It serves from its own POSIX thread; register values are read and
/// written from any thread under a lock. A ``Filter`` sees each request first and may answer it with an
/// exception, drop it (the client times out) or delay it — how write allow-lists and device faults are
/// expressed.
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

    /// A request as the filter sees it.
    public struct Request: Sendable, Equatable {
        public var unit: UInt8
        public var function: UInt8
        public var address: UInt16
        /// Registers or bits addressed (1 for functions 5 and 6).
        public var count: Int
        /// The client's IP address (TCP) or nil (RTU).
        public var peer: String?

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

    private struct Mapping: @unchecked Sendable { let pointer: UnsafeMutablePointer<modbus_mapping_t> }
    private struct Context: @unchecked Sendable { let pointer: OpaquePointer }

    private let mapping: Mutex<Mapping>
    private let context: Context
    private let served = Atomic<Int>(0)
    private let loop = LoopThread()
    private let filter: Filter?

    /// The TCP port actually bound (useful with port 0), or 0 for RTU.
    public let port: Int
    public let endpointDescription: String

    // MARK: Construction

    /// A TCP server on `host:port` (port 0: the kernel picks one; read ``port``).
    public static func tcp(host: String = "127.0.0.1", port: Int = 0, layout: Layout,
                           filter: Filter? = nil) throws(ModbusError) -> ModbusServer {
        let where_ = "tcp \(host):\(port)"
        guard let ctx = Seam.newTCPServer(host, Int32(port)) else {
            throw ModbusError(ModbusError.kind(fromErrno: errno), operation: "create server", endpoint: where_)
        }
        let listener = Seam.tcpListen(ctx, 16)
        if listener == -1 {
            let e = errno
            Seam.free(ctx)
            throw ModbusError(ModbusError.kind(fromErrno: e), operation: "listen", endpoint: where_)
        }
        var addr = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        let bound = Int(UInt16(bigEndian: addr.sin_port))
        let server = try ModbusServer(ctx: ctx, layout: layout, filter: filter, port: bound,
                                      description: "tcp \(host):\(bound)")
        server.start { server.serveTCP(listener: listener) }
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
        let server = try ModbusServer(ctx: ctx, layout: layout, filter: filter, port: 0, description: where_)
        server.start { server.serveRTU() }
        return server
    }

    private init(ctx: OpaquePointer, layout: Layout, filter: Filter?, port: Int, description: String) throws(ModbusError) {
        func span(_ r: Range<UInt16>) -> (UInt32, UInt32) { (UInt32(r.lowerBound), UInt32(r.count)) }
        let (cs, cn) = span(layout.coils), (ds, dn) = span(layout.discreteInputs)
        let (hs, hn) = span(layout.holding), (isx, inn) = span(layout.input)
        guard let m = Seam.mappingNew(bitsStart: cs, bits: cn, inputBitsStart: ds, inputBits: dn,
                                      registersStart: hs, registers: hn, inputRegistersStart: isx, inputRegisters: inn) else {
            Seam.free(ctx)
            throw ModbusError(.system(errno), operation: "allocate register mapping", endpoint: description)
        }
        mapping = Mutex(Mapping(pointer: m))
        context = Context(pointer: ctx)
        self.filter = filter
        self.port = port
        self.endpointDescription = description
    }

    private func start(_ body: @escaping @Sendable () -> Void) { loop.start(body) }

    deinit {
        stop()
        mapping.withLock { Seam.mappingFree($0.pointer) }
        Seam.free(context.pointer)
    }

    /// Stops serving and closes every connection. Idempotent.
    public func stop() { loop.stop() }

    /// Requests answered so far (replies and exceptions).
    public var requestsServed: Int { served.load(ordering: .relaxed) }

    // MARK: Register access

    /// The mapping's storage for one table: base pointer, first address, size. Bits are one byte each.
    private static func registerArea(_ m: Mapping, _ table: RegisterTable) -> (UnsafeMutablePointer<UInt16>, Int, Int) {
        let p = m.pointer.pointee
        return table == .input
            ? (p.tab_input_registers, Int(p.start_input_registers), Int(p.nb_input_registers))
            : (p.tab_registers, Int(p.start_registers), Int(p.nb_registers))
    }

    private static func bitArea(_ m: Mapping, _ table: RegisterTable) -> (UnsafeMutablePointer<UInt8>, Int, Int) {
        let p = m.pointer.pointee
        return table == .coils
            ? (p.tab_bits, Int(p.start_bits), Int(p.nb_bits))
            : (p.tab_input_bits, Int(p.start_input_bits), Int(p.nb_input_bits))
    }

    /// The offset of `address…+count` inside an area, or a precondition failure naming the range.
    private static func offset(_ address: UInt16, _ count: Int, start: Int, size: Int, _ table: RegisterTable) -> Int {
        let offset = Int(address) - start
        precondition(offset >= 0 && offset + count <= size, "\(address)+\(count) outside the \(table) layout")
        return offset
    }

    /// Sets registers in the holding or input table.
    public func setRegisters(_ table: RegisterTable, address: UInt16, _ values: [UInt16]) {
        mapping.withLock { m in
            let (base, start, size) = Self.registerArea(m, table)
            let o = Self.offset(address, values.count, start: start, size: size, table)
            for (i, v) in values.enumerated() { base[o + i] = v }
        }
    }

    /// Sets one value laid out by `codec`.
    public func set(_ value: Double, as codec: RegisterCodec, in table: RegisterTable, address: UInt16) throws(RegisterCodec.CodecError) {
        setRegisters(table, address: address, try codec.encode(value))
    }

    public func registers(_ table: RegisterTable, address: UInt16, count: Int) -> [UInt16] {
        mapping.withLock { m in
            let (base, start, size) = Self.registerArea(m, table)
            let o = Self.offset(address, count, start: start, size: size, table)
            return (0..<count).map { base[o + $0] }
        }
    }

    public func setBits(_ table: RegisterTable, address: UInt16, _ values: [Bool]) {
        mapping.withLock { m in
            let (base, start, size) = Self.bitArea(m, table)
            let o = Self.offset(address, values.count, start: start, size: size, table)
            for (i, v) in values.enumerated() { base[o + i] = v ? 1 : 0 }
        }
    }

    public func bits(_ table: RegisterTable, address: UInt16, count: Int) -> [Bool] {
        mapping.withLock { m in
            let (base, start, size) = Self.bitArea(m, table)
            let o = Self.offset(address, count, start: start, size: size, table)
            return (0..<count).map { base[o + $0] != 0 }
        }
    }

    // MARK: Serving

    private var stopping: Bool { loop.isStopping }

    private func serveTCP(listener: Int32) {
        let ctx = context.pointer
        var listenSocket = listener
        var clients: [Int32: String] = [:]
        var buf = [UInt8](repeating: 0, count: Int(MODBUS_TCP_MAX_ADU_LENGTH))
        defer {
            for fd in clients.keys { close(fd) }
            close(listener)
        }
        while !stopping {
            var set = fd_set()
            lmc_fd_zero(&set)
            lmc_fd_set(listener, &set)
            var maxFD = listener
            for fd in clients.keys { lmc_fd_set(fd, &set); maxFD = max(maxFD, fd) }
            var tv = timeval(tv_sec: 0, tv_usec: 50_000)
            let ready = select(maxFD + 1, &set, nil, nil, &tv)
            if ready <= 0 { continue }
            if lmc_fd_isset(listener, &set) != 0 {
                let fd = Seam.tcpAccept(ctx, &listenSocket)
                if fd >= 0 { clients[fd] = peerAddress(fd) }
            }
            for (fd, peer) in clients where lmc_fd_isset(fd, &set) != 0 {
                _ = Seam.setSocket(ctx, fd)
                let n = buf.withUnsafeMutableBufferPointer { Seam.receive(ctx, $0.baseAddress!) }
                if n == -1 {
                    close(fd)
                    clients[fd] = nil
                    continue
                }
                if n > 0 { handle(ctx, &buf, Int(n), peer: peer) }
            }
        }
    }

    private func serveRTU() {
        let ctx = context.pointer
        var buf = [UInt8](repeating: 0, count: Int(MODBUS_RTU_MAX_ADU_LENGTH))
        defer { Seam.close(ctx) }
        while !stopping {
            let n = buf.withUnsafeMutableBufferPointer { Seam.receive(ctx, $0.baseAddress!) }
            if n == -1 {
                if errno != ETIMEDOUT { _ = Seam.flush(ctx); usleep(1000) }
                continue
            }
            if n > 0 { handle(ctx, &buf, Int(n), peer: nil) }
        }
    }

    private func handle(_ ctx: OpaquePointer, _ buf: inout [UInt8], _ length: Int, peer: String?) {
        let h = Int(Seam.headerLength(ctx))
        guard length > h + 4 else { return }
        let function = buf[h]
        let address = UInt16(buf[h + 1]) << 8 | UInt16(buf[h + 2])
        let count: Int = (function == 5 || function == 6) ? 1 : Int(UInt16(buf[h + 3]) << 8 | UInt16(buf[h + 4]))
        let request = Request(unit: buf[h - 1], function: function, address: address, count: count, peer: peer)
        var action = filter?(request) ?? .reply
        if case let .delay(ms) = action {
            usleep(UInt32(ms) * 1000)
            action = .reply
        }
        if action == .drop { return }
        // Counted before replying, so a client that has its answer sees the count include it.
        served.add(1, ordering: .relaxed)
        switch action {
        case .drop:
            return
        case .exception(let x):
            _ = buf.withUnsafeBufferPointer { Seam.replyException(ctx, $0.baseAddress!, UInt32(x.rawValue)) }
        case .reply, .delay:
            mapping.withLock { m in
                _ = buf.withUnsafeBufferPointer { Seam.reply(ctx, $0.baseAddress!, Int32(length), m.pointer) }
            }
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
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
