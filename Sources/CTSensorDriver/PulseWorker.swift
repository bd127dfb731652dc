import DigitalIO
import LMCPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An S0 input's own thread (`[[pulse_meter]]`): it waits for edges (100 ms at most), and after each
/// wait stores the average power as the meter's reading, always *estimated*, in the same
/// latest-reading slot a Modbus meter uses. A line that could not be opened stores bad readings with
/// the reason, so the site's PoC meter is lost (fail closed), never silently zero.
public final class PulseWorker: @unchecked Sendable {
    public let name: String
    public let slot: LatestReading
    /// Used only by the worker's thread once started.
    private let input: PulseInput?
    private let openError: String?
    private let loop = LoopThread()

    /// `input`: the S0 line, opened by the caller (on the thread that binds a GPIO simulator, if any);
    /// nil with `openError` when it could not be.
    public init(name: String, input: PulseInput?, openError: String? = nil, slot: LatestReading) {
        self.name = name
        self.input = input
        self.openError = openError
        self.slot = slot
    }

    public func start() { loop.start { [self] in run() } }
    public func stop() { loop.stop() }

    private func run() {
        while !loop.isStopping {
            guard let input else {
                slot.store(MeterReading(meter: name, values: [:], estimated: [], monotonicNs: monotonicNanoseconds(), quality: .bad(.disconnected),
                                        error: openError ?? "S0 line not open"))
                usleep(100_000)
                continue
            }
            var failure: String?
            do { try input.drain(timeoutMilliseconds: 100) } catch {
                failure = "\(error)"
                usleep(100_000)
            }
            let now = monotonicNanoseconds()
            let (watts, quality) = input.meter.estimate(now: Double(now) / 1e9)
            let values: [Quantity: Double] = watts.map { [.powerTotal: $0] } ?? [:]
            slot.store(MeterReading(meter: name, values: values, estimated: watts == nil ? [] : [.powerTotal], monotonicNs: now,
                                    quality: failure == nil ? quality : .bad(.disconnected), error: failure))
        }
    }
}
