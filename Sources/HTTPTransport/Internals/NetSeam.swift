import LMCPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The socket calls of HTTPTransport that can fail from outside, each behind one thin function that
/// first asks the fault hook whether it must fail (as ModbusBridge's Seam does for libmodbus, and
/// TLSSeam for OpenSSL). The hook is a fault plan in test builds and nothing in release builds.
public enum HTTPCall: String, Sendable, CaseIterable {
    case connect, poll, send, recv, accept, tlsHandshake
}

#if LMC_TEST_HOOKS
/// Test builds only: forces an errno on the Nth call of a kind (`HTTPFaultPlan.with(plan) { … }` binds
/// it for a client's calls; a server takes the plan bound when it is made, for all its connections).
public final class HTTPFaultPlan: Sendable {
    private struct Rule { var call: HTTPCall; var nth: Int; var times: Int; var errno: Int32 }
    private struct State { var rules: [Rule] = []; var counts: [HTTPCall: Int] = [:] }
    private let state = Mutex(State())

    public init() {}

    /// Fails `call` with `errno` on its `nth` invocation (1-based, while bound) and the `times − 1` after.
    public func fail(_ call: HTTPCall, onCall nth: Int = 1, times: Int = 1, errno e: Int32) {
        state.withLock { $0.rules.append(Rule(call: call, nth: nth, times: times, errno: e)) }
    }

    public func calls(of call: HTTPCall) -> Int { state.withLock { $0.counts[call, default: 0] } }

    func check(_ call: HTTPCall) -> Int32? {
        state.withLock { s in
            s.counts[call, default: 0] += 1
            let n = s.counts[call]!
            return s.rules.first { $0.call == call && n >= $0.nth && n - $0.nth < $0.times }?.errno
        }
    }

    @TaskLocal static var current: HTTPFaultPlan?

    public static func with<R>(_ plan: HTTPFaultPlan, _ body: () throws -> R) rethrows -> R {
        try $current.withValue(plan) { try body() }
    }
}
#endif

/// What the seam asks before each call.
struct FaultHook: Sendable {
    #if LMC_TEST_HOOKS
    let plan: HTTPFaultPlan?
    static var current: FaultHook { FaultHook(plan: HTTPFaultPlan.current) }
    @inline(__always) func fails(_ call: HTTPCall) -> Bool {
        guard let plan, let e = plan.check(call) else { return false }
        errno = e
        return true
    }
    #else
    static var current: FaultHook { FaultHook() }
    @inline(__always) func fails(_ call: HTTPCall) -> Bool { false }
    #endif
}

enum NetSeam {
    static func connect(_ h: FaultHook, _ fd: Int32, _ addr: UnsafePointer<sockaddr>?, _ len: socklen_t) -> Int32 {
        if h.fails(.connect) { return -1 }
        return Sys.connect(fd, addr, len)
    }

    static func poll(_ h: FaultHook, _ p: inout pollfd, _ ms: Int32) -> Int32 {
        if h.fails(.poll) { return -1 }
        #if canImport(Glibc)
        return Glibc.poll(&p, 1, ms)
        #else
        return Musl.poll(&p, 1, ms)
        #endif
    }

    static func send(_ h: FaultHook, _ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int {
        if h.fails(.send) { return -1 }
        return Sys.send(fd, p, n, Int32(MSG_NOSIGNAL))
    }

    static func recv(_ h: FaultHook, _ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int {
        if h.fails(.recv) { return -1 }
        return Sys.recv(fd, p, n, 0)
    }

    static func accept(_ h: FaultHook, _ fd: Int32, _ a: UnsafeMutablePointer<sockaddr>?, _ len: UnsafeMutablePointer<socklen_t>?) -> Int32 {
        if h.fails(.accept) { return -1 }
        return Sys.accept(fd, a, len)
    }

    static func tlsHandshake(_ h: FaultHook, _ ssl: OpaquePointer) -> Int32 {
        if h.fails(.tlsHandshake) { return -1 }
        return TLSSeam.handshake(ssl)
    }
}
