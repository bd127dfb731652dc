import FailSafe
import Headroom
import RingLog

/// Everything one control cycle may look at, taken once at its start by the daemon's shell (or built by
/// a scenario file, `lmc simulate`, the bench). Plain values: no handle to a device, a thread or a lock.
public struct CycleSnapshot: Sendable {
    /// Monotonic time of the cycle (ns): every control timer runs on it.
    public var monoNs: UInt64
    /// Wall time (ns since 1970, UTC): only stamps records and picks the half hour of the logs.
    public var wallNs: UInt64
    /// The kernel says the wall clock is synchronised (adjtimex). Unknown counts as not. Whether an
    /// unsynchronised clock may still pick a half hour is the cycle's decision (`requireSynchronisedClock`).
    public var clockSynchronised: Bool
    /// Seconds after local midnight in the TCC time zone, from the wall clock (nil: unknown).
    public var localSecondsOfDay: Double?
    /// Per meter id: its latest reading as the bus thread left it (absent: no reading yet).
    public var meters: [String: MeterSnapshot]
    /// Per site id: the Modbus relay to its charger.
    public var relays: [String: RelaySnapshot]
    /// Per site id: the OSCP relay to its CPMS.
    public var oscp: [String: OSCPSnapshot]
    /// Per site id with a breaker: what its auxiliary contact read, with the error if it could not be read.
    public var breakers: [String: BreakerRead]
    /// Per site id: a remote set point written upstream (SCADA, DERMS), with its lease.
    public var remote: [String: RemoteSetPoint]
    /// When the upstream last wrote its heartbeat (monotonic ns).
    public var upstreamHeartbeatNs: UInt64?
    /// Why the configured upstream Modbus server is not serving (it cannot bind), nil while it serves.
    public var upstreamFailure: String?
    /// Why the DNP3 outstation fails its master (it cannot listen, or an unsolicited response went
    /// unconfirmed after its retries), nil while it serves.
    public var dnp3Failure: String? = nil
    /// Console commands queued since the last cycle, oldest first, with who sent them.
    public var commands: [QueuedCommand]
    /// Events other threads posted (OSCP messages, compliance errors), written by the cycle in order.
    public var posted: [CycleEvent]
    /// Control cycles so far that overran their period (the shell measures it).
    public var overruns: Int

    public init(monoNs: UInt64, wallNs: UInt64, clockSynchronised: Bool = true, localSecondsOfDay: Double? = nil,
                meters: [String: MeterSnapshot] = [:], relays: [String: RelaySnapshot] = [:], oscp: [String: OSCPSnapshot] = [:],
                breakers: [String: BreakerRead] = [:], remote: [String: RemoteSetPoint] = [:], upstreamHeartbeatNs: UInt64? = nil,
                upstreamFailure: String? = nil, commands: [QueuedCommand] = [], posted: [CycleEvent] = [], overruns: Int = 0) {
        self.upstreamFailure = upstreamFailure
        self.monoNs = monoNs
        self.wallNs = wallNs
        self.clockSynchronised = clockSynchronised
        self.localSecondsOfDay = localSecondsOfDay
        self.meters = meters
        self.relays = relays
        self.oscp = oscp
        self.breakers = breakers
        self.remote = remote
        self.upstreamHeartbeatNs = upstreamHeartbeatNs
        self.commands = commands
        self.posted = posted
        self.overruns = overruns
    }
}

/// One meter's latest reading, as the cycle needs it (SI units).
public struct MeterSnapshot: Sendable, Equatable {
    /// Total apparent power (VA), measured or derived.
    public var apparentPowerVA: Double?
    /// Total active power (W), signed: import positive.
    public var powerW: Double?
    /// Phase currents (A), in phase order.
    public var currents: [Double]
    /// Phase voltages (V), in phase order.
    public var voltages: [Double]
    /// The driver judged the reading usable (good or estimated).
    public var usable: Bool
    /// The quality as the console shows it ("good", "bad: timeout").
    public var quality: String
    /// What is wrong with it when it is not usable ("timeout", "frozen for 10 polls").
    public var problem: String?
    /// Monotonic ns at which the device's reply arrived (or the failure was seen).
    public var readingNs: UInt64
    /// Monotonic ns of the last usable reply (a frozen run counts from its first identical poll).
    public var lastGoodNs: UInt64?

    public init(apparentPowerVA: Double? = nil, powerW: Double? = nil, currents: [Double] = [], voltages: [Double] = [], usable: Bool,
                quality: String? = nil, problem: String? = nil, readingNs: UInt64, lastGoodNs: UInt64?) {
        self.apparentPowerVA = apparentPowerVA
        self.powerW = powerW
        self.currents = currents
        self.voltages = voltages
        self.usable = usable
        self.quality = quality ?? (usable ? "good" : "bad: \(problem ?? "unknown")")
        self.problem = problem
        self.readingNs = readingNs
        self.lastGoodNs = lastGoodNs
    }

    /// A good reading that arrived at `ns` (scenarios, simulate, the bench).
    public static func good(va: Double? = nil, w: Double? = nil, currents: [Double] = [], voltages: [Double] = [], at ns: UInt64) -> MeterSnapshot {
        MeterSnapshot(apparentPowerVA: va, powerW: w, currents: currents, voltages: voltages, usable: true, readingNs: ns, lastGoodNs: ns)
    }
}

public struct RelaySnapshot: Sendable, Equatable {
    /// Failing since (monotonic ns): writes failing or readback not matching. Nil: healthy.
    public var failingSinceNs: UInt64?
    /// The current (A) last written, and what the charger says it applies.
    public var writtenA: Double?
    public var appliedA: Double?
    public var lastError: String?
    public init(failingSinceNs: UInt64? = nil, writtenA: Double? = nil, appliedA: Double? = nil, lastError: String? = nil) {
        self.failingSinceNs = failingSinceNs
        self.writtenA = writtenA
        self.appliedA = appliedA
        self.lastError = lastError
    }
}

public struct OSCPSnapshot: Sendable, Equatable {
    public var group: String
    public var phase: String
    public var failingSinceNs: UInt64?
    public var lastError: String?
    public var lastForecastKW: Double?
    /// The import the CPMS reports (W) and when it arrived (monotonic ns): lower trust than a DNO meter.
    public var reportedImportW: Double?
    public var reportedAtNs: UInt64?
    /// A group_capacity_compliance_error from the CPMS that stands (printable text), nil when none.
    public var complianceError: String?
    public init(group: String, phase: String, failingSinceNs: UInt64? = nil, lastError: String? = nil, lastForecastKW: Double? = nil,
                reportedImportW: Double? = nil, reportedAtNs: UInt64? = nil, complianceError: String? = nil) {
        self.complianceError = complianceError
        self.group = group
        self.phase = phase
        self.failingSinceNs = failingSinceNs
        self.lastError = lastError
        self.lastForecastKW = lastForecastKW
        self.reportedImportW = reportedImportW
        self.reportedAtNs = reportedAtNs
    }
}

/// What a breaker's auxiliary contact said this cycle.
public enum BreakerRead: Sendable, Equatable {
    case closed
    case open
    /// No auxiliary contact is wired: nothing confirms the breaker's state.
    case notWired
    /// The contact could not be read (GPIO error), or the breaker's lines could not be opened at all.
    case unavailable(String)
}

public struct RemoteSetPoint: Sendable, Equatable {
    public var watts: Double
    public var validitySeconds: Double
    public var receivedAtNs: UInt64
    public init(watts: Double, validitySeconds: Double, receivedAtNs: UInt64) {
        self.watts = watts
        self.validitySeconds = validitySeconds
        self.receivedAtNs = receivedAtNs
    }
}

public struct QueuedCommand: Sendable, Equatable {
    public var request: ControlRequest
    /// The line as the operator sent it, for the log.
    public var line: String
    public var user: String
    public init(request: ControlRequest, line: String, user: String) {
        self.request = request
        self.line = line
        self.user = user
    }
}

/// An entry for the events ring (and the journal).
public struct CycleEvent: Sendable, Equatable {
    public var kind: EventRecord.Kind
    public var text: String
    public init(_ kind: EventRecord.Kind, _ text: String) {
        self.kind = kind
        self.text = text
    }
}
