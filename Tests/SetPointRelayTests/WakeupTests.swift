import Foundation
import LMCPlatform
import Synchronization
import Testing

private final class Flag: Sendable { let value = Atomic(false) }

/// The worker threads (charger relays, the ring log) sleep on a `Wakeup` until their next deadline or
/// until work arrives, instead of looking every 5–10 ms.
@Suite struct WakeupTests {
    @Test func aWakeFromAnotherThreadEndsTheSleep() {
        let w = Wakeup()
        let woke = Flag()
        let t = ServiceThread { woke.value.store(w.sleep(untilNs: monotonicNanoseconds() + 60_000_000_000), ordering: .releasing) }
        usleep(50_000)
        w.wake()
        t.join()   // would wait a minute if the wake were lost
        let woken = woke.value.load(ordering: .acquiring)
        #expect(woken, "woken, not timed out")
    }

    @Test func aWakeWithNobodyAsleepIsKeptForTheNextSleepOnly() {
        let w = Wakeup()
        w.wake()
        #expect(w.sleep(untilNs: monotonicNanoseconds() + 60_000_000_000), "the earlier wake ends this sleep at once")
        #expect(!w.sleep(untilNs: monotonicNanoseconds() + 20_000_000), "and is used up: this one runs to its deadline")
    }

    @Test func aSleepEndsAtItsDeadline() {
        let w = Wakeup()
        let deadline = monotonicNanoseconds() + 30_000_000
        #expect(!w.sleep(untilNs: deadline))
        #expect(monotonicNanoseconds() >= deadline)
        #expect(!w.sleep(untilNs: deadline - 1), "a deadline already past returns at once")
    }

    @Test func stoppingALoopEndsItsSleep() {
        let loop = LoopThread()
        loop.start { while !loop.isStopping { loop.sleep(untilNs: monotonicNanoseconds() + 60_000_000_000) } }
        usleep(50_000)
        loop.stop()   // joins: would wait a minute if the stop did not wake the loop
        #expect(loop.isStopping)
    }
}
