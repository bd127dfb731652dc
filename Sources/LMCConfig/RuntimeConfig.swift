#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CTSensorDriver
import FailSafe
import ModbusBridge
import OSCP
import SetPointRelay
import Supervision
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

    /// An S0 pulse output on a GPIO input (IEC 62053-31): the average active power over a window.
    public struct PulseMeter: Sendable, Equatable {
        public var id: String
        public var chip: String
        public var line: Int
        public var activeLow: Bool
        public var impulsesPerKWh: Double
        public var minimumLoadW: Double?
        public var windowSeconds: Double
    }

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
    public struct DNP3: Sendable, Equatable {
        public var listen = "127.0.0.1"
        public var port = 20000
        public var outstationAddress = 1024
        public var masterAddress = 1
        public var allowedIPs: Set<String> = ["127.0.0.1"]
        public var eventBuffer = 100
        public var selectTimeoutSeconds = 5.0
        public var remoteValiditySeconds = 300.0
        public var unsolicited = true
        public var unsolicitedRetries = 3
        public var unsolicitedConfirmTimeoutSeconds = 5.0
        public init() {}
    }
    public var dnp3: DNP3?

    /// OSCP 2.0 to the CPMS (`[oscp]` with `oscp_group` on sites); nil when not configured.
    public var oscp: OSCPConfig?

    /// The ring log: where, and how big each ring is.
    public struct Log: Sendable, Equatable {
        public var directory: String
        public var samplesMB: Double
        public var eventsMB: Double
        public var halfHoursMB: Double
        public var syncIntervalSeconds: Double
        /// The trips ring (a record per trip, 60 s either side).
        public var tripsMB: Double = 16
        /// The minutes ring (512 B a minute: 72 MB hold about 102 days).
        public var minutesMB: Double = 72
    }
    public var log = Log(directory: "/var/lib/lmc", samplesMB: 64, eventsMB: 4, halfHoursMB: 64, syncIntervalSeconds: 1)

    /// Site id → the wiring of its breaker (trip/close coils, auxiliary contact).
    public var breakers: [String: BreakerWiring] = [:]

    public static let empty = RuntimeConfig(boxID: "lmc", socketPath: "/run/lmc/control.sock", buses: [], meters: [], mpMeter: [:],
                                            sitePocMeter: [:], chargers: [], supervisor: SupervisorConfig(), upstream: nil)
}

extension RuntimeConfig {
    static func read(_ top: Section, mps: [Section], sites: [Section], issues: IssueList) -> RuntimeConfig {
        var rc = RuntimeConfig.empty
        // Tables that may be left out are read as empty ones: their defaults are the declared ones either way.
        let box = top.tableOrEmpty("box")
        rc.boxID = box.string("id")!
        rc.socketPath = box.string("socket")!
        if let wd = box.string("hardware_watchdog"), !wd.isEmpty {
            if !wd.hasPrefix("/") { issues.add(box.table.line(of: "hardware_watchdog"), "box.hardware_watchdog", "= \"\(wd)\": expected an absolute path such as \"/dev/watchdog0\"") }
            rc.hardwareWatchdog = wd
        }
        box.rejectUnknownKeys()
        for b in top.tables("bus") {
            let id = b.string("id") ?? "?"
            let endpoint = readEndpoint(b, issues)
            let timeout = b.number("timeout_ms")!
            b.rejectUnknownKeys()
            if let endpoint { rc.buses.append(Bus(id: id, endpoint: endpoint, timeoutMilliseconds: Int(timeout))) }
        }
        for m in top.tables("meter") {
            let id = m.string("id") ?? "?"
            let bus = m.string("bus") ?? "?"
            if !rc.buses.contains(where: { $0.id == bus }) {
                issues.add(m.table.line(of: "bus"), "\(m.path).bus", "= \"\(bus)\": no [[bus]] has this id (have: \(rc.buses.map(\.id).joined(separator: ", ")))")
            }
            let unit = m.number("unit")!
            let profileName = m.string("profile") ?? "generic"
            let poll = m.number("poll_ms")!
            var frozenAfter = m.number("frozen_after_s")!
            let frozenPolls = m.number("frozen_polls").map { Int($0) }
            if let frozenPolls {
                if m.has("frozen_after_s") {
                    issues.add(m.table.line(of: "frozen_polls"), "\(m.path).frozen_polls",
                               "= \(frozenPolls) with frozen_after_s: frozen_polls is deprecated, delete it and keep frozen_after_s")
                } else {
                    frozenAfter = Double(frozenPolls - 1) * poll / 1000
                }
            }
            let rules = QualityRules(ctRatingA: m.number("ct_rating_a"),
                                     nominalVoltage: m.number("nominal_v")!,
                                     frozenAfterSeconds: frozenAfter)
            m.rejectUnknownKeys()
            switch MeterProfiles.load(profileName) {
            case .success(let p):
                rc.meters.append(Meter(id: id, bus: bus, unit: UInt8(unit), profile: p, pollMilliseconds: Int(poll), rules: rules,
                                       frozenPollsGiven: m.has("frozen_after_s") ? nil : frozenPolls))
            case .failure(let e):
                issues.add(m.table.line(of: "profile"), "\(m.path).profile", e.description)
            }
        }
        for p in top.tables("pulse_meter") {
            let id = p.string("id") ?? "?"
            let line = p.number("line")
            let constant = p.number("impulses_per_kwh")
            let pm = PulseMeter(id: id, chip: p.string("chip")!, line: Int(line ?? 0), activeLow: p.bool("active_low"),
                                impulsesPerKWh: constant ?? 1000, minimumLoadW: p.number("minimum_load_w"), windowSeconds: p.number("window_s")!)
            p.rejectUnknownKeys()
            if rc.meters.contains(where: { $0.id == id }) || rc.pulseMeters.contains(where: { $0.id == id }) {
                issues.add(p.table.line(of: "id"), "\(p.path).id", "= \"\(id)\": another [[meter]] or [[pulse_meter]] has this id")
            }
            if line != nil && constant != nil { rc.pulseMeters.append(pm) }
        }
        let meterIDs = Set(rc.meters.map(\.id))
        let pulseIDs = Set(rc.pulseMeters.map(\.id))
        for mp in mps {
            if let meter = mp.string("meter"), !meter.isEmpty, pulseIDs.contains(meter) {
                issues.add(mp.table.line(of: "meter"), "\(mp.path).meter",
                           "= \"\(meter)\": a [[pulse_meter]] gives an average over a minute, too slow to see a constraint; name a [[meter]] here and use the pulse meter as a site's poc_meter")
            } else if let meter = mp.string("meter"), !meter.isEmpty {
                if !meterIDs.contains(meter) { issues.add(mp.table.line(of: "meter"), "\(mp.path).meter", "= \"\(meter)\": no [[meter]] has this id") }
                rc.mpMeter[mp.table["id"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "?"] = meter
            }
            if let second = mp.string("redundant_meter"), !second.isEmpty {
                let id = mp.table["id"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "?"
                if !meterIDs.contains(second) { issues.add(mp.table.line(of: "redundant_meter"), "\(mp.path).redundant_meter", "= \"\(second)\": no [[meter]] has this id") }
                if second == rc.mpMeter[id] { issues.add(mp.table.line(of: "redundant_meter"), "\(mp.path).redundant_meter", "= \"\(second)\": the same meter as meter; a redundant pair needs a second one") }
                if rc.mpMeter[id] == nil { issues.add(mp.table.line(of: "redundant_meter"), "\(mp.path).redundant_meter", "needs meter = \"…\" first") }
                rc.mpRedundantMeter[id] = second
            }
        }
        var oscpGroups: [String: String] = [:]
        for s in sites {
            let siteID = s.table["id"].flatMap { if case .string(let x) = $0 { x } else { nil } } ?? "?"
            if let g = s.string("oscp_group"), !g.isEmpty { oscpGroups[siteID] = g }
            if let poc = s.string("poc_meter"), !poc.isEmpty {
                if !meterIDs.contains(poc) && !pulseIDs.contains(poc) {
                    issues.add(s.table.line(of: "poc_meter"), "\(s.path).poc_meter", "= \"\(poc)\": no [[meter]] or [[pulse_meter]] has this id")
                }
                rc.sitePocMeter[siteID] = poc
            }
            if let b = s.table("breaker") {
                let chip = b.string("chip")!
                let trip = b.number("trip_line")
                let close = b.number("close_line")
                let aux = b.number("aux_line")
                let wiring = BreakerWiring(
                    trip: .init(chip: chip, offset: Int(trip ?? 0), activeLow: b.bool("trip_active_low")),
                    close: close.map { .init(chip: chip, offset: Int($0), activeLow: b.bool("close_active_low")) },
                    auxiliary: aux.map { .init(chip: chip, offset: Int($0), activeLow: b.bool("aux_active_low")) },
                    pulseMilliseconds: Int(b.number("pulse_ms")!))
                _ = b.bool("close_active_low")
                _ = b.bool("aux_active_low")
                b.rejectUnknownKeys()
                if trip != nil { rc.breakers[siteID] = wiring }
            }
            if let c = s.table("charger") {
                let endpoint = readEndpoint(c, issues)
                let profileName = c.string("profile") ?? "generic"
                let unit = c.number("unit")
                let maxA = c.number("max_current_a")
                let timeout = c.number("timeout_ms")!
                // The set point's conversion is the site's (one shaper per site): these keys moved there.
                for (old, new) in [("phases", "phases"), ("phase_voltage_v", "phase_voltage_v"), ("power_factor", "power_factor"), ("step_a", "quantum")]
                where c.table[old] != nil {
                    c.markUsed(old)
                    issues.add(c.table.line(of: old), "\(c.path).\(old)", "moved to the site: the set point is converted once, for whatever takes it; write \(new) = … in [[site]] (with setpoint_unit = \"a\") and remove it here")
                }
                c.rejectUnknownKeys()
                switch ChargerProfiles.load(profileName) {
                case .success(let p):
                    if let endpoint {
                        rc.chargers.append(Charger(site: siteID, profile: p, endpoint: endpoint, unit: UInt8(unit ?? Double(p.defaultUnit)),
                                                   maxCurrentA: maxA ?? p.maxCurrentA, timeoutMilliseconds: Int(timeout)))
                    }
                case .failure(let e):
                    issues.add(c.table.line(of: "profile"), "\(c.path).profile", e.description)
                }
            }
        }
        do {
            // Every field from the declarations, so no default of SupervisorConfig.init leaks in.
            let f = top.tableOrEmpty("failsafe")
            var s = SupervisorConfig()
            s.blindTime = f.number("blind_time_s")!
            s.goodSamplesToRecover = Int(f.number("good_samples")!)
            let lo = f.number("startup_delay_min_s")!
            let hi = f.number("startup_delay_max_s")!
            if hi < lo { issues.add(f.table.line(of: "startup_delay_max_s"), "failsafe.startup_delay_max_s", "= \(hi): below startup_delay_min_s \(lo)") }
            s.startupDelayWindow = lo...max(lo, hi)
            s.recoveryRampWPerSecond = f.number("recovery_ramp_kw_per_s")! * 1000
            s.upstreamHeartbeatTimeout = f.number("upstream_heartbeat_timeout_s")
            s.nonResponseToleranceW = f.number("non_response_tolerance_kw")! * 1000
            s.responseTime = f.number("response_time_s")!
            s.breakerConfirmTime = f.number("breaker_confirm_s")!
            s.autoCloseDelay = f.number("auto_close_delay_s")
            s.maxTrips = Int(f.number("max_trips")!)
            s.tripWindow = f.number("trip_window_s")!
            s.relayAlarmAfter = f.number("relay_alarm_after_s")!
            f.rejectUnknownKeys()
            rc.supervisor = s
        }
        do {
            let l = top.tableOrEmpty("log")
            rc.log.directory = l.string("directory")!
            rc.log.samplesMB = l.number("samples_mb")!
            rc.log.eventsMB = l.number("events_mb")!
            rc.log.halfHoursMB = l.number("halfhours_mb")!
            rc.log.tripsMB = l.number("trips_mb")!
            rc.log.minutesMB = l.number("minutes_mb")!
            rc.log.syncIntervalSeconds = l.number("sync_interval_s")!
            l.rejectUnknownKeys()
        }
        if let u = top.table("upstream") {
            // Loopback unless the config names the address SCADA reaches; port 1502: the service has
            // no capabilities, so it cannot bind 502 (docs/config.md says how to allow that).
            let listen = u.string("listen")!
            if !isNumericIP(listen) {
                issues.add(u.table.line(of: "listen"), "upstream.listen", "= \"\(listen)\": not a numeric IPv4 or IPv6 address")
            }
            let port = u.number("port")!
            var limits = ModbusServer.TCPLimits()
            limits.maxClients = Int(u.number("max_clients")!)
            limits.idleTimeoutMilliseconds = Int(u.number("idle_timeout_s")! * 1000)
            limits.frameDeadlineMilliseconds = Int(u.number("frame_deadline_ms")!)
            limits.sendDeadlineMilliseconds = Int(u.number("send_deadline_ms")!)
            limits.maxClientsPerAddress = Int(u.number("max_clients_per_address")!)
            var writers = Set<String>()
            if let v = u.table["allowed_writers"] {
                if case .array(let items) = v {
                    for item in items {
                        if case .string(let a) = item { writers.insert(a) } else {
                            issues.add(u.table.line(of: "allowed_writers"), "upstream.allowed_writers", "expected IP addresses in quotes")
                        }
                    }
                } else {
                    issues.add(u.table.line(of: "allowed_writers"), "upstream.allowed_writers", "is \(v.typeName), expected an array of IP addresses")
                }
            }
            u.claim("allowed_writers")
            u.rejectUnknownKeys()
            rc.upstream = Upstream(listen: listen, port: Int(port), allowedWriters: writers, limits: limits)
        }
        if let d = top.table("dnp3") {
            var c = DNP3()
            c.listen = d.string("listen")!
            if !isNumericIP(c.listen) {
                issues.add(d.table.line(of: "listen"), "dnp3.listen", "= \"\(c.listen)\": not a numeric IPv4 or IPv6 address")
            }
            c.port = Int(d.number("port")!)
            c.outstationAddress = Int(d.number("outstation_address")!)
            c.masterAddress = Int(d.number("master_address")!)
            if c.outstationAddress == c.masterAddress {
                issues.add(d.table.line(of: "master_address"), "dnp3.master_address",
                           "= \(c.masterAddress) is also the outstation_address: give the master and this box different link addresses")
            }
            c.eventBuffer = Int(d.number("event_buffer")!)
            c.selectTimeoutSeconds = d.number("select_timeout_s")!
            c.remoteValiditySeconds = d.number("remote_validity_s")!
            c.unsolicited = d.bool("unsolicited")
            c.unsolicitedRetries = Int(d.number("unsolicited_retries")!)
            c.unsolicitedConfirmTimeoutSeconds = d.number("unsolicited_confirm_timeout_s")!
            if let v = d.table["allowed_ips"] {
                var ips = Set<String>()
                if case .array(let items) = v {
                    for item in items {
                        if case .string(let a) = item, isNumericIP(a) { ips.insert(a) } else {
                            issues.add(d.table.line(of: "allowed_ips"), "dnp3.allowed_ips", "expected numeric IP addresses in quotes, like [\"10.20.0.5\"]")
                        }
                    }
                } else {
                    issues.add(d.table.line(of: "allowed_ips"), "dnp3.allowed_ips", "is \(v.typeName), expected an array of IP addresses")
                }
                c.allowedIPs = ips
            }
            d.claim("allowed_ips")
            d.rejectUnknownKeys()
            rc.dnp3 = c
        }
        if let o = top.table("oscp") {
            let listen = o.string("listen")!
            let port = o.number("port")!
            let ours = o.string("our_base_url") ?? ""
            let fp = o.string("fp_base_url") ?? ""
            // The tokens only from a credentials file readable by root and the service (or systemd's
            // LoadCredential=): lmc.toml is group-readable (group lmc, every console reader), so a token
            // there is refused, with where it goes instead. The error never repeats the token.
            let credentials = o.string("credentials_file", default: "")!
            var fpToken = "", token = ""
            o.claim("token")
            o.claim("fp_token")
            for k in ["token", "fp_token"] where o.table[k] != nil {
                issues.add(o.table.line(of: k), "oscp.\(k)", "a token in lmc.toml is not accepted: group lmc can read this file. "
                           + "Move it to a credentials file readable by root only, e.g. /etc/lmc/oscp.credentials (chmod 600) holding "
                           + "token = \"…\" and fp_token = \"…\", delete \(k) here and set credentials_file = \"/etc/lmc/oscp.credentials\" "
                           + "(or LoadCredential=oscp:/etc/lmc/oscp.credentials and credentials_file = \"oscp\"; docs/config.md)")
            }
            if credentials.isEmpty {
                issues.add(o.table.line(of: "credentials_file") ?? o.line, "oscp.credentials_file",
                           (o.table["credentials_file"] == nil ? "is required" : "is empty") + ": the OSCP tokens are read from it "
                           + "(a file readable by root only, chmod 600, holding token = \"…\" and fp_token = \"…\"; docs/config.md)")
            } else {
                switch OSCPCredentials.load(credentials) {
                case .success(let c): (token, fpToken) = (c.token, c.fpToken)
                case .failure(let why): issues.add(o.table.line(of: "credentials_file"), "oscp.credentials_file", why.description)
                }
            }
            let hb = o.number("heartbeat_interval_s")!
            let ownHB = o.number("own_heartbeat_default_s")!
            let minutes = o.number("forecast_minutes")!
            let refresh = o.number("refresh_s")!
            let cert = o.string("tls_certificate") ?? ""
            let key = o.string("tls_key") ?? ""
            let ca = o.string("ca_file", default: "")!
            let clientCA = o.string("client_ca_file") ?? ""
            let plain = o.bool("allow_plain_http")
            let maxConnections = o.number("max_connections")!
            let deadline = o.number("request_deadline_s")!
            var allowed: [String] = []
            if let v = o.table["fp_allowed_base_urls"] {
                if case .array(let items) = v {
                    for item in items {
                        if case .string(let u) = item { allowed.append(u) } else {
                            issues.add(o.table.line(of: "fp_allowed_base_urls"), "oscp.fp_allowed_base_urls", "expected URLs in quotes")
                        }
                    }
                } else {
                    issues.add(o.table.line(of: "fp_allowed_base_urls"), "oscp.fp_allowed_base_urls", "is \(v.typeName), expected an array of URLs")
                }
            }
            o.claim("fp_allowed_base_urls")
            o.rejectUnknownKeys()
            // An empty string is never a value here: a required key left "" is refused, not skipped.
            for (k, v) in [("our_base_url", ours), ("fp_base_url", fp)] where v.isEmpty {
                issues.add(o.table.line(of: k) ?? o.line, "oscp.\(k)", "is required and may not be empty")
            }
            for (k, v) in [("listen", listen), ("tls_certificate", cert), ("tls_key", key), ("ca_file", ca), ("client_ca_file", clientCA)]
                where o.table[k] != nil && v.isEmpty {
                issues.add(o.table.line(of: k), "oscp.\(k)", "is empty: give a value or remove the key")
            }
            var c = OSCPConfig(listenHost: listen, listenPort: Int(port), ourBaseURL: ours, fpBaseURL: fp, fpInitialToken: fpToken, ourToken: token,
                               heartbeatIntervalS: Int(hb), defaultOwnHeartbeatS: Int(ownHB), forecastMinutes: minutes, refreshS: refresh,
                               groups: oscpGroups, certificate: cert.isEmpty ? nil : cert, key: key.isEmpty ? nil : key,
                               caFile: ca.isEmpty ? nil : ca, allowPlainHTTP: plain)
            c.allowedFPBaseURLs = allowed
            c.clientCAFile = clientCA.isEmpty ? nil : clientCA
            c.maxConnections = Int(maxConnections)
            c.requestDeadlineSeconds = deadline
            if ![ours, fp, fpToken, token].contains("") {
                for problem in c.validate() { issues.add(o.table.line(of: "fp_base_url"), "oscp", problem) }
            }
            rc.oscp = c
        } else if !oscpGroups.isEmpty {
            issues.add(nil, "site.oscp_group", "is set but there is no [oscp] section: add one (docs/config.md)")
        }
        var seed: UInt64 = 1469598103934665603
        for b in rc.boxID.utf8 { seed = (seed ^ UInt64(b)) &* 1099511628211 }
        rc.supervisor.boxSeed = seed
        return rc
    }
}

/// The OSCP tokens kept out of lmc.toml: a file of two lines in TOML, `token = "…"` and
/// `fp_token = "…"`, owned by root or the service user and readable by no one else (mode 0600 or 0400),
/// or systemd's `LoadCredential=oscp:/etc/lmc/oscp.credentials` (a relative name is looked up in
/// `$CREDENTIALS_DIRECTORY`).
public enum OSCPCredentials {
    public struct Problem: Error, CustomStringConvertible { public var description: String }
    public static func load(_ name: String) -> Result<(token: String, fpToken: String), Problem> {
        func failure(_ s: String) -> Result<(token: String, fpToken: String), Problem> { .failure(Problem(description: s)) }
        var path = name
        if !name.hasPrefix("/") {
            guard let dir = getenv("CREDENTIALS_DIRECTORY").map({ String(cString: $0) }) else {
                return failure("= \"\(name)\": a relative name is a systemd credential, but CREDENTIALS_DIRECTORY is not set (LoadCredential=\(name):/etc/lmc/…)")
            }
            path = dir + "/" + name
        }
        var st = stat()
        guard stat(path, &st) == 0 else { return failure("= \"\(name)\": cannot read \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & 0o077 == 0 else {
            return failure("= \"\(name)\": \(path) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 600")
        }
        guard st.st_size < 65_536, let f = fopen(path, "r") else { return failure("= \"\(name)\": cannot read \(path)") }
        defer { fclose(f) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = fread(&bytes, 1, bytes.count, f)
        let table: TOMLTable
        do { table = try TOML.parse(String(decoding: bytes.prefix(n), as: UTF8.self)) } catch {
            return failure("= \"\(name)\": \(path) \(error)")
        }
        guard case .string(let token)? = table["token"], case .string(let fpToken)? = table["fp_token"], !token.isEmpty, !fpToken.isEmpty else {
            return failure("= \"\(name)\": \(path) must set token = \"…\" and fp_token = \"…\"")
        }
        if let extra = table.keys.first(where: { $0 != "token" && $0 != "fp_token" }) { return failure("= \"\(name)\": \(path): unknown key \(extra)") }
        return .success((token, fpToken))
    }
}

/// A numeric IPv4 or IPv6 address (what the servers bind; no names, no lookups).
func isNumericIP(_ s: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
}

private func readEndpoint(_ s: Section, _ issues: IssueList) -> ModbusEndpoint? {
    let tcp = s.string("tcp", default: "")!
    let rtu = s.string("rtu", default: "")!
    let baud = s.number("baud")!
    let parity = s.string("parity")!
    if tcp.isEmpty == rtu.isEmpty {
        issues.add(s.line, s.path, "give exactly one of tcp = \"HOST:PORT\" or rtu = \"/dev/…\"")
        return nil
    }
    if !tcp.isEmpty {
        do { return try ModbusEndpoint.parseTCP(tcp) } catch {
            issues.add(s.table.line(of: "tcp"), "\(s.path).tcp", error.description)
            return nil
        }
    }
    return .rtu(SerialLine(device: rtu, baud: Int(baud), parity: SerialLine.Parity(rawValue: parity)!))
}
