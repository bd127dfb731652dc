import LMCPlatform
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ModbusBridge
import Synchronization

/// One poll of a meter: every quantity of its profile in SI units, when the reply arrived, how good it
/// is. A bad reading carries no values pretending to be measurements (STYLE.md: absence is never zero).
public struct MeterReading: Sendable, Equatable {
    public var meter: String
    public var values: [Quantity: Double]
    /// Derived, not measured (apparent power from nominal voltage on a CT-only meter).
    public var estimated: Set<Quantity>
    /// Monotonic ns at which the device's reply arrived (or the failure was seen).
    public var monotonicNs: UInt64
    public var quality: Quality
    /// The Modbus error behind a bad reading, for the console.
    public var error: String?

    /// Apparent power (VA), from the meter's total, its phases, or currents × nominal voltage.
    public var apparentPower: Double? { values[.apparentPowerTotal] }

    /// Phase currents present, in phase order.
    public var currents: [Double] { [Quantity.currentL1, .currentL2, .currentL3].compactMap { values[$0] } }
}

/// Polls one meter (a unit on a bus) with its profile and judges each reading.
public final class MeterPoller {
    /// What a poll reads: the registers control needs (the daemon; `MeterProfile.controlReads`), or
    /// every register of the profile (`lmc meter read`).
    public enum Scope: Sendable { case control, all }

    public let name: String
    public let profile: MeterProfile
    public let unit: UInt8
    /// The requests each poll makes, in order.
    public let plan: [(address: UInt16, count: Int)]
    private let specs: [RegisterSpec]
    private var judge: QualityJudge

    /// `line`: the serial line the meter is on (nil over TCP), which decides which gaps are worth reading across.
    public init(name: String, profile: MeterProfile, unit: UInt8, rules: QualityRules = .init(), line: SerialLine? = nil, scope: Scope = .control) {
        self.name = name
        self.profile = profile
        self.unit = unit
        self.judge = QualityJudge(rules)
        switch scope {
        case .control:
            plan = profile.controlReads(on: line)
            specs = profile.controlRegisters
        case .all:
            plan = profile.reads
            specs = profile.registers
        }
    }

    public func poll(_ client: ModbusClient) -> MeterReading {
        var raw: [UInt16] = []
        var blocks: [(UInt16, [UInt16])] = []
        do {
            for r in plan {
                let regs = try client.readRegisters(profile.table, unit: unit, address: r.address, count: r.count)
                blocks.append((r.address, regs))
                raw += regs
            }
        } catch {
            return MeterReading(meter: name, values: [:], estimated: [], monotonicNs: monotonicNanoseconds(), quality: .bad(Self.reason(error)),
                                error: error.description)
        }
        let arrived = monotonicNanoseconds()
        var values: [Quantity: Double] = [:]
        for spec in specs {
            guard let (start, regs) = blocks.last(where: { $0.0 <= spec.address }) else { continue }
            let offset = Int(spec.address - start)
            guard offset + spec.codec.registerCount <= regs.count else { continue }
            let slice = regs[offset..<(offset + spec.codec.registerCount)]
            values[spec.quantity] = (try? spec.codec.decode(slice)) ?? .nan
        }
        var estimated = Set<Quantity>()
        fillApparentPower(&values, &estimated)
        let quality = judge.judge(values: values, raw: raw, atNs: arrived)
        if case .bad = quality {
            return MeterReading(meter: name, values: values, estimated: estimated, monotonicNs: arrived, quality: quality, error: nil)
        }
        return MeterReading(meter: name, values: values, estimated: estimated, monotonicNs: arrived,
                            quality: estimated.isEmpty ? .good : .estimated("apparent power from \(estimatedFrom)"), error: nil)
    }

    private var estimatedFrom = ""

    /// Totals the meter does not report are derived, and say so.
    private func fillApparentPower(_ v: inout [Quantity: Double], _ est: inout Set<Quantity>) {
        guard v[.apparentPowerTotal] == nil else { return }
        let phases = [Quantity.apparentPowerL1, .apparentPowerL2, .apparentPowerL3].compactMap { v[$0] }
        if !phases.isEmpty {
            v[.apparentPowerTotal] = phases.reduce(0, +)
            return  // a sum of measured phases is measured
        }
        let pairs: [(Quantity, Quantity)] = [(.currentL1, .voltageL1), (.currentL2, .voltageL2), (.currentL3, .voltageL3)]
        var total = 0.0
        var any = false
        var nominal = false
        for (i, u) in pairs {
            guard let current = v[i] else { continue }
            any = true
            if let volts = v[u] { total += abs(current) * volts } else { total += abs(current) * judge.rules.nominalVoltage; nominal = true }
        }
        guard any else { return }
        v[.apparentPowerTotal] = total
        if nominal {
            est.insert(.apparentPowerTotal)
            estimatedFrom = "currents × nominal \(fmt(judge.rules.nominalVoltage)) V"
        }
    }

    static func reason(_ e: ModbusError) -> Quality.BadReason {
        switch e.kind {
        case .timeout: .timeout
        case .crc: .crc
        case .exception(let x): .exception(x.rawValue)
        case .invalidReply(let why): .invalidReply(why)
        default: .disconnected
        }
    }
}


/// The latest reading of a meter and when it was last good, behind a lock: the control tick reads it,
/// the bus thread writes it. No queue: a slow reader sees the newest value, never a backlog.
public final class LatestReading: Sendable {
    private struct State { var reading: MeterReading?; var lastGoodNs: UInt64?; var polls = 0; var bad = 0; var recentGoodNs: [UInt64] = [] }
    private let state = Mutex(State())
    public init() {}

    public func store(_ r: MeterReading) {
        state.withLock { s in
            let previousUsable = s.reading?.quality.isUsable ?? false
            s.reading = r
            s.polls += 1
            if r.quality.isUsable {
                s.lastGoodNs = r.monotonicNs
                s.recentGoodNs.append(r.monotonicNs)
                if s.recentGoodNs.count > 64 { s.recentGoodNs.removeFirst(s.recentGoodNs.count - 64) }
            } else {
                s.bad += 1
                // Frozen after n identical polls: the n − 1 before this one passed as good but were
                // already stuck. The last trustworthy reading is the first of the run, so the blind
                // time counts from there — a frozen meter is as blind as a dead one, as soon.
                if case .bad(.frozen(let n)) = r.quality, previousUsable, n >= 2, s.recentGoodNs.count >= n - 1 {
                    s.lastGoodNs = s.recentGoodNs[s.recentGoodNs.count - (n - 1)]
                    s.recentGoodNs.removeLast(n - 2)
                }
            }
        }
    }

    public var reading: MeterReading? { state.withLock { $0.reading } }

    /// The latest reading as the control tick may use it: marked stale when its reply is older than
    /// `staleAfterNs` (the blind time) — the bus thread may be stuck in a long timeout, and an old
    /// value must not pass for a fresh one.
    public func reading(atNs now: UInt64, staleAfterNs: UInt64) -> MeterReading? {
        guard var r = reading else { return nil }
        if now > r.monotonicNs && now - r.monotonicNs > staleAfterNs && r.quality.isUsable {
            r.quality = .bad(.stale)
        }
        return r
    }
    public var lastGoodNs: UInt64? { state.withLock { $0.lastGoodNs } }
    public var counts: (polls: Int, bad: Int) { state.withLock { ($0.polls, $0.bad) } }
}

/// One thread per bus (docs/design.md §6): it owns the client and polls each meter on it at its period,
/// one after the other, keeping the RTU inter-frame gap (the client does).
public final class BusWorker: Sendable {
    public struct Meter: Sendable {
        public var name: String
        public var profile: MeterProfile
        public var unit: UInt8
        public var rules: QualityRules
        public var periodMs: Int
        public let slot: LatestReading
        public init(name: String, profile: MeterProfile, unit: UInt8, rules: QualityRules = .init(), periodMs: Int = 100, slot: LatestReading = LatestReading()) {
            self.name = name
            self.profile = profile
            self.unit = unit
            self.rules = rules
            self.periodMs = periodMs
            self.slot = slot
        }
    }

    public let endpoint: ModbusEndpoint
    public let meters: [Meter]
    private let loop = LoopThread()
    private let options: ModbusClientOptions

    public init(endpoint: ModbusEndpoint, options: ModbusClientOptions = .init(), meters: [Meter]) {
        self.endpoint = endpoint
        self.meters = meters
        self.options = options
    }

    /// Starts the thread; with `after`, once the worker it replaces (on a reload) has ended.
    public func start(after predecessor: ServiceThread? = nil) { loop.start(after: predecessor.map { [$0] } ?? []) { [self] in self.run() } }
    public func stop() { loop.stop() }
    /// Stops without waiting (a reload): the thread ends after its current turn, however long a peer
    /// holds it; its successor waits for it (`start(after:)`), the control loop does not.
    public func retire() -> ServiceThread? { loop.retire() }

    private func run() {
        let line: SerialLine? = if case .rtu(let l) = endpoint { l } else { nil }
        let pollers = meters.map { MeterPoller(name: $0.name, profile: $0.profile, unit: $0.unit, rules: $0.rules, line: line) }
        guard let client = try? ModbusClient(endpoint, options: options) else {
            for m in meters {
                m.slot.store(MeterReading(meter: m.name, values: [:], estimated: [], monotonicNs: monotonicNanoseconds(), quality: .bad(.disconnected),
                                          error: "cannot create a Modbus context for \(endpoint)"))
            }
            return
        }
        var due = meters.map { _ in monotonicNanoseconds() }
        while !loop.isStopping {
            let t = monotonicNanoseconds()
            for i in meters.indices where due[i] <= t {
                meters[i].slot.store(pollers[i].poll(client))
                due[i] += UInt64(meters[i].periodMs) * 1_000_000
                if due[i] < monotonicNanoseconds() { due[i] = monotonicNanoseconds() }  // overrun: no catch-up burst
            }
            let next = due.min()!
            let n = monotonicNanoseconds()
            if next > n { usleep(UInt32(min(next - n, 50_000_000) / 1000)) }
        }
    }
}
