import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A plain POSIX thread for a blocking loop (a libmodbus server). Blocking C calls must not run on
/// Swift's cooperative pool, where they would starve every other task.
public final class ServiceThread: @unchecked Sendable {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    // pthread_t is an integer in glibc and a pointer in musl (the static Linux SDK).
    #if canImport(Glibc)
    private var thread = pthread_t()
    private var handle: pthread_t { thread }
    #else
    private var thread: pthread_t? = nil
    private var handle: pthread_t { thread! }
    #endif

    /// Starts `body` on a new thread at once.
    public init(_ body: @escaping @Sendable () -> Void) {
        let arg = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, arg)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Waits for `body` to return.
    public func join() { pthread_join(handle, nil) }

    /// Lets the thread end on its own: its resources are reclaimed when `body` returns (never join after).
    public func detach() { pthread_detach(handle) }
}

/// A loop on its own POSIX thread with a stop flag — what every worker here (bus pollers, charger
/// relays, servers, the control socket) needs: start once, ask `isStopping` each turn, `stop` joins.
public final class LoopThread: Sendable {
    private let stopFlag = Atomic(false)
    private let thread = Mutex<ServiceThread?>(nil)

    public init() {}

    public var isStopping: Bool { stopFlag.load(ordering: .acquiring) }

    /// Starts `body` on a new thread, unless already started. With `predecessors`, the new thread first
    /// waits for them to end (the worker it replaces on a reload still holds the device): the caller
    /// does not wait.
    public func start(after predecessors: [ServiceThread] = [], _ body: @escaping @Sendable () -> Void) {
        thread.withLock { t in
            guard t == nil else { return }
            t = ServiceThread {
                for p in predecessors { p.join() }
                body()
            }
        }
    }

    /// Sets the flag and returns at once with the thread, for its successor to wait on
    /// (`start(after:)`): the loop ends after its current turn, however long a peer holds it.
    public func retire() -> ServiceThread? {
        stopFlag.store(true, ordering: .releasing)
        return thread.withLock { t -> ServiceThread? in defer { t = nil }; return t }
    }

    /// Sets the flag and waits for the loop to return. Idempotent.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        let t = thread.withLock { t -> ServiceThread? in defer { t = nil }; return t }
        t?.join()
    }

    /// Sets the flag and returns at once; the loop ends after its current turn (for a loop that may be
    /// waiting on a peer, stopped from a thread that must not wait: the control loop on a reload).
    public func requestStop() { retire()?.detach() }
}
