import LMCPlatform
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ModbusBridge
import Synchronization

/// The upstream Modbus TCP server for SCADA, a central DERMS or a CPMS that polls (docs/modbus-map.md).
/// Everything is in holding registers; floats are float32, high word first, in SI units (W, VA, A, V).
/// Only the remote set points and the heartbeat register are writable, and only from the configured
/// client addresses: any other write is answered with a Modbus exception and changes nothing.
public final class UpstreamServer: Sendable {
    public static let mapVersion: UInt16 = 1
    public static let maxMeasurementPoints = 8
    public static let maxSites = 8

    /// Addresses of the map.
    public enum Map {
        public static let version: UInt16 = 0
        public static let software: UInt16 = 1          // major, minor, patch
        public static let mode: UInt16 = 10
        public static let alarmBits: UInt16 = 11         // u32
        public static let heartbeat: UInt16 = 13         // u32, +1 every control cycle
        public static let cycles: UInt16 = 15            // u32
        public static let overruns: UInt16 = 17          // u32
        public static let trips: UInt16 = 19             // u32
        public static func mp(_ i: Int) -> UInt16 { UInt16(100 + 10 * i) }     // value f32, quality u16, state u16, limit f32
        public static func site(_ j: Int) -> UInt16 { UInt16(200 + 20 * j) }  // set point f32, bound-by u16, poc f32, relay u16, applied A f32
        public static func remote(_ j: Int) -> UInt16 { UInt16(1000 + 10 * j) } // writable: set point W f32, validity s u16
        public static let upstreamHeartbeat: UInt16 = 1100                     // writable u16
        public static let end: UInt16 = 1101
    }

    /// One cycle's picture, published after each control cycle.
    public struct Snapshot: Sendable, Equatable {
        public struct MP: Sendable, Equatable {
            public var value: Double?, quality: UInt16, state: UInt16, limitW: Double?
            public init(value: Double?, quality: UInt16, state: UInt16, limitW: Double?) {
                self.value = value; self.quality = quality; self.state = state; self.limitW = limitW
            }
        }
        public struct Site: Sendable, Equatable {
            public var setPointW: Double, boundBy: UInt16, pocImportW: Double?, relayOK: Bool, appliedA: Double?
            public init(setPointW: Double, boundBy: UInt16, pocImportW: Double?, relayOK: Bool, appliedA: Double?) {
                self.setPointW = setPointW; self.boundBy = boundBy; self.pocImportW = pocImportW; self.relayOK = relayOK; self.appliedA = appliedA
            }
        }
        public var mode: UInt16
        public var alarmBits: UInt32
        public var cycles: UInt32
        public var overruns: UInt32
        public var trips: UInt32
        public var mps: [MP]
        public var sites: [Site]
        public init(mode: UInt16, alarmBits: UInt32, cycles: UInt32, overruns: UInt32, trips: UInt32, mps: [MP], sites: [Site]) {
            self.mode = mode; self.alarmBits = alarmBits; self.cycles = cycles; self.overruns = overruns; self.trips = trips
            self.mps = mps; self.sites = sites
        }
    }

    /// A remote set point as received: watts, validity, when (monotonic ns), from whom.
    public struct RemoteSetPoint: Sendable, Equatable {
        public var watts: Double
        public var validitySeconds: Double
        public var receivedAtNs: UInt64
    }

    private let server: ModbusServer
    private final class WriteLog: Sendable {
        let times = Mutex<[UInt16: UInt64]>([:])
        func mark(_ a: UInt16) { times.withLock { $0[a] = monotonicNanoseconds() } }
        func at(_ a: UInt16) -> UInt64? { times.withLock { $0[a] } }
    }
    private let writes: WriteLog
    private let heartbeatCount = Atomic<UInt32>(0)
    public var port: Int { server.port }

    /// - Parameters:
    ///   - host: the address to listen on: loopback unless the config names one (docs/config.md).
    ///   - allowedWriters: client IP addresses that may write; everyone may read.
    ///   - limits: connections, idle time, frame and send deadlines (a slow or hostile client holds
    ///     only its own connection, never the server nor the control loop).
    public init(host: String = "127.0.0.1", port: Int = 1502, allowedWriters: Set<String>, software: (UInt16, UInt16, UInt16),
                limits: ModbusServer.TCPLimits = .init()) throws(ModbusError) {
        let writes = WriteLog()
        self.writes = writes
        server = try ModbusServer.tcp(host: host, port: port, layout: .init(holding: 0..<Map.end), limits: limits) { req in
            guard req.isWrite else { return .reply }
            guard let peer = req.peer, allowedWriters.contains(peer) else { return .exception(.illegalFunction) }
            guard let block = UpstreamServer.writableBlock(address: req.address, count: req.count) else { return .exception(.illegalDataAddress) }
            writes.mark(block)
            return .reply
        }
        server.setRegisters(.holding, address: Map.version, [Self.mapVersion, software.0, software.1, software.2])
    }

    /// The writable block a write of `address…+count` falls in — each site's remote block (3 registers)
    /// or the heartbeat register — or nil: nothing else is writable. The server's filter is given the
    /// range *written*, also for function 23 (read/write multiple), whose read range may be anything.
    static func writableBlock(address first: UInt16, count: Int) -> UInt16? {
        guard count >= 1 else { return nil }
        let last = Int(first) + count - 1
        if first == Map.upstreamHeartbeat && count == 1 { return first }
        for j in 0..<UpstreamServer.maxSites where first >= Map.remote(j) && last <= Int(Map.remote(j)) + 2 { return Map.remote(j) }
        return nil
    }

    public func stop() { server.stop() }

    /// The connection counters (open, refused at the cap, closed for idling, dripping, not reading).
    public var stats: ModbusServer.Stats { server.stats }

    /// The registers of one published cycle, computed without any lock (pure).
    static func image(_ s: Snapshot, heartbeat: UInt32) -> [(address: UInt16, values: [UInt16])] {
        let f32 = RegisterCodec(.f32)
        func f(_ v: Double?) -> [UInt16] { (try? f32.encode(v ?? .nan)) ?? [0x7FC0, 0] }
        func u(_ v: UInt32) -> [UInt16] { [UInt16(v >> 16), UInt16(v & 0xFFFF)] }
        var blocks: [(address: UInt16, values: [UInt16])] = [
            (Map.mode, [s.mode] + u(s.alarmBits) + u(heartbeat) + u(s.cycles) + u(s.overruns) + u(s.trips)),
        ]
        for (i, mp) in s.mps.prefix(Self.maxMeasurementPoints).enumerated() {
            blocks.append((Map.mp(i), f(mp.value) + [mp.quality, mp.state] + f(mp.limitW)))
        }
        for (j, site) in s.sites.prefix(Self.maxSites).enumerated() {
            blocks.append((Map.site(j), f(site.setPointW) + [site.boundBy] + f(site.pocImportW) + [site.relayOK ? 1 : 0] + f(site.appliedA)))
        }
        return blocks
    }

    /// Publishes one cycle; also advances the heartbeat counter. Never waits on a client: the registers
    /// are computed first, then copied in under a lock the server holds only for in-memory work (it
    /// sends from its own copy of each reply, outside the lock, on non-blocking sockets).
    public func publish(_ s: Snapshot) {
        let blocks = Self.image(s, heartbeat: heartbeatCount.add(1, ordering: .relaxed).newValue)
        server.setRegisterBlocks(.holding, blocks)
    }

    /// The remote set point for site `j`, if one was ever written.
    public func remoteSetPoint(site j: Int) -> RemoteSetPoint? {
        guard let at = writes.at(Map.remote(j)) else { return nil }
        let regs = server.registers(.holding, address: Map.remote(j), count: 3)
        guard let w = try? RegisterCodec(.f32).decode(regs[0..<2]), w.isFinite, w >= 0 else { return nil }
        return RemoteSetPoint(watts: w, validitySeconds: Double(regs[2]), receivedAtNs: at)
    }

    /// When the upstream last wrote its heartbeat register (monotonic ns).
    public var upstreamHeartbeatAtNs: UInt64? { writes.at(Map.upstreamHeartbeat) }
}


/// The upstream server as the control loop keeps it: started when it can be, retried while it cannot
/// (the port taken, the address not on this box, no permission for a port below 1024), and its failure
/// readable as a value, so the loop raises an alarm instead of a box that silently serves no SCADA.
///
/// The loop calls ``tick(nowNs:)`` each cycle (cheap: a retry at most every `retrySeconds`), reads
/// ``server`` to publish and take remote set points, and raises an alarm while ``failure`` is set.
public final class UpstreamService {
    public struct Parameters: Sendable, Equatable {
        public var host: String, port: Int, allowedWriters: Set<String>, limits: ModbusServer.TCPLimits
        public var software: [UInt16]
        public init(host: String, port: Int, allowedWriters: Set<String>, limits: ModbusServer.TCPLimits = .init(), software: [UInt16] = [0, 1, 0]) {
            self.host = host; self.port = port; self.allowedWriters = allowedWriters; self.limits = limits; self.software = software
        }
    }

    public let parameters: Parameters
    public let retrySeconds: Double
    public private(set) var server: UpstreamServer?
    /// Why the server is not serving ("listen on tcp 127.0.0.1:502: permission denied"), nil while it serves.
    public private(set) var failure: String?
    /// When the current failure began (monotonic ns).
    public private(set) var failingSinceNs: UInt64?
    private var lastAttemptNs: UInt64?

    public init(_ p: Parameters, retrySeconds: Double = 10, nowNs: UInt64 = monotonicNanoseconds()) {
        parameters = p
        self.retrySeconds = retrySeconds
        attempt(nowNs)
    }

    private func attempt(_ nowNs: UInt64) {
        lastAttemptNs = nowNs
        do {
            let s = parameters.software + [0, 0, 0]
            server = try UpstreamServer(host: parameters.host, port: parameters.port, allowedWriters: parameters.allowedWriters,
                                        software: (s[0], s[1], s[2]), limits: parameters.limits)
            failure = nil
            failingSinceNs = nil
        } catch {
            failure = "upstream Modbus server not serving: \(error)"
            if failingSinceNs == nil { failingSinceNs = nowNs }
        }
    }

    /// Retries a failed bind every `retrySeconds`. Returns true when it changed (started or failed anew).
    @discardableResult
    public func tick(nowNs: UInt64) -> Bool {
        guard server == nil, let last = lastAttemptNs, nowNs &- last >= UInt64(retrySeconds * 1e9) else { return false }
        attempt(nowNs)
        return server != nil
    }

    public func stop() {
        server?.stop()
        server = nil
    }
}
