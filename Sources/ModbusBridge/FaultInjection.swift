#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CModbus
import Synchronization

/// A plan of forced failures for the libmodbus calls made by the current task or thread.
///
/// Every libmodbus call passes through `Seam`; while a plan is bound with ``with(_:_:)``, each call asks
/// it first whether to fail with a given errno instead. Plans are task-local, so tests running in
/// parallel do not see each other's faults, and production code (no plan bound) pays one task-local read.
///
/// ```swift
/// let plan = ModbusFaultPlan()
/// plan.fail(.readInputRegisters, onCall: 3, with: .timeout)
/// try ModbusFaultPlan.with(plan) { try meter.poll() }
/// ```
public final class ModbusFaultPlan: Sendable {
    /// The libmodbus calls that can be failed.
    public enum Call: String, Sendable, CaseIterable {
        case newContext, connect, setUnit, setSerialMode
        case readHoldingRegisters, readInputRegisters, readCoils, readDiscreteInputs
        case writeRegister, writeRegisters, writeCoil, writeCoils
        case listen, accept, receive, reply
    }

    /// What a forced failure looks like to the caller: the errno libmodbus would have set.
    public enum Fault: Sendable, Equatable {
        case timeout, crc, connectionRefused, connectionReset, deviceUnavailable
        case exception(ModbusException)
        case invalidReply
        case errno(Int32)

        var errnoValue: Int32 {
            switch self {
            case .timeout: ETIMEDOUT
            case .crc: lmc_EMBBADCRC
            case .connectionRefused: ECONNREFUSED
            case .connectionReset: ECONNRESET
            case .deviceUnavailable: ENOENT
            case .exception(let x): Int32(MODBUS_ENOBASE) + Int32(x.rawValue)
            case .invalidReply: lmc_EMBBADDATA
            case .errno(let e): e
            }
        }
    }

    private struct Rule {
        var call: Call?
        var firstCall: Int
        var times: Int
        var fault: Fault
    }

    private struct State {
        var rules: [Rule] = []
        var counts: [Call: Int] = [:]
        var forced: [Call: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Fails `call` (every call if nil) on its `nth` invocation (1-based, counted per call kind while
    /// this plan is bound) and the `times − 1` following ones.
    public func fail(_ call: Call?, onCall nth: Int = 1, times: Int = 1, with fault: Fault) {
        state.withLock { $0.rules.append(Rule(call: call, firstCall: nth, times: times, fault: fault)) }
    }

    /// Fails `call` from now on, until ``clear()``.
    public func failAlways(_ call: Call, with fault: Fault) {
        fail(call, onCall: 1 + calls(of: call), times: .max / 2, with: fault)
    }

    /// Removes all rules; counts are kept.
    public func clear() { state.withLock { $0.rules.removeAll() } }

    /// How many times `call` was attempted (forced failures included) while this plan was bound.
    public func calls(of call: Call) -> Int { state.withLock { $0.counts[call, default: 0] } }

    /// How many failures were forced on `call`.
    public func forcedFailures(of call: Call) -> Int { state.withLock { $0.forced[call, default: 0] } }

    /// Counts the call and returns the errno to force, if any.
    func check(_ call: Call) -> Int32? {
        state.withLock { s in
            s.counts[call, default: 0] += 1
            let n = s.counts[call]!
            for rule in s.rules where rule.call == nil || rule.call == call {
                if n >= rule.firstCall && n - rule.firstCall < rule.times {
                    s.forced[call, default: 0] += 1
                    return rule.fault.errnoValue
                }
            }
            return nil
        }
    }

    @TaskLocal static var current: ModbusFaultPlan?

    /// Runs `body` with this plan bound to the current task (and the thread, for synchronous code).
    public static func with<R>(_ plan: ModbusFaultPlan, _ body: () throws -> R) rethrows -> R {
        try $current.withValue(plan) { try body() }
    }

    /// Async variant of ``with(_:_:)``.
    public static func with<R>(_ plan: ModbusFaultPlan, _ body: () async throws -> R) async rethrows -> R {
        try await $current.withValue(plan) { try await body() }
    }
}
