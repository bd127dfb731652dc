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

/// Something a thread sleeps on until a deadline, which any thread can cut short (`wake`): a worker
/// that would otherwise wake every few milliseconds to look for work sleeps until its next deadline or
/// until work arrives. A wake with nobody asleep is kept for the next sleep, so none is lost.
public final class Wakeup: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Guarded by `mutex`.
    private var pending = false

    public init() {
        mutex.initialize(to: pthread_mutex_t())
        cond.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)   // deadlines on monotonicNanoseconds()
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Ends the current sleep, or the next one if no thread sleeps now.
    public func wake() {
        pthread_mutex_lock(mutex)
        pending = true
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps until `deadlineNs` (monotonic) or a wake. True if woken.
    @discardableResult
    public func sleep(untilNs deadlineNs: UInt64) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !pending && monotonicNanoseconds() < deadlineNs {
            var ts = timespec(tv_sec: Int(deadlineNs / 1_000_000_000), tv_nsec: Int(deadlineNs % 1_000_000_000))
            if pthread_cond_timedwait(cond, mutex, &ts) == ETIMEDOUT { break }
        }
        defer { pending = false }
        return pending
    }
}

/// A loop on its own POSIX thread with a stop flag — what every worker here (bus pollers, charger
/// relays, servers, the control socket) needs: start once, ask `isStopping` each turn, `stop` joins.
public final class LoopThread: Sendable {
    private let stopFlag = Atomic(false)
    private let thread = Mutex<ServiceThread?>(nil)
    private let wakeup = Wakeup()

    public init() {}

    public var isStopping: Bool { stopFlag.load(ordering: .acquiring) }

    /// For the loop's body: sleeps until `deadlineNs` (monotonic), a `wake`, or a stop, whichever
    /// comes first. True if cut short.
    @discardableResult
    public func sleep(untilNs deadlineNs: UInt64) -> Bool {
        isStopping || wakeup.sleep(untilNs: deadlineNs)
    }

    /// Ends the loop's current `sleep` (or its next one): there is work.
    public func wake() { wakeup.wake() }

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
        wakeup.wake()
        return thread.withLock { t -> ServiceThread? in defer { t = nil }; return t }
    }

    /// Sets the flag and waits for the loop to return. Idempotent.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        wakeup.wake()
        let t = thread.withLock { t -> ServiceThread? in defer { t = nil }; return t }
        t?.join()
    }

    /// Sets the flag and returns at once; the loop ends after its current turn (for a loop that may be
    /// waiting on a peer, stopped from a thread that must not wait: the control loop on a reload).
    public func requestStop() { retire()?.detach() }
}
