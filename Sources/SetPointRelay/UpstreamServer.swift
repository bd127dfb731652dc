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

    /// - Parameter allowedWriters: client IP addresses that may write; everyone may read.
    public init(host: String = "0.0.0.0", port: Int = 502, allowedWriters: Set<String>, software: (UInt16, UInt16, UInt16)) throws(ModbusError) {
        let writes = WriteLog()
        self.writes = writes
        server = try ModbusServer.tcp(host: host, port: port, layout: .init(holding: 0..<Map.end)) { req in
            guard req.isWrite else { return .reply }
            guard let peer = req.peer, allowedWriters.contains(peer) else { return .exception(.illegalFunction) }
            let first = req.address, last = Int(req.address) + req.count - 1
            // Writable: each site's remote block (3 registers) and the heartbeat register, nothing else.
            if first == Map.upstreamHeartbeat && req.count == 1 {
                writes.mark(first)
                return .reply
            }
            for j in 0..<UpstreamServer.maxSites where first >= Map.remote(j) && last <= Int(Map.remote(j)) + 2 {
                writes.mark(Map.remote(j))
                return .reply
            }
            return .exception(.illegalDataAddress)
        }
        server.setRegisters(.holding, address: Map.version, [Self.mapVersion, software.0, software.1, software.2])
    }

    public func stop() { server.stop() }

    /// Publishes one cycle; also advances the heartbeat counter.
    public func publish(_ s: Snapshot) {
        let f32 = RegisterCodec(.f32), u32 = RegisterCodec(.u32)
        func put(_ v: Double?, _ a: UInt16) { server.setRegisters(.holding, address: a, (try? f32.encode(v ?? .nan)) ?? [0x7FC0, 0]) }
        func putU32(_ v: UInt32, _ a: UInt16) { server.setRegisters(.holding, address: a, try! u32.encode(Double(v))) }
        server.setRegisters(.holding, address: Map.mode, [s.mode])
        putU32(s.alarmBits, Map.alarmBits)
        putU32(heartbeatCount.add(1, ordering: .relaxed).newValue, Map.heartbeat)
        putU32(s.cycles, Map.cycles)
        putU32(s.overruns, Map.overruns)
        putU32(s.trips, Map.trips)
        for (i, mp) in s.mps.prefix(Self.maxMeasurementPoints).enumerated() {
            let a = Map.mp(i)
            put(mp.value, a)
            server.setRegisters(.holding, address: a + 2, [mp.quality, mp.state])
            put(mp.limitW, a + 4)
        }
        for (j, site) in s.sites.prefix(Self.maxSites).enumerated() {
            let a = Map.site(j)
            put(site.setPointW, a)
            server.setRegisters(.holding, address: a + 2, [site.boundBy])
            put(site.pocImportW, a + 3)
            server.setRegisters(.holding, address: a + 5, [site.relayOK ? 1 : 0])
            put(site.appliedA, a + 6)
        }
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

