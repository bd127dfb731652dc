import LMCPlatform
import RingLog
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The ring log's own thread. The control loop hands each record over — a closure queued under a
/// short lock, never a write or a sync — and goes on; this thread writes the records and syncs each
/// ring (fdatasync) when its sync interval has passed on this thread's clock. A flash card that stalls
/// delays the log, never a cycle.
///
/// If the disk hangs for minutes, the queue is bounded (`maxQueued`, about 10 minutes at 10 Hz):
/// records beyond it are counted and dropped, and the loop says so (`problems`), rather than grow
/// without end or wait. A stop drains the queue and syncs every ring.
final class RingLogThread: @unchecked Sendable {
    typealias Job = @Sendable (LogStore) throws -> Void
    static let maxQueued = 6_000

    private struct Queue { var jobs: [Job] = []; var dropped = 0; var errors: [String] = [] }
    private let queue = Mutex(Queue())
    private let loop = LoopThread()
    /// Used only by this thread once started.
    private let store: LogStore

    init(_ store: LogStore) {
        store.syncsOnAppend = false
        self.store = store
    }

    func start() { loop.start { [self] in run() } }

    /// Drains what is queued, syncs every ring, and ends the thread.
    func stop() { loop.stop() }

    func post(_ job: @escaping Job) {
        let first = queue.withLock { q -> Bool in
            let first = q.jobs.isEmpty
            if q.jobs.count >= Self.maxQueued { q.dropped += 1 } else { q.jobs.append(job) }
            return first
        }
        // The thread takes the whole queue each turn: the first record since then wakes it, the rest of
        // a cycle's records go with that one.
        if first { loop.wake() }
    }

    /// What went wrong since the last call: records dropped because the queue was full, and write errors
    /// (the last five).
    func problems() -> (dropped: Int, errors: [String]) {
        queue.withLock { q in
            defer { q.dropped = 0; q.errors = [] }
            return (q.dropped, q.errors)
        }
    }

    private func note(_ error: any Error) {
        queue.withLock { q in
            q.errors.append("\(error)")
            if q.errors.count > 5 { q.errors.removeFirst() }
        }
    }

    /// One turn: every queued record written, then the rings that are due synced.
    private func drain() {
        let jobs = queue.withLock { q -> [Job] in defer { q.jobs = [] }; return q.jobs }
        for job in jobs {
            do { try job(store) } catch { note(error) }
        }
        do { try store.flushDue(nowNs: monotonicNanoseconds()) } catch { note(error) }
    }

    /// Sleeps between turns until a record is posted or a ring's sync is due (at most a second).
    private func run() {
        while !loop.isStopping {
            drain()
            let idle = monotonicNanoseconds() + 1_000_000_000
            loop.sleep(untilNs: min(idle, store.flushDueNs ?? idle))
        }
        drain()
        do { try store.flush(monoNs: monotonicNanoseconds()) } catch { note(error) }
    }
}
