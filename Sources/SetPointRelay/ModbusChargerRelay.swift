import LMCPlatform
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ModbusBridge
import Synchronization

/// What the relay reports to the supervisor and the console.
public struct RelayStatus: Sendable, Equatable {
    /// The current (A) last written successfully, and when (monotonic ns).
    public var writtenA: Double?
    public var writtenAtNs: UInt64?
    /// What the charger says it applies (A), from readback.
    public var appliedA: Double?
    /// Failing since (monotonic ns): writes failing or readback not matching. Nil: healthy.
    public var failingSinceNs: UInt64?
    public var lastError: String?
    /// The fallback (safe current, timeout) is programmed on the charger since the last (re)connect.
    public var fallbackProgrammed: Bool
    public var writes: Int
    public var refreshes: Int
    /// Times the fallback was found forgotten (a reboot the link did not show) and programmed again.
    public var reprogrammed: Int = 0
}

/// The Modbus side of one hub charger: programs its fallback first, writes the set point at once on a
/// change, refreshes it well inside the charger's validity time, and reads back what it applies.
/// Not thread-safe: one worker thread owns it (``RelayWorker``).
public final class ModbusChargerRelay {
    public let profile: ChargerProfile
    public let unit: UInt8
    public let conversion: CurrentConversion
    /// The charger's own fallback current (A): the site's safe set point, converted.
    public var safeCurrentA: Double
    public var maxCurrentA: Double
    private let client: ModbusClient
    public private(set) var status = RelayStatus(fallbackProgrammed: false, writes: 0, refreshes: 0)
    private var reconnectsSeen = -1
    /// When the value last changed (or the connection was new): the charger's settle time runs from
    /// here, not from a refresh of the same value.
    private var changedAtNs: UInt64?
    /// When the charger's fallback was last read back (an RTU charger's reboot shows only there).
    private var fallbackCheckedAtNs: UInt64?
    /// The charger refused to read its fallback register back: no more checks on this connection.
    private var fallbackUnreadable = false
    /// How often the programmed fallback is read back.
    public static let fallbackCheckSeconds = 10.0
    /// How long after a write the readback must match.
    public static let settleSeconds = 2.0

    public init(profile: ChargerProfile, endpoint: ModbusEndpoint, unit: UInt8? = nil, conversion: CurrentConversion,
                safeCurrentA: Double, maxCurrentA: Double? = nil, options: ModbusClientOptions = .init()) throws(ModbusError) {
        self.profile = profile
        self.unit = unit ?? profile.defaultUnit
        self.conversion = conversion
        self.safeCurrentA = safeCurrentA
        self.maxCurrentA = maxCurrentA ?? profile.maxCurrentA
        self.client = try ModbusClient(endpoint, options: options)
    }

    public var endpoint: ModbusEndpoint { client.endpoint }

    /// Writes `amps` if it differs from what was written or the refresh is due; programs the fallback
    /// first whenever the connection is new. Returns the status after the attempt.
    @discardableResult
    public func apply(amps: Double, nowNs: UInt64) -> RelayStatus {
        let target = min(amps, maxCurrentA)
        let due = status.writtenAtNs.map { nowNs - $0 >= UInt64(profile.refreshSeconds * 1e9) } ?? true
        let changed = status.writtenA != target
        do {
            // A new connection means the charger may have rebooted: its fallback first, before any limit.
            if !client.isConnected {
                status.fallbackProgrammed = false
                try client.connect()
            }
            if !status.fallbackProgrammed || client.reconnects != reconnectsSeen {
                try programFallback()
                fallbackCheckedAtNs = nowNs
            } else if try fallbackForgotten(nowNs: nowNs) {
                // The charger rebooted without the link noticing (RTU): its fallback first, again.
                status.reprogrammed += 1
                try programFallback()
            }
            if changed || due || !status.fallbackProgrammed {
                if changed || changedAtNs == nil { changedAtNs = nowNs }
                try write(profile.limit, amps: target)
                if let life = profile.lifeBit { try write(life, raw: 1) }
                if !changed { status.refreshes += 1 }
                status.writes += 1
                status.writtenA = target
                status.writtenAtNs = nowNs
            }
            if let rb = profile.readback {
                let regs = try client.readRegisters(profile.readbackTable, unit: unit, address: rb.address, count: rb.codec.registerCount)
                let applied = (try? rb.decodeAmps(regs)) ?? .nan
                status.appliedA = applied
                // A charger takes a moment to apply a new limit: judge the readback only once the value
                // has had `settleSeconds` to take effect (refreshes of the same value do not restart it).
                // Until then a failure stands: only a matching readback clears it.
                let settled = changedAtNs.map { nowNs >= $0 + UInt64(Self.settleSeconds * 1e9) } ?? false
                if !settled { return status }
                if !(abs(applied - target) <= max(0.5, conversion.stepA)) {
                    markFailing(nowNs, "readback: charger applies \(fmtA(applied)) A, we wrote \(fmtA(target)) A")
                    return status
                }
            }
            status.failingSinceNs = nil
            status.lastError = nil
        } catch {
            status.fallbackProgrammed = status.fallbackProgrammed && !error.isConnectionLoss
            markFailing(nowNs, "\(profile.name) unit \(unit): \(error)")
        }
        return status
    }

    /// Watts → amps for this charger, then ``apply(amps:nowNs:)``.
    @discardableResult
    public func apply(watts: Double, nowNs: UInt64) -> RelayStatus {
        apply(amps: conversion.amps(forWatts: watts, minA: profile.minCurrentA, maxA: maxCurrentA), nowNs: nowNs)
    }

    /// Reads the safe current back every `fallbackCheckSeconds`: a value other than what was programmed
    /// means the charger forgot it (rebooted). A charger that cannot read the register back is not asked
    /// again on this connection.
    private func fallbackForgotten(nowNs: UInt64) throws(ModbusError) -> Bool {
        guard let safe = profile.safeCurrent, !fallbackUnreadable else { return false }
        if let at = fallbackCheckedAtNs, nowNs < at + UInt64(Self.fallbackCheckSeconds * 1e9) { return false }
        fallbackCheckedAtNs = nowNs
        let regs: [UInt16]
        do {
            regs = try client.readRegisters(.holding, unit: unit, address: safe.address, count: safe.codec.registerCount)
        } catch {
            // A lost link is the caller's failure (the fallback is programmed again on reconnect); a
            // charger that refuses to read the register back is not asked again.
            if error.isConnectionLoss { throw error }
            fallbackUnreadable = true
            return false
        }
        guard let programmed = try? safe.encode(amps: safeCurrentA) else { return false }
        return regs != programmed
    }

    private func programFallback() throws(ModbusError) {
        changedAtNs = nil   // a new connection (a rebooted charger): the next limit settles afresh
        fallbackUnreadable = false
        if let safe = profile.safeCurrent { try write(safe, amps: safeCurrentA) }
        if let t = profile.timeout { try write(t, raw: profile.validitySeconds) }
        status.fallbackProgrammed = true
        reconnectsSeen = client.reconnects
    }

    private func write(_ r: ChargerProfile.Register, amps: Double) throws(ModbusError) {
        let regs: [UInt16]
        do { regs = try r.encode(amps: amps) } catch {
            throw ModbusError(.invalidArgument(error.description), operation: "encode \(amps) A", endpoint: client.endpoint.description)
        }
        try send(r, regs)
    }

    private func write(_ r: ChargerProfile.Register, raw: Double) throws(ModbusError) {
        let regs: [UInt16]
        do { regs = try r.codec.encode(raw) } catch {
            throw ModbusError(.invalidArgument(error.description), operation: "encode \(raw)", endpoint: client.endpoint.description)
        }
        try send(r, regs)
    }

    private func send(_ r: ChargerProfile.Register, _ regs: [UInt16]) throws(ModbusError) {
        if r.writeFunction == 6 && regs.count == 1 {
            try client.writeRegister(unit: unit, address: r.address, value: regs[0])
        } else {
            try client.writeRegisters(unit: unit, address: r.address, values: regs)
        }
    }

    private func markFailing(_ nowNs: UInt64, _ why: String) {
        if status.failingSinceNs == nil { status.failingSinceNs = nowNs }
        status.lastError = why
    }
}

func fmtA(_ a: Double) -> String {
    let r = (a * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e9 ? "\(Int(r))" : "\(r)"
}


/// The relay's own thread: the control tick posts set points into a slot (the newest wins) and reads
/// the status; the thread writes at once on a change and refreshes in between.
public final class RelayWorker: Sendable {
    private struct Slot {
        var amps: Double?; var version = 0; var postedAtNs: UInt64 = 0; var status = RelayStatus(fallbackProgrammed: false, writes: 0, refreshes: 0)
        /// The worker found the control loop silent and stopped refreshing: the next post wakes it.
        var stalled = false
    }
    private let slot = Mutex(Slot())
    private let loop = LoopThread()
    private let make: @Sendable () throws -> ModbusChargerRelay

    private let stallNs: UInt64

    /// `make` builds the relay on the worker thread (the Modbus client belongs to that thread).
    /// - Parameter stallAfterSeconds: with no post for this long, the control loop is taken as stalled:
    ///   the worker stops writing, and the charger's own validity timer reverts it to its safe current.
    public init(stallAfterSeconds: Double = 1, _ make: @escaping @Sendable () throws -> ModbusChargerRelay) {
        self.make = make
        self.stallNs = UInt64(max(0.05, stallAfterSeconds) * 1e9)
    }

    /// Starts the thread; with `after`, once the worker it replaces (on a reload) has ended.
    public func start(after predecessor: ServiceThread? = nil) { loop.start(after: predecessor.map { [$0] } ?? []) { [self] in self.run() } }
    public func stop() { loop.stop() }
    /// Stops without waiting (a reload): the thread ends after its current turn, however long a peer
    /// holds it; its successor waits for it (`start(after:)`), the control loop does not.
    public func retire() -> ServiceThread? { loop.retire() }

    /// Posts a new set point in amps per phase, already shaped (ControlCycle's shaper); the worker
    /// writes exactly this at once.
    public func post(amps: Double) {
        let now = monotonicNanoseconds()
        let wake = slot.withLock { s -> Bool in
            let changed = s.amps != amps
            if changed { s.amps = amps; s.version += 1 }
            s.postedAtNs = now
            defer { s.stalled = false }
            return changed || s.stalled
        }
        // A new value is written at once; the same value again changes nothing until the refresh.
        if wake { loop.wake() }
    }

    public var status: RelayStatus { slot.withLock { $0.status } }

    /// The thread sleeps until there is something to do: a new value (`post` wakes it), the refresh
    /// (at most every second), the moment the control loop counts as silent, and then each further
    /// second of silence (the status says how long).
    private func run() {
        var relay: ModbusChargerRelay?
        var seen = -1
        var lastAttempt: UInt64 = 0
        while !loop.isStopping {
            let (amps, version, postedAt) = slot.withLock { ($0.amps, $0.version, $0.postedAtNs) }
            let now = monotonicNanoseconds()
            if relay == nil { relay = try? make() }
            if now > postedAt && now - postedAt > stallNs {
                // The control loop has stopped posting: refresh nothing, so the charger falls back.
                let silent = Double(now - postedAt) / 1e9
                let stalled = slot.withLock { s -> Bool in
                    guard s.postedAtNs == postedAt else { return false }   // a post came in meanwhile
                    s.stalled = true
                    s.status.lastError = "control loop silent for \(Int(silent)) s: refresh stopped, the charger's own fallback takes over"
                    return true
                }
                seen = -1
                if stalled { loop.sleep(untilNs: postedAt + (UInt64(silent) + 1) * 1_000_000_000) }
                continue
            }
            var wakeAt = postedAt + stallNs + 1
            if let relay, let amps {
                let refreshNs = UInt64(min(relay.profile.refreshSeconds, 1) * 1e9)
                if version != seen || now - lastAttempt >= refreshNs {
                    let st = relay.apply(amps: amps, nowNs: now)
                    slot.withLock { $0.status = st }
                    seen = version
                    lastAttempt = now
                }
                wakeAt = min(wakeAt, lastAttempt + refreshNs)
            } else if relay == nil {
                wakeAt = min(wakeAt, now + 5_000_000)   // its Modbus context could not be made: try again soon
            }
            loop.sleep(untilNs: wakeAt)
        }
    }
}
