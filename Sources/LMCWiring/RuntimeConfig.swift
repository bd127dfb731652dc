import CTSensorDriver
import FailSafe
import ModbusBridge
import OSCP
import SetPointRelay
import Supervision
import LMCConfig
import LMCWiring
import TOMLReader

/// The parts of lmc.toml the daemon needs beyond the control core: buses, meters, chargers, the
/// supervisor. Parsed together with the control sections by `Configuration.parse`.
public struct RuntimeConfig: Sendable {
    public struct Bus: Sendable, Equatable {
        public var id: String
        public var endpoint: ModbusEndpoint
        public var timeoutMilliseconds: Int
    }

    public struct Meter: Sendable {
        public var id: String
        public var bus: String
        public var unit: UInt8
        public var profile: MeterProfile
        public var pollMilliseconds: Int
        public var rules: QualityRules
        /// The deprecated `frozen_polls` this meter's `frozen_after_s` was derived from, for a warning.
        public var frozenPollsGiven: Int? = nil
    }

    /// An S0 pulse output on a GPIO input (IEC 62053-31), as read from lmc.toml.
    public typealias PulseMeter = ConfigFile.PulseMeter

    public struct Charger: Sendable {
        public var site: String
        public var profile: ChargerProfile
        public var endpoint: ModbusEndpoint
        public var unit: UInt8
        public var maxCurrentA: Double
        public var timeoutMilliseconds: Int
    }

    public var boxID: String
    public var socketPath: String
    /// The hardware watchdog device lmc run pets from on-time cycles (nil: none).
    public var hardwareWatchdog: String? = nil
    public var buses: [Bus]
    public var meters: [Meter]
    /// S0 pulse meters: a site's PoC import only (an average is too slow for a constraint).
    public var pulseMeters: [PulseMeter] = []
    /// MP id → meter id that measures it.
    public var mpMeter: [String: String]
    /// MP id → its second meter (a redundant pair), if any.
    public var mpRedundantMeter: [String: String] = [:]
    /// Site id → meter id of its PoC meter.
    public var sitePocMeter: [String: String]
    public var chargers: [Charger]
    public var supervisor: SupervisorConfig

    /// The upstream Modbus TCP server (docs/modbus-map.md), if configured.
    public struct Upstream: Sendable, Equatable {
        public var listen: String
        public var port: Int
        public var allowedWriters: Set<String>
        /// Connections, idle timeout, frame and send deadlines (docs/config.md).
        public var limits = ModbusServer.TCPLimits()
    }
    public var upstream: Upstream?

    /// The DNP3 outstation (`[dnp3]`, docs/dnp3.md), if configured.
    public typealias DNP3 = ConfigFile.DNP3
    public var dnp3: DNP3?

    /// OSCP 2.0 to the CPMS (`[oscp]` with `oscp_group` on sites); nil when not configured.
    public var oscp: OSCPConfig?

    /// The ring log: where, and how big each ring is.
    public typealias Log = ConfigFile.Log
    public var log = Log(directory: "/var/lib/lmc", samplesMB: 64, eventsMB: 4, halfHoursMB: 64, syncIntervalSeconds: 1)

    /// Site id → the wiring of its breaker (trip/close coils, auxiliary contact).
    public var breakers: [String: BreakerWiring] = [:]

    public static let empty = RuntimeConfig(boxID: "lmc", socketPath: "/run/lmc/control.sock", buses: [], meters: [], mpMeter: [:],
                                            sitePocMeter: [:], chargers: [], supervisor: SupervisorConfig(), upstream: nil)
}

extension RuntimeConfig {
    /// The daemon's parts of `file` in the drivers' own types: each profile loaded, each endpoint parsed,
    /// OSCP validated. What they refuse is added to `issues` at the line of the key it came from.
    init(wiring file: ConfigFile, issues: IssueList) {
        self = .empty
        boxID = file.box.id
        socketPath = file.box.socket
        hardwareWatchdog = file.box.hardwareWatchdog
        buses = file.buses.compactMap { b in
            endpoint(b.endpoint, issues).map { Bus(id: b.id, endpoint: $0, timeoutMilliseconds: b.timeoutMilliseconds) }
        }
        for m in file.meters {
            switch MeterProfiles.load(m.profile) {
            case .success(let p):
                let rules = QualityRules(ctRatingA: m.ctRatingA, nominalVoltage: m.nominalVoltage, frozenAfterSeconds: m.frozenAfterSeconds)
                meters.append(Meter(id: m.id, bus: m.bus, unit: m.unit, profile: p, pollMilliseconds: m.pollMilliseconds, rules: rules,
                                    frozenPollsGiven: m.frozenPollsGiven))
            case .failure(let e):
                issues.add(m.profileOrigin.line, m.profileOrigin.path, e.description)
            }
        }
        pulseMeters = file.pulseMeters
        for mp in file.measurementPoints {
            if let m = mp.meter { mpMeter[mp.id] = m }
            if let m = mp.redundantMeter { mpRedundantMeter[mp.id] = m }
        }
        for site in file.sites {
            if let poc = site.pocMeter { sitePocMeter[site.id] = poc }
            if let b = site.breaker {
                breakers[site.id] = BreakerWiring(
                    trip: .init(chip: b.chip, offset: b.tripLine, activeLow: b.tripActiveLow),
                    close: b.closeLine.map { .init(chip: b.chip, offset: $0, activeLow: b.closeActiveLow) },
                    auxiliary: b.auxLine.map { .init(chip: b.chip, offset: $0, activeLow: b.auxActiveLow) },
                    pulseMilliseconds: b.pulseMilliseconds)
            }
            if let c = site.charger {
                switch ChargerProfiles.load(c.profile) {
                case .success(let p):
                    if let e = c.endpoint.flatMap({ endpoint($0, issues) }) {
                        chargers.append(Charger(site: site.id, profile: p, endpoint: e, unit: c.unit ?? p.defaultUnit,
                                                maxCurrentA: c.maxCurrentA ?? p.maxCurrentA, timeoutMilliseconds: c.timeoutMilliseconds))
                    }
                case .failure(let e):
                    issues.add(c.profileOrigin.line, c.profileOrigin.path, e.description)
                }
            }
        }
        let f = file.failsafe
        var s = SupervisorConfig()
        s.blindTime = f.blindTime
        s.goodSamplesToRecover = f.goodSamples
        s.startupDelayWindow = f.startupDelayWindow
        s.recoveryRampWPerSecond = f.recoveryRampWPerSecond
        s.upstreamHeartbeatTimeout = f.upstreamHeartbeatTimeout
        s.nonResponseToleranceW = f.nonResponseToleranceW
        s.responseTime = f.responseTime
        s.breakerConfirmTime = f.breakerConfirmTime
        s.autoCloseDelay = f.autoCloseDelay
        s.maxTrips = f.maxTrips
        s.tripWindow = f.tripWindow
        s.relayAlarmAfter = f.relayAlarmAfter
        var seed: UInt64 = 1469598103934665603
        for b in boxID.utf8 { seed = (seed ^ UInt64(b)) &* 1099511628211 }
        s.boxSeed = seed
        supervisor = s
        log = file.log
        dnp3 = file.dnp3
        if let u = file.upstream {
            var limits = ModbusServer.TCPLimits()
            limits.maxClients = u.maxClients
            limits.idleTimeoutMilliseconds = u.idleTimeoutMilliseconds
            limits.frameDeadlineMilliseconds = u.frameDeadlineMilliseconds
            limits.sendDeadlineMilliseconds = u.sendDeadlineMilliseconds
            limits.maxClientsPerAddress = u.maxClientsPerAddress
            upstream = Upstream(listen: u.listen, port: u.port, allowedWriters: u.allowedWriters, limits: limits)
        }
        if let o = file.oscp {
            var c = OSCPConfig(listenHost: o.listen, listenPort: o.port, ourBaseURL: o.ourBaseURL, fpBaseURL: o.fpBaseURL,
                               fpInitialToken: o.fpToken, ourToken: o.token, heartbeatIntervalS: o.heartbeatIntervalS,
                               defaultOwnHeartbeatS: o.ownHeartbeatDefaultS, forecastMinutes: o.forecastMinutes, refreshS: o.refreshS,
                               groups: o.groups, certificate: o.certificate, key: o.key, caFile: o.caFile, allowPlainHTTP: o.allowPlainHTTP)
            c.allowedFPBaseURLs = o.allowedFPBaseURLs
            c.clientCAFile = o.clientCAFile
            c.maxConnections = o.maxConnections
            c.requestDeadlineSeconds = o.requestDeadlineSeconds
            if ![o.ourBaseURL, o.fpBaseURL, o.fpToken, o.token].contains("") {
                for problem in c.validate() { issues.add(o.fpBaseURLOrigin.line, o.fpBaseURLOrigin.path, problem) }
            }
            oscp = c
        }
    }
}

/// A Modbus endpoint from its plain form; a TCP address the Modbus layer refuses is an issue at its key.
private func endpoint(_ e: ConfigFile.Endpoint, _ issues: IssueList) -> ModbusEndpoint? {
    switch e {
    case .tcp(let text, let origin):
        do { return try ModbusEndpoint.parseTCP(text) } catch {
            issues.add(origin.line, origin.path, error.description)
            return nil
        }
    case .rtu(let device, let baud, let parity):
        // The parity was checked against its declaration (N, E or O).
        return .rtu(SerialLine(device: device, baud: baud, parity: SerialLine.Parity(rawValue: parity) ?? .none))
    }
}
