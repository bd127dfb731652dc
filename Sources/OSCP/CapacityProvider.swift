import HTTPTransport
import LMCPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What `[oscp]` configures (docs/config.md).
public struct OSCPConfig: Sendable, Equatable {
    /// Where our endpoint listens; the FP calls `{our_base_url}/register` etc.
    public var listenHost: String
    public var listenPort: Int
    /// The base URL we announce (`…/oscp/cp/2.0`), as the FP reaches us.
    public var ourBaseURL: String
    /// The FP's base URL for its registration (`…/oscp/fp/2.0`), and the token agreed out of band to
    /// call it the first time. After registration the FP's own token and base URL are used.
    public var fpBaseURL: String
    public var fpInitialToken: String
    /// The token the FP must send us (`Authorization: Token …`).
    public var ourToken: String
    /// What we require of the FP (handshake): its heartbeat every this many seconds.
    public var heartbeatIntervalS: Int
    /// Our heartbeat to the FP when it does not ask for an interval.
    public var defaultOwnHeartbeatS: Int
    /// CONSUMPTION blocks reach this far ahead; they are refreshed every `refreshS`.
    public var forecastMinutes: Double
    public var refreshS: Double
    /// Site id → OSCP group id.
    public var groups: [String: String]
    /// PEM certificate and key for our endpoint (TLS); CA file to verify the FP.
    public var certificate: String?
    public var key: String?
    public var caFile: String?
    /// Plain HTTP off loopback only when this is set.
    public var allowPlainHTTP: Bool
    /// Where the FP's token and base URL from its registration are kept (0600), so a restart or a
    /// reload resumes with a handshake instead of registering again with the out-of-band token.
    public var stateFile: String?
    /// Further base URLs the FP may announce in its `register` (besides `fpBaseURL`'s origin). A
    /// register naming any other scheme, host or port is refused: it would point lmc at another host.
    public var allowedFPBaseURLs: [String] = []
    /// With TLS: the CA that signs the FP's client certificate (mutual TLS); nil: no client certificate.
    public var clientCAFile: String?
    /// Inbound connections served at once, and the deadline for each whole request.
    public var maxConnections: Int = 8
    public var requestDeadlineSeconds: Double = 10
    /// With no post from the control loop for this long, the loop is taken as stalled: our heartbeats
    /// and forecasts stop, so the FP's offline_mode_at passes and it applies our fallback (nil: never).
    public var stallAfterSeconds: Double?

    public init(listenHost: String = "127.0.0.1", listenPort: Int = 8090, ourBaseURL: String, fpBaseURL: String, fpInitialToken: String,
                ourToken: String, heartbeatIntervalS: Int = 30, defaultOwnHeartbeatS: Int = 60, forecastMinutes: Double = 15, refreshS: Double = 300,
                groups: [String: String], certificate: String? = nil, key: String? = nil, caFile: String? = nil, allowPlainHTTP: Bool = false) {
        self.listenHost = listenHost; self.listenPort = listenPort; self.ourBaseURL = ourBaseURL; self.fpBaseURL = fpBaseURL
        self.fpInitialToken = fpInitialToken; self.ourToken = ourToken; self.heartbeatIntervalS = heartbeatIntervalS
        self.defaultOwnHeartbeatS = defaultOwnHeartbeatS; self.forecastMinutes = forecastMinutes; self.refreshS = refreshS
        self.groups = groups; self.certificate = certificate; self.key = key; self.caFile = caFile; self.allowPlainHTTP = allowPlainHTTP
    }

    /// Problems that must stop the box from starting: named with the key and the fix.
    public func validate() -> [String] {
        var e: [String] = []
        let loopback = ["127.0.0.1", "localhost", "::1"]
        guard let fp = HTTPURL(fpBaseURL) else { return ["oscp.fp_base_url: '\(fpBaseURL)' is not an http(s) URL"] }
        guard let ours = HTTPURL(ourBaseURL) else { return ["oscp.our_base_url: '\(ourBaseURL)' is not an http(s) URL"] }
        if (certificate == nil) != (key == nil) { e.append("oscp: set both tls_certificate and tls_key, or neither") }
        if !allowPlainHTTP {
            if certificate == nil && !loopback.contains(listenHost) {
                e.append("oscp.listen = \"\(listenHost)\" without TLS: set tls_certificate and tls_key, or allow_plain_http = true")
            }
            if !fp.tls && !loopback.contains(fp.host) { e.append("oscp.fp_base_url is plain http to \(fp.host): use https, or allow_plain_http = true") }
            if !ours.tls && !loopback.contains(ours.host) { e.append("oscp.our_base_url is plain http to \(ours.host): use https, or allow_plain_http = true") }
        }
        if ourToken.count < 16 { e.append("oscp.token: at least 16 characters (it authenticates the CPMS)") }
        if fpInitialToken.isEmpty { e.append("oscp.fp_token: empty") }
        for (k, t) in [("token", ourToken), ("fp_token", fpInitialToken)] where !t.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) {
            e.append("oscp.\(k): only visible ASCII characters (it goes into an HTTP header)")
        }
        for u in allowedFPBaseURLs where HTTPURL(u) == nil { e.append("oscp.fp_allowed_base_urls: '\(u)' is not an http(s) URL") }
        if clientCAFile != nil && certificate == nil { e.append("oscp.client_ca_file needs tls_certificate and tls_key (mutual TLS is TLS)") }
        // Only regular files go to OpenSSL (a device or a FIFO named here would hang the check).
        for (k, f) in [("tls_certificate", certificate), ("tls_key", key), ("ca_file", caFile), ("client_ca_file", clientCAFile)] {
            guard let f else { continue }
            var st = stat()
            if stat(f, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG {
                e.append("oscp.\(k): '\(f)' is not a readable regular file")
                return e
            }
        }
        // The files must load now: a provider that cannot start is a refused config, not a box running without it.
        if let certificate, let key {
            do { try TLSFiles.checkServer(certificate: certificate, key: key, clientCA: clientCAFile) } catch { e.append("oscp: \(error)") }
        }
        if fp.tls {
            do { try TLSFiles.checkClient(caFile: caFile) } catch { e.append("oscp: \(error)") }
        }
        if groups.isEmpty { e.append("oscp: no site has an oscp_group") }
        return e
    }

    /// Whether a base URL the FP announced may be used: same scheme, host and port as `fpBaseURL` or one
    /// of `allowedFPBaseURLs` (the path is the FP's to choose).
    public func allowsFPBaseURL(_ url: HTTPURL) -> Bool {
        ([fpBaseURL] + allowedFPBaseURLs).compactMap(HTTPURL.init).contains { $0.tls == url.tls && $0.host.lowercased() == url.host.lowercased() && $0.port == url.port }
    }
}

/// Per site: what the FP was last told, and whether it is listening.
public struct OSCPSiteStatus: Sendable, Equatable {
    public var group: String
    public var phase: String
    public var lastForecastKW: Double?
    public var forecastsSent: Int
    /// Monotonic ns since when the FP has been unreachable or its heartbeat lapsed (a deaf relay).
    public var failingSinceNs: UInt64?
    public var lastError: String?
    /// The site's import as the FP reports it (update_group_measurements): customer-provided, lower
    /// trust than the DNO's meter. W, and when (monotonic ns).
    public var reportedImportW: Double?
    public var reportedAtNs: UInt64?
    /// The FP's last compliance error for this group, while it stands (it clears when a new forecast
    /// is accepted by the FP or after `refresh_s` without another one), and since when (monotonic ns).
    public var complianceError: String?
    public var complianceErrorSinceNs: UInt64?
}

/// Our side of OSCP 2.0 as Capacity Provider: registers with the FP, hands over set points as capacity
/// forecasts with fallback blocks, watches the FP's heartbeat, takes its measurements and compliance
/// errors. Network work runs on its own thread; the control loop only posts and reads status.
public final class OSCPCapacityProvider: Sendable {
    public enum Phase: String, Sendable { case registering, awaitingRegister = "awaiting register", handshaking, ready }

    public let config: OSCPConfig
    /// Events for the ring log (register, handshake, lapses, compliance errors).
    public typealias EventSink = @Sendable (_ text: String, _ alarm: Bool) -> Void

    private struct FP { var token: String; var baseURL: HTTPURL }
    private struct State {
        var phase: Phase = .registering
        var fp: FP
        var fpHeartbeatInterval: Int?
        var fpOfflineAt: Double?          // wall seconds
        var fpOfflineSinceNs: UInt64?
        var unreachableSinceNs: UInt64?
        var nextAttemptNs: UInt64 = 0
        var backoff: Double = 1
        var nextOwnHeartbeatNs: UInt64 = 0
        var sites: [String: OSCPSiteStatus] = [:]
        var wanted: [String: (watts: Double, fallbackW: [Double])] = [:]
        var sent: [String: (watts: Double, atNs: UInt64, fallbackW: [Double])] = [:]
        var lastEnergy: [String: (wh: Double, at: Double)] = [:]
        var lastError: String?
        /// Since when the exchange has not been `ready` (set at start): the FP has no current forecast.
        var notReadySinceNs: UInt64?
        /// Why our endpoint is not listening (the port taken): retried every 10 s.
        var serverError: String?
        var nextServerAttemptNs: UInt64 = 0
        /// When the control loop last posted, and since when it has been taken as stalled.
        var postedAtNs: UInt64 = 0
        var stalledSinceNs: UInt64?
    }
    private let state: Mutex<State>
    private let server: Mutex<HTTPServer?>
    private let handlerBox: Handler
    private let client: HTTPClient
    private let loop = LoopThread()
    private let events: EventSink
    private let wallClock: @Sendable () -> Double

    public init(_ config: OSCPConfig, events: @escaping EventSink, wallClock: @escaping @Sendable () -> Double = { wallSeconds() }) throws(HTTPError) {
        self.config = config
        self.events = events
        self.wallClock = wallClock
        guard let fpURL = HTTPURL(config.fpBaseURL) else { throw HTTPError(.config, "oscp.fp_base_url '\(config.fpBaseURL)' is not a URL") }
        var s = State(fp: FP(token: config.fpInitialToken, baseURL: fpURL))
        s.notReadySinceNs = monotonicNanoseconds()
        s.postedAtNs = monotonicNanoseconds()
        if let path = config.stateFile, let saved = Self.loadRegistration(path) {
            // A registration kept from before is trusted no more than a new one: a base URL outside the
            // configured origins (kept by an older lmc) or a token that cannot go into a header is dropped.
            if config.allowsFPBaseURL(saved.url) && isCleanHeaderValue(saved.token.utf8) {
                s.fp = FP(token: saved.token, baseURL: saved.url)
                s.phase = .handshaking
            } else {
                unlink(path)
                events("OSCP: dropped the kept registration in \(path): its base URL \(saved.url) is not the configured FP", true)
            }
        }
        for (site, group) in config.groups { s.sites[site] = OSCPSiteStatus(group: group, phase: Phase.registering.rawValue, forecastsSent: 0) }
        let st = Mutex(s)
        state = st
        client = try HTTPClient(caFile: config.caFile, useTLS: fpURL.tls)
        handlerBox = Handler(config: config)
        server = Mutex(nil)
        handlerBox.provider.withLock { $0 = Weak(self) }
        try startServer(nowNs: monotonicNanoseconds(), tlsErrorsThrow: true)
    }

    /// Opens our endpoint. A TLS file that does not load throws (the config is refused); a port that
    /// cannot be bound is a failure the status shows (the relay fails, RELAY_FAILING) and is retried.
    private func startServer(nowNs: UInt64, tlsErrorsThrow: Bool) throws(HTTPError) {
        if tlsErrorsThrow, let c = config.certificate, let k = config.key {
            try TLSFiles.checkServer(certificate: c, key: k, clientCA: config.clientCAFile)
        }
        let box = handlerBox
        do {
            let srv = try HTTPServer(host: config.listenHost, port: config.listenPort, certificate: config.certificate, key: config.key,
                                     clientCA: config.clientCAFile, maxConnections: config.maxConnections,
                                     requestDeadlineSeconds: config.requestDeadlineSeconds) { req in box.handle(req) }
            server.withLock { $0 = srv }
            let was = state.withLock { s -> String? in defer { s.serverError = nil }; return s.serverError }
            if was != nil { events("OSCP: our endpoint listens again on \(config.listenHost):\(srv.port)", false) }
        } catch {
            let first = state.withLock { s -> Bool in
                defer { s.serverError = "our endpoint: \(error)"; s.nextServerAttemptNs = nowNs + 10_000_000_000 }
                return s.serverError == nil
            }
            if first { events("OSCP: our endpoint cannot listen: \(error); retrying every 10 s", true) }
        }
    }

    /// The port our endpoint listens on (0 while it cannot listen).
    public var port: Int { server.withLock { $0?.port ?? 0 } }

    /// Inbound connection counters (refused at the cap, cut at the deadline).
    public var serverStats: HTTPServer.Stats? { server.withLock { $0?.stats } }

    public func start() { loop.start { [self] in run() } }

    /// Stops without waiting on the FP: a request in flight ends at its own deadline (5 s) on the
    /// provider's thread, which then exits. Called by the control loop on a reload.
    public func stop() {
        loop.requestStop()
        server.withLock { $0 }?.stop()
    }

    /// The set point for a site and its fallback profile (48 half-hours from 00:00 UTC, W; one value: flat).
    public func post(site: String, watts: Double, fallbackW: [Double]) {
        let now = monotonicNanoseconds()
        state.withLock { $0.wanted[site] = (watts, fallbackW); $0.postedAtNs = now }
    }

    public func status(site: String) -> OSCPSiteStatus? {
        state.withLock { s in
            guard var st = s.sites[site] else { return nil }
            st.phase = s.phase.rawValue
            // Failing: the FP unreachable, its heartbeat lapsed, or not `ready` (registering or
            // handshaking: the FP has no current forecast from us) — the loop raises RELAY_FAILING
            // after relay_alarm_after_s, as for a charger that stops answering.
            let failing = [s.unreachableSinceNs, s.fpOfflineSinceNs, s.stalledSinceNs, s.phase == .ready ? nil : s.notReadySinceNs].compactMap { $0 }.min()
            st.failingSinceNs = failing
            st.lastError = s.stalledSinceNs.map { _ in Self.stalledText } ?? s.serverError ?? s.lastError
                ?? (s.phase == .ready ? nil : "not ready: \(s.phase.rawValue)")
            return st
        }
    }

    public var phase: Phase { state.withLock { $0.phase } }

    // MARK: outbound

    private func headers(_ token: String) -> [(String, String)] {
        [("Authorization", "Token \(token)"), ("X-Request-ID", requestID())]
    }

    private func send(_ suffix: String, _ body: [UInt8]) -> Result<Void, HTTPError> {
        let (fp, url) = state.withLock { ($0.fp, $0.fp.baseURL.appending(suffix)) }
        do {
            let r = try client.post(url, headers: headers(fp.token), body: body)
            guard (200..<300).contains(r.status) else {
                // The FP's own words, bounded and printable: they reach the console and the events ring.
                return .failure(HTTPError(.status(r.status), "\(url.path): HTTP \(r.status)\(r.header("X-Error-Message").map { " (\(printableText($0, max: 200)))" } ?? "")"))
            }
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    private func run() {
        while !loop.isStopping {
            let now = monotonicNanoseconds()
            if state.withLock({ $0.serverError != nil && now >= $0.nextServerAttemptNs }) { try? startServer(nowNs: now, tlsErrorsThrow: false) }
            clearStaleComplianceErrors(nowNs: now)
            step(nowNs: now)
            usleep(50_000)
        }
    }

    private func failed(_ what: String, _ error: HTTPError, nowNs: UInt64) {
        let first = state.withLock { s -> Bool in
            let first = s.unreachableSinceNs == nil
            if first { s.unreachableSinceNs = nowNs }
            s.lastError = "\(what): \(error)"
            s.nextAttemptNs = nowNs + UInt64(s.backoff * 1e9)
            s.backoff = min(60, s.backoff * 2)
            return first
        }
        if first { events("OSCP: \(what) failed: \(error)", true) }
    }

    private func succeeded() {
        let wasDown = state.withLock { s -> Bool in
            defer { s.unreachableSinceNs = nil; s.backoff = 1; s.lastError = nil }
            return s.unreachableSinceNs != nil
        }
        if wasDown { events("OSCP: FP reachable again", false) }
    }

    func step(nowNs: UInt64) {
        let (phase, due) = state.withLock { ($0.phase, nowNs >= $0.nextAttemptNs) }
        guard due else { return }
        switch phase {
        case .registering:
            let body = encodeOSCP(OSCPWire.Register(token: config.ourToken, version_url: [.init(version: OSCPWire.version, base_url: config.ourBaseURL)]))
            switch send("/register", body) {
            case .success:
                succeeded()
                state.withLock { $0.phase = .awaitingRegister; $0.nextAttemptNs = nowNs + 30_000_000_000 }
                events("OSCP: registered with the FP at \(config.fpBaseURL); waiting for its register", false)
            case .failure(let e): failed("register", e, nowNs: nowNs)
            }
        case .awaitingRegister:
            // The FP did not answer with its own register within 30 s: start over.
            state.withLock { $0.phase = .registering }
        case .handshaking:
            let body = encodeOSCP(OSCPWire.Handshake(required_behaviour: .init(heartbeat_interval: config.heartbeatIntervalS,
                                                                              measurement_configuration: ["CONTINUOUS"])))
            switch send("/handshake", body) {
            case .success:
                succeeded()
                // The acknowledgement arrives as its own request; until then, ask again every 30 s.
                state.withLock { $0.nextAttemptNs = nowNs + 30_000_000_000 }
            case .failure(let e):
                // The FP no longer knows the token we kept (it was re-provisioned): register afresh.
                if e.kind == .status(401), let f = config.stateFile {
                    unlink(f)
                    state.withLock { $0.fp = FP(token: config.fpInitialToken, baseURL: HTTPURL(config.fpBaseURL)!); $0.phase = .registering }
                    events("OSCP: the FP refused the token kept from its last registration; registering again", false)
                }
                failed("handshake", e, nowNs: nowNs)
            }
        case .ready:
            readyStep(nowNs: nowNs)
        }
    }

    static let stalledText = "control loop stalled: heartbeats and forecasts to the FP stopped, so it applies our fallback"

    /// True while the control loop has not posted for `stallAfterSeconds`: nothing goes to the FP then,
    /// so its `offline_mode_at` passes and it falls back, as a charger's validity timer does. The first
    /// post after a stall sends a heartbeat at once.
    private func loopStalled(nowNs: UInt64) -> Bool {
        guard let limit = config.stallAfterSeconds else { return false }
        let (stalled, changed) = state.withLock { s -> (Bool, Bool) in
            let stalled = nowNs > s.postedAtNs && Double(nowNs - s.postedAtNs) / 1e9 > limit
            let was = s.stalledSinceNs != nil
            if stalled && !was { s.stalledSinceNs = s.postedAtNs + UInt64(limit * 1e9) }
            if !stalled && was { s.stalledSinceNs = nil; s.nextOwnHeartbeatNs = 0 }
            return (stalled, stalled != was)
        }
        if changed {
            events(stalled ? "OSCP: \(Self.stalledText)" : "OSCP: the control loop posts again: heartbeats and forecasts resume", stalled)
        }
        return stalled
    }

    private func readyStep(nowNs: UInt64) {
        guard !loopStalled(nowNs: nowNs) else { return }
        let wall = wallClock()
        // The FP's heartbeat: its offline_mode_at passed means it is deaf to us.
        let lapsed = state.withLock { s -> Bool in
            guard let off = s.fpOfflineAt, wall > off, s.fpOfflineSinceNs == nil else { return false }
            s.fpOfflineSinceNs = nowNs
            return true
        }
        if lapsed { events("OSCP: the FP's heartbeat lapsed (offline_mode_at passed); it should apply our fallback forecast", true) }

        // Our heartbeat.
        let ownInterval = Double(state.withLock { $0.fpHeartbeatInterval } ?? config.defaultOwnHeartbeatS)
        if state.withLock({ nowNs >= $0.nextOwnHeartbeatNs }) {
            let hb = OSCPWire.Heartbeat(offline_mode_at: RFC3339.format(wall + 2 * ownInterval + 5))
            switch send("/heartbeat", encodeOSCP(hb)) {
            case .success:
                succeeded()
                state.withLock { $0.nextOwnHeartbeatNs = nowNs + UInt64(ownInterval * 1e9) }
            case .failure(let e):
                failed("heartbeat", e, nowNs: nowNs)
                return
            }
        }

        // Forecasts: on change at once, else every refresh.
        let work = state.withLock { s -> [(String, String, Double, [Double], Bool)] in
            s.wanted.compactMap { site, w in
                guard let group = config.groups[site] else { return nil }
                let last = s.sent[site]
                // A decrease goes at once; increases (a ramp moves every cycle) at most every 2 s.
                let down = last.map { w.watts < $0.watts - 1 } ?? true
                let up = last.map { w.watts > $0.watts + 1 && nowNs >= $0.atNs + 2_000_000_000 } ?? false
                let changed = down || up || last!.fallbackW != w.fallbackW
                let stale = last.map { nowNs >= $0.atNs + UInt64(config.refreshS * 1e9) } ?? true
                guard changed || stale else { return nil }
                return (site, group, w.watts, w.fallbackW, last == nil || last!.fallbackW != w.fallbackW || stale)
            }
        }
        for (site, group, watts, fallback, withFallback) in work {
            let start = wall
            let consumption = OSCPWire.UpdateGroupCapacityForecast(
                group_id: group, type: "CONSUMPTION",
                forecasted_blocks: [.init(capacity: Self.kW(watts), phase: "ALL", unit: "KW",
                                          start_time: RFC3339.format(start), end_time: RFC3339.format(start + config.forecastMinutes * 60))])
            if case .failure(let e) = send("/update_group_capacity_forecast", encodeOSCP(consumption)) {
                failed("update_group_capacity_forecast", e, nowNs: nowNs)
                return
            }
            if withFallback {
                let f = OSCPWire.UpdateGroupCapacityForecast(group_id: group, type: "FALLBACK_CONSUMPTION",
                                                             forecasted_blocks: Self.fallbackBlocks(fallback, from: start))
                if case .failure(let e) = send("/update_group_capacity_forecast", encodeOSCP(f)) {
                    failed("update_group_capacity_forecast (fallback)", e, nowNs: nowNs)
                    return
                }
            }
            succeeded()
            if changedDown(site: site, watts: watts) { clearStaleComplianceErrors(nowNs: nowNs, acceptedSite: site) }
            state.withLock { s in
                s.sent[site] = (watts, nowNs, fallback)
                s.sites[site]?.lastForecastKW = watts / 1000
                s.sites[site]?.forecastsSent += 1
            }
        }
    }

    /// True when `watts` differs from what the FP was last told for the site (a new forecast, not a refresh).
    private func changedDown(site: String, watts: Double) -> Bool {
        state.withLock { s in s.sent[site].map { abs($0.watts - watts) > 1 } ?? true }
    }

    /// kW to 0.1, rounded down: the CPMS is never told more than the set point.
    static func kW(_ watts: Double) -> Double { (watts / 100 + 1e-6).rounded(.down) / 10 }

    /// The fallback profile over the next 24 h: half-hour blocks of the local-time TCC profile (merged where equal),
    /// or one block of the firm value.
    static func fallbackBlocks(_ profile: [Double], from start: Double) -> [OSCPWire.ForecastedBlock] {
        let end = start + 86_400
        guard profile.count == 48 else {
            return [.init(capacity: kW(profile.first ?? 0), phase: "ALL", unit: "KW", start_time: RFC3339.format(start), end_time: RFC3339.format(end))]
        }
        var blocks: [OSCPWire.ForecastedBlock] = []
        var t = start
        while t < end {
            // The TCC profile is in local time (as the control core reads it).
            var tt = time_t(t)
            var local = tm()
            localtime_r(&tt, &local)
            let slot = Int((local.tm_hour * 3600 + local.tm_min * 60) / 1800) % 48
            let next = min(end, (t / 1800).rounded(.down) * 1800 + 1800)
            let kw = kW(profile[slot])
            if let last = blocks.last, last.capacity == kw {
                blocks[blocks.count - 1].end_time = RFC3339.format(next)
            } else {
                blocks.append(.init(capacity: kw, phase: "ALL", unit: "KW", start_time: RFC3339.format(t), end_time: RFC3339.format(next)))
            }
            t = next
        }
        return blocks
    }

    // MARK: inbound

    static func loadRegistration(_ path: String) -> (token: String, url: HTTPURL)? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 4096)
        let n = fread(&buf, 1, buf.count - 1, f)
        let lines = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "\n").map(String.init)
        guard lines.count >= 2, !lines[0].isEmpty, let url = HTTPURL(lines[1]) else { return nil }
        return (lines[0], url)
    }

    private func saveRegistration(token: String, url: HTTPURL) {
        guard let path = config.stateFile else { return }
        do { try AtomicFile.write("\(token)\n\(url)\n", to: path, mode: 0o600) } catch {
            events("OSCP: cannot keep the registration: \(error)", false)
        }
    }

    fileprivate func registered(by fpToken: String, baseURL: HTTPURL) {
        saveRegistration(token: fpToken, url: baseURL)
        let now = monotonicNanoseconds()
        state.withLock { s in
            s.fp = FP(token: fpToken, baseURL: baseURL)
            if s.phase == .ready { s.notReadySinceNs = now }
            s.phase = .handshaking
            s.nextAttemptNs = 0
        }
        events("OSCP: the FP registered (base URL \(baseURL)); sending handshake", false)
    }

    fileprivate func acknowledged(_ ack: OSCPWire.HandshakeAcknowledgement) {
        state.withLock { s in
            s.fpHeartbeatInterval = ack.required_behaviour?.heartbeat_interval
            s.phase = .ready
            s.notReadySinceNs = nil
            s.nextAttemptNs = 0
            s.nextOwnHeartbeatNs = 0
            s.sent = [:]
            // Until the FP's first heartbeat: it has one of its own intervals to send it.
            s.fpOfflineAt = wallClock() + Double(config.heartbeatIntervalS) * 2
        }
        events("OSCP: handshake acknowledged; heartbeat to the FP every \(ack.required_behaviour?.heartbeat_interval.map(String.init) ?? "\(config.defaultOwnHeartbeatS) (default)") s", false)
    }

    /// The latest `offline_mode_at` we believe: the FP must send its heartbeat every `heartbeat_interval_s`
    /// (we required it in the handshake), so a time further ahead than three intervals (at least 30 s) is
    /// cut to that — an FP that says "offline in 10 years" and goes silent is deaf within three intervals.
    func boundedOfflineAt(_ offlineAt: Double, wall: Double) -> Double {
        min(offlineAt, wall + max(30, 3 * Double(config.heartbeatIntervalS)))
    }

    fileprivate func heartbeat(offlineAt: Double) {
        let offlineAt = boundedOfflineAt(offlineAt, wall: wallClock())
        let back = state.withLock { s -> Bool in
            s.fpOfflineAt = offlineAt
            defer { s.fpOfflineSinceNs = nil }
            return s.fpOfflineSinceNs != nil
        }
        if back { events("OSCP: the FP's heartbeat is back", false) }
    }

    fileprivate func measurements(_ m: OSCPWire.UpdateGroupMeasurements) {
        guard let site = config.groups.first(where: { $0.value == m.group_id })?.key else { return }
        // Accumulated import energy: power from two readings.
        let imports = m.measurements.filter { $0.direction == "IMPORT" || $0.direction == "NET" }
        guard let latest = imports.max(by: { (RFC3339.parse($0.measure_time) ?? 0) < (RFC3339.parse($1.measure_time) ?? 0) }),
              let t = RFC3339.parse(latest.measure_time) else { return }
        let wh = latest.unit == "KWH" ? latest.value * 1000 : latest.value
        let now = monotonicNanoseconds()
        state.withLock { s in
            if let prev = s.lastEnergy[site], t > prev.at {
                s.sites[site]?.reportedImportW = (wh - prev.wh) / (t - prev.at) * 3600
                s.sites[site]?.reportedAtNs = now
            }
            s.lastEnergy[site] = (wh, t)
        }
    }

    fileprivate func complianceError(_ e: OSCPWire.GroupCapacityComplianceError, correlation: String?) {
        // The FP's text is shown on consoles and in the log: control characters (terminal escapes) out, length bounded.
        let text = "the FP cannot comply: \(printableText(e.message, max: 200))\(correlation.map { " (forecast \(printableText($0, max: 64)))" } ?? "")"
        let now = monotonicNanoseconds()
        let raised = state.withLock { s -> Bool in
            var raised = false
            // The message names no group: it stands for every group of this box.
            for site in s.sites.keys {
                if s.sites[site]?.complianceError == nil { raised = true }
                s.sites[site]?.complianceError = text
                s.sites[site]?.complianceErrorSinceNs = now
            }
            return raised
        }
        // The alarm is the cycle's (OSCP_NONCOMPLIANCE while it stands); this is the log line.
        _ = raised
        events("OSCP: \(text)", false)
    }

    /// A compliance error stands until the FP accepts a new forecast for its group or `refresh_s` passes
    /// without another one; then it clears with an event.
    private func clearStaleComplianceErrors(nowNs: UInt64, acceptedSite: String? = nil) {
        let cleared = state.withLock { s -> [String] in
            var out: [String] = []
            for (site, st) in s.sites where st.complianceError != nil {
                let stale = st.complianceErrorSinceNs.map { nowNs &- $0 >= UInt64(config.refreshS * 1e9) } ?? true
                if stale || site == acceptedSite {
                    out.append("OSCP: compliance error of group \(st.group) cleared (\(site == acceptedSite ? "a new forecast was accepted" : "none for \(Int(config.refreshS)) s"))")
                    s.sites[site]?.complianceError = nil
                    s.sites[site]?.complianceErrorSinceNs = nil
                }
            }
            return out
        }
        for c in cleared { events(c, false) }
    }

    fileprivate func knownGroup(_ g: String) -> Bool { config.groups.values.contains(g) }
    fileprivate var acceptsMessages: Bool { state.withLock { $0.phase != .registering } }
}

private struct Refusal: Error { let response: HTTPResponse }

private struct Weak: @unchecked Sendable {
    weak var value: OSCPCapacityProvider?
    init(_ v: OSCPCapacityProvider) { value = v }
}

/// The inbound side: `/oscp/cp/2.0/…` (or whatever path our_base_url has), token, request id, body.
private final class Handler: Sendable {
    let config: OSCPConfig
    let provider = Mutex<Weak?>(nil)
    let basePath: String

    init(config: OSCPConfig) {
        self.config = config
        let p = HTTPURL(config.ourBaseURL)?.path ?? "/oscp/cp/2.0"
        basePath = p.hasSuffix("/") ? String(p.dropLast()) : p
    }

    func handle(_ req: HTTPRequest) -> HTTPResponse {
        var echo: [(String, String)] = []
        if let c = req.headers["x-correlation-id"] { echo.append(("X-Correlation-ID", c)) }
        func bad(_ status: Int, _ message: String) -> HTTPResponse { HTTPResponse(status: status, headers: echo + [("X-Error-Message", message)]) }
        guard req.path.hasPrefix(basePath + "/") else { return bad(404, "no such endpoint: \(req.path)") }
        let name = String(req.path.dropFirst(basePath.count + 1))
        let known = ["register", "handshake", "handshake_acknowledge", "handshake_acknowledgment", "handshake_acknowledgement", "heartbeat",
                     "update_group_measurements", "group_capacity_compliance_error", "adjust_group_capacity_forecast"]
        guard known.contains(name) else { return bad(404, "no such endpoint: \(req.path)") }
        guard req.method == "POST" else { return bad(405, "\(req.method): OSCP endpoints take POST") }
        guard let auth = req.headers["authorization"], constantTimeEquals(auth, "Token \(config.ourToken)") else {
            return bad(401, req.headers["authorization"] == nil ? "Authorization header missing (Token …)" : "token not accepted")
        }
        guard let rid = req.headers["x-request-id"], !rid.isEmpty else { return bad(400, "X-Request-ID header missing") }
        guard let p = provider.withLock({ $0?.value }) else { return bad(500, "not ready") }

        func parse<T: Decodable>(_ t: T.Type, _ validate: (T) -> [String]) -> Result<T, Refusal> {
            switch decodeOSCP(t, from: req.body) {
            case .failure(let e): return .failure(Refusal(response: bad(400, e.description)))
            case .success(let m):
                let problems = validate(m)
                return problems.isEmpty ? .success(m) : .failure(Refusal(response: bad(400, problems.joined(separator: "; "))))
            }
        }
        let ok = HTTPResponse(status: 204, headers: echo)
        switch name {
        case "register":
            switch parse(OSCPWire.Register.self, { $0.validate() }) {
            case .failure(let r): return r.response
            case .success(let m):
                guard let v = m.version_url.first(where: { $0.version == OSCPWire.version }), let url = HTTPURL(v.base_url) else {
                    return bad(400, "version_url: no entry for OSCP \(OSCPWire.version)")
                }
                // The FP may not send us elsewhere: only the configured FP's origin (or a listed one).
                guard config.allowsFPBaseURL(url) else {
                    return bad(400, "version_url: \(url.tls ? "https" : "http")://\(url.host):\(url.port) is not the configured FP (fp_base_url, fp_allowed_base_urls)")
                }
                guard isCleanHeaderValue(m.token.utf8), m.token.utf8.allSatisfy({ $0 > 32 }) else { return bad(400, "token: only visible characters") }
                p.registered(by: m.token, baseURL: url)
                return ok
            }
        case "handshake":
            // The FP may ask us for our behaviour too: we accept it; our acknowledgement rides on our own
            // handshake flow (we do not need the FP to send us anything but heartbeats and measurements).
            switch parse(OSCPWire.Handshake.self, { $0.validate() }) {
            case .failure(let r): return r.response
            case .success: return ok
            }
        case "handshake_acknowledge", "handshake_acknowledgment", "handshake_acknowledgement":
            switch parse(OSCPWire.HandshakeAcknowledgement.self, { $0.validate() }) {
            case .failure(let r): return r.response
            case .success(let m):
                guard p.acceptsMessages else { return bad(400, "handshake acknowledged before registration") }
                p.acknowledged(m)
                return ok
            }
        case "heartbeat":
            switch parse(OSCPWire.Heartbeat.self, { $0.validate() }) {
            case .failure(let r): return r.response
            case .success(let m):
                p.heartbeat(offlineAt: RFC3339.parse(m.offline_mode_at)!)
                return ok
            }
        case "update_group_measurements":
            switch parse(OSCPWire.UpdateGroupMeasurements.self, { $0.validate() }) {
            case .failure(let r): return r.response
            case .success(let m):
                guard p.knownGroup(m.group_id) else { return bad(400, "group_id: '\(m.group_id)' is not a group of this box") }
                p.measurements(m)
                return ok
            }
        case "group_capacity_compliance_error":
            switch parse(OSCPWire.GroupCapacityComplianceError.self, { $0.validate() }) {
            case .failure(let r): return r.response
            case .success(let m):
                p.complianceError(m, correlation: req.headers["x-correlation-id"])
                return ok
            }
        default:
            // adjust_group_capacity_forecast: the capacity is the DNO's to set; acknowledged, not acted on.
            return ok
        }
    }
}

/// Text from a peer made safe for a terminal and a log line: every control character (ESC, CR, LF, BEL,
/// C1 controls) becomes "?", and it is cut at `max` characters.
public func printableText(_ text: String, max: Int = 200) -> String {
    var out = ""
    for ch in text.unicodeScalars.prefix(max) {
        let v = ch.value
        out.unicodeScalars.append(v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) ? "?" : ch)
    }
    return text.unicodeScalars.count > max ? out + "…" : out
}

func requestID() -> String {
    var bytes = [UInt8](repeating: 0, count: 12)
    for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
    return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

public func wallSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
