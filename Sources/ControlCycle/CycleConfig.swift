import FailSafe
import Headroom

/// What one control cycle needs to know of the box: the control core's MPs and sites, which meter
/// measures what, the supervisor's times, and how each site's set point is shaped for what takes it.
/// Built from lmc.toml by LMCConfig (`Configuration.cycleConfig`), or directly by a test.
public struct CycleConfig: Sendable {
    public var mode: HeadroomController.Mode
    public var periodSeconds: Double
    public var measurementPoints: [MeasurementPointConfig]
    public var sites: [SiteConfig]
    public var sources: [String: SiteSources]
    /// MP id → the meter id that measures it.
    public var mpMeter: [String: String]
    /// MP id → a second meter measuring the same thing (a redundant pair).
    public var mpRedundantMeter: [String: String] = [:]
    /// Site id → its PoC meter id.
    public var sitePocMeter: [String: String]
    public var supervisor: SupervisorConfig
    /// Site id → how its set point is shaped (absent: in kW, unquantised).
    public var shapers: [String: ShaperConfig]
    /// Sites with a breaker in the config.
    public var breakerSites: Set<String>
    /// Sites whose set point also goes to a CPMS over OSCP.
    public var oscpSites: Set<String>
    /// The wall clock picks a half hour only while the snapshot says it is synchronised. False: an RTC
    /// the operator trusts without NTP ([control] require_synchronised_clock); records still say what
    /// the kernel said.
    public var requireSynchronisedClock = true

    public init(mode: HeadroomController.Mode = .direct, periodSeconds: Double = 0.1, measurementPoints: [MeasurementPointConfig],
                sites: [SiteConfig], sources: [String: SiteSources] = [:], mpMeter: [String: String] = [:], sitePocMeter: [String: String] = [:],
                supervisor: SupervisorConfig = SupervisorConfig(), shapers: [String: ShaperConfig] = [:], breakerSites: Set<String> = [],
                oscpSites: Set<String> = []) {
        self.mode = mode
        self.periodSeconds = periodSeconds
        self.measurementPoints = measurementPoints
        self.sites = sites
        self.sources = sources
        self.mpMeter = mpMeter
        self.sitePocMeter = sitePocMeter
        self.supervisor = supervisor
        self.shapers = shapers
        self.breakerSites = breakerSites
        self.oscpSites = oscpSites
    }

    public func shaper(_ site: String) -> ShaperConfig { shapers[site] ?? ShaperConfig(unit: .kW) }
}
