import ArgumentParser
import CTSensorDriver
import CTimex
import DigitalIO
import LMCConfig
import LMCWiring
import ModbusBridge
import SetPointRelay
import Supervision
import TOMLReader

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `lmc doctor`: everything a field engineer checks on a box, one line each, with what to do about a
/// failure (docs/doctor.md). Read-only: it never writes to a meter or charger, never drives an output
/// line, and leaves the serial buses to the daemon when the daemon is running.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the box: config, meters, chargers, GPIO, clock, ring log, disk, service, watchdog, SSH, sysrq.",
        discussion: """
        One line per check: ok, warn (worth a look) or FAIL, and under each that is
        not ok what to do. Exit status 1 when any check fails. Read-only: no
        register or output line is written. While lmc runs, meters and chargers
        are judged from what the daemon sees (it owns the serial buses); when it
        is stopped, doctor asks each device itself.
        Checks: config, meters, chargers, gpio, clock, log, disk, service,
        watchdog, ssh, sysrq (--skip takes these names).
        Examples:
          lmc doctor
          lmc doctor --config /etc/lmc/lmc.toml --json
          lmc doctor --skip ssh,sysrq
        """
    )

    @Option(help: ArgumentHelp("The config file.", valueName: "file"))
    var config: String = "/etc/lmc/lmc.toml"

    @Option(help: ArgumentHelp("Control socket (default: [box] socket in the config).", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("Checks to leave out, comma-separated (config, meters, chargers, gpio, clock, log, disk, service, watchdog, ssh, sysrq).", valueName: "names"))
    var skip: [String] = []

    @Option(name: .customLong("timeout-ms"), help: "Modbus response timeout when doctor asks a device itself.")
    var timeoutMilliseconds: Int = 1000

    @Option(help: ArgumentHelp("The systemd unit.", valueName: "name"))
    var unit: String = "lmc"

    @Flag(help: "Print JSON instead of text (docs/json.md).")
    var json = false

    static let checkNames = ["config", "meters", "chargers", "gpio", "clock", "log", "disk", "service", "watchdog", "ssh", "sysrq"]

    func validate() throws {
        for name in skipped where !Self.checkNames.contains(name) {
            throw ValidationError("--skip '\(name)' is not a check (\(Self.checkNames.joined(separator: ", ")))")
        }
        guard (10...60_000).contains(timeoutMilliseconds) else { throw ValidationError("--timeout-ms \(timeoutMilliseconds) is outside 10–60000") }
    }

    var skipped: Set<String> { Set(skip.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters() } }) }

    func run() throws {
        var d = Doctor(configPath: config, socketOverride: socket, timeoutMilliseconds: timeoutMilliseconds, unit: unit, skipped: skipped)
        d.runAll()
        if json {
            print(JSON.render(.object([("ok", .bool(d.ok)), ("checks", .array(d.checks.map(\.json)))])))
        } else {
            for c in d.checks { print(c.text, terminator: "") }
            let failed = d.checks.filter { $0.status == .fail }.count, warned = d.checks.filter { $0.status == .warn }.count
            print(failed == 0 ? "doctor: all \(d.checks.count) checks passed\(warned > 0 ? ", \(warned) to look at" : "")"
                              : "doctor: \(failed) of \(d.checks.count) checks failed")
        }
        if !d.ok { throw ExitCode(1) }
    }
}

struct DoctorCheck {
    enum Status: String { case ok, warn, fail }
    var name: String
    var status: Status
    var detail: String
    var fix: String?

    /// For the 80×24 console: status, name and detail, wrapped under the detail's column; then, when
    /// not ok, what to do, wrapped under the arrow.
    var text: String {
        let tag = status == .fail ? "FAIL" : status.rawValue
        let head = tag + String(repeating: " ", count: 6 - tag.count) + name + String(repeating: " ", count: max(1, 17 - name.count))
        var s = wrap(detail, first: head, indent: head.count > 23 ? 8 : head.count)
        if status != .ok, let fix { s += wrap(fix, first: "      → ", indent: 8) }
        return s
    }

    private func wrap(_ text: String, first: String, indent: Int, width: Int = 79) -> String {
        var lines: [String] = []
        var line = first
        var empty = true
        for word in text.split(separator: " ") {
            if !empty && line.count + 1 + word.count > width {
                lines.append(line)
                line = String(repeating: " ", count: indent)
                empty = true
            }
            line += (empty ? "" : " ") + word
            empty = false
        }
        lines.append(line)
        return lines.joined(separator: "\n") + "\n"
    }

    var json: JSON.Value {
        .object([("name", .string(name)), ("status", .string(status.rawValue)), ("detail", .string(detail)),
                 ("fix", status == .ok ? .null : fix.map { .string($0) } ?? .null)])
    }
}

struct Doctor {
    let configPath: String
    let socketOverride: String?
    let timeoutMilliseconds: Int
    let unit: String
    let skipped: Set<String>
    var checks: [DoctorCheck] = []
    var configuration: Configuration?
    /// The running daemon's status-json, when its socket answers.
    var daemon: JSONReader.Value?

    init(configPath: String, socketOverride: String?, timeoutMilliseconds: Int, unit: String, skipped: Set<String>) {
        self.configPath = configPath
        self.socketOverride = socketOverride
        self.timeoutMilliseconds = timeoutMilliseconds
        self.unit = unit
        self.skipped = skipped
    }

    var ok: Bool { !checks.contains { $0.status == .fail } }

    mutating func add(_ name: String, _ status: DoctorCheck.Status, _ detail: String, fix: String? = nil) {
        checks.append(DoctorCheck(name: name, status: status, detail: detail, fix: fix))
    }

    mutating func runAll() {
        checkConfig()
        let socketPath = socketOverride ?? configuration?.runtime.socketPath ?? "/run/lmc/control.sock"
        if let answer = try? ControlSocket.request("status-json", path: socketPath), let v = try? JSONReader.parse(answer), v["mode"] != nil {
            daemon = v
        }
        if !skipped.contains("meters") { checkMeters() }
        if !skipped.contains("chargers") { checkChargers() }
        if !skipped.contains("gpio") { checkGPIO() }
        if !skipped.contains("clock") { checkClock() }
        if !skipped.contains("log") { checkLog() }
        if !skipped.contains("disk") { checkDisk() }
        if !skipped.contains("service") { checkService() }
        if !skipped.contains("watchdog") { checkWatchdog() }
        if !skipped.contains("ssh") { checkSSH() }
        if !skipped.contains("sysrq") { checkSysrq() }
    }

    // MARK: config

    mutating func checkConfig() {
        // Parsed even when skipped: the device checks need it.
        let fix = "lmc config check --config \(configPath) names each key; fix them, then systemctl reload \(unit)"
        guard let text = readText(configPath) else {
            if !skipped.contains("config") {
                add("config", .fail, "cannot read \(configPath): \(String(cString: strerror(errno)))",
                    fix: "install one (the package's example: /usr/share/lmc/hw/examples/lmc.toml) or give --config")
            }
            return
        }
        switch Configuration.parse(text) {
        case .failure(let e):
            if !skipped.contains("config") {
                add("config", .fail, "\(configPath): \(e.issues.count) problem\(e.issues.count == 1 ? "" : "s"), first: \(e.issues[0])", fix: fix)
            }
        case .success(let c):
            do { _ = try c.controller() } catch {
                if !skipped.contains("config") { add("config", .fail, "\(configPath): \(error)", fix: fix) }
                return
            }
            configuration = c
            if !skipped.contains("config") {
                add("config", .ok, "\(configPath): \(c.measurementPoints.count) measurement point\(c.measurementPoints.count == 1 ? "" : "s"), \(c.sites.count) site\(c.sites.count == 1 ? "" : "s"), \(c.runtime.meters.count) meter\(c.runtime.meters.count == 1 ? "" : "s") on \(c.runtime.buses.count) bus\(c.runtime.buses.count == 1 ? "" : "es")")
            }
        }
    }

    // MARK: meters and chargers

    func probeHint(_ meter: RuntimeConfig.Meter, _ bus: RuntimeConfig.Bus) -> String {
        switch bus.endpoint {
        case .tcp(let host, let port):
            "is the meter powered and on the network? ping \(host); lmc meter probe --profile \(meter.profile.name) --tcp \(host):\(port) --unit \(meter.unit)"
        case .rtu(let line):
            "check the RS-485 pair (A/B swapped?), termination and the meter's address \(meter.unit) and \(line.baud) baud; stop lmc and run lmc meter probe --profile \(meter.profile.name) --rtu \(line.device) --unit \(meter.unit)"
        }
    }

    mutating func checkMeters() {
        guard let c = configuration else { return add("meters", .fail, "not checked: the config is not valid", fix: "fix the config first") }
        if c.runtime.meters.isEmpty { return add("meters", .warn, "no [[meter]] in the config", fix: "add the constraint's meter (docs/config.md)") }
        if let daemon {
            // The daemon owns the buses: judge each meter by what it reads.
            let mps = daemon["measurement_points"]?.array ?? []
            for m in c.runtime.meters {
                let name = "meter \(m.id)"
                let bus = c.runtime.buses.first { $0.id == m.bus }
                let usedBy = c.runtime.mpMeter.filter { $0.value == m.id }.map(\.key).sorted()
                if let mpID = usedBy.first, let mp = mps.first(where: { $0["id"]?.string == mpID }) {
                    let quality = mp["meter"]?.string ?? "unknown"
                    let good = quality.hasPrefix("good") || quality.hasPrefix("estimated")
                    add(name, good ? .ok : .fail, "\(bus?.endpoint.description ?? m.bus) unit \(m.unit), read by the running lmc: \(quality)",
                        fix: bus.map { probeHint(m, $0) })
                } else if let site = c.runtime.sitePocMeter.first(where: { $0.value == m.id })?.key {
                    let s = daemon["sites"]?.array?.first { $0["id"]?.string == site }
                    let seen = s?["import_w"]?.number != nil
                    add(name, seen ? .ok : .fail, "\(bus?.endpoint.description ?? m.bus) unit \(m.unit), site \(site)'s PoC meter: \(seen ? "the running lmc reads its import" : "the running lmc has no import reading")",
                        fix: bus.map { probeHint(m, $0) })
                } else {
                    add(name, .warn, "configured but used by no measurement point or site", fix: "remove it or name it in meter = / poc_meter =")
                }
            }
            return
        }
        for bus in c.runtime.buses {
            let meters = c.runtime.meters.filter { $0.bus == bus.id }
            let client: ModbusClient
            do {
                client = try ModbusClient(bus.endpoint, options: .init(responseTimeoutMilliseconds: timeoutMilliseconds,
                                                                      byteTimeoutMilliseconds: min(timeoutMilliseconds, 100),
                                                                      reconnect: .init(initialMilliseconds: 0)))
            } catch {
                for m in meters { add("meter \(m.id)", .fail, "bus \(bus.id) (\(bus.endpoint)): \(error)", fix: probeHint(m, bus)) }
                continue
            }
            defer { client.close() }
            for m in meters {
                let line: SerialLine? = if case .rtu(let l) = bus.endpoint { l } else { nil }
                let r = MeterPoller(name: m.id, profile: m.profile, unit: m.unit, rules: m.rules, line: line).poll(client)
                var detail = "\(bus.endpoint) unit \(m.unit): \(r.quality)"
                if let va = r.apparentPower { detail += ", \(fixed(va / 1000, 1)) kVA" }
                if let e = r.error { detail += " (\(e))" }
                add("meter \(m.id)", r.quality.isUsable ? .ok : .fail, detail, fix: probeHint(m, bus))
            }
        }
    }

    mutating func checkChargers() {
        guard let c = configuration else { return add("chargers", .fail, "not checked: the config is not valid", fix: "fix the config first") }
        for ch in c.runtime.chargers {
            let name = "charger \(ch.site)"
            let hint: String
            switch ch.endpoint {
            case .tcp(let host, let port): hint = "is the charger powered and on the network? lmc charger probe --profile \(ch.profile.name) --tcp \(host):\(port) --unit \(ch.unit)"
            case .rtu(let line): hint = "check the charger's RS-485 link; stop lmc and run lmc charger probe --profile \(ch.profile.name) --rtu \(line.device) --unit \(ch.unit)"
            }
            if let daemon {
                let s = daemon["sites"]?.array?.first { $0["id"]?.string == ch.site }
                if let e = s?["relay_error"]?.string {
                    add(name, .fail, "\(ch.endpoint) unit \(ch.unit), the running lmc's relay: \(e)", fix: hint)
                } else if let a = s?["applied_a"]?.number ?? s?["charger_a"]?.number {
                    add(name, .ok, "\(ch.endpoint) unit \(ch.unit): the running lmc relays to it; \(fixed(a, 1)) A")
                } else {
                    add(name, .warn, "\(ch.endpoint) unit \(ch.unit): the running lmc has not written to it yet", fix: "wait for start-up to finish; lmc status shows the relay")
                }
                continue
            }
            do {
                let client = try ModbusClient(ch.endpoint, options: .init(responseTimeoutMilliseconds: timeoutMilliseconds,
                                                                         byteTimeoutMilliseconds: min(timeoutMilliseconds, 100),
                                                                         reconnect: .init(initialMilliseconds: 0)))
                defer { client.close() }
                let r = ch.profile.limit
                let v = try client.read(r.codec, from: .holding, unit: ch.unit, address: r.address)
                add(name, .ok, "\(ch.endpoint) unit \(ch.unit): answers; its limit register reads \(fixed(r.milliamps ? v / 1000 : v, 1)) A")
            } catch {
                add(name, .fail, "\(ch.endpoint) unit \(ch.unit): \(error)", fix: hint)
            }
        }
    }

    // MARK: GPIO

    mutating func checkGPIO() {
        guard let c = configuration else { return add("gpio", .fail, "not checked: the config is not valid", fix: "fix the config first") }
        if c.runtime.breakers.isEmpty { return add("gpio", .ok, "no breaker wired in the config") }
        #if LMC_TEST_HOOKS
        if let spec = getenv("LMC_GPIO_SIMULATOR").map({ String(cString: $0) }) {
            let model = SimulatedBreakers(spec: spec, wirings: Array(c.runtime.breakers.values))
            add("gpio", .warn, "simulated (LMC_GPIO_SIMULATOR=\(spec)): no real lines", fix: "unset LMC_GPIO_SIMULATOR on a real box")
            GPIOSimulator.with(model.sim) { checkBreakers(c) }
        } else {
            checkBreakers(c)
        }
        #else
        checkBreakers(c)
        #endif
    }

    mutating func checkBreakers(_ c: Configuration) {
        let running = daemon != nil
        for (site, w) in c.runtime.breakers.sorted(by: { $0.key < $1.key }) {
            let name = "breaker \(site)"
            var lines: [(String, BreakerWiring.Line)] = [("trip", w.trip)]
            if let l = w.close { lines.append(("close", l)) }
            if let l = w.auxiliary { lines.append(("aux", l)) }
            var problems: [String] = [], fine: [String] = []
            var chips: [String: GPIOChip] = [:]
            var failedChips: Set<String> = []
            for (role, l) in lines {
                let chip: GPIOChip
                if let ch = chips[l.chip] { chip = ch } else {
                    if failedChips.contains(l.chip) { continue }
                    do { chip = try GPIOChip(l.chip); chips[l.chip] = chip } catch {
                        failedChips.insert(l.chip)
                        problems.append("\(error)")
                        continue
                    }
                }
                guard l.offset < chip.lineCount else {
                    problems.append("\(role) line \(l.offset): \(chip.name) has only \(chip.lineCount) lines")
                    continue
                }
                let info = try? chip.lines()[l.offset]
                let consumer = info?.consumer
                if let consumer, !consumer.isEmpty {
                    if running && consumer.hasPrefix("lmc") { fine.append("\(role) \(chip.name):\(l.offset) held by the running lmc") } else {
                        problems.append("\(role) line \(chip.name):\(l.offset) is held by '\(consumer)'")
                    }
                    continue
                }
                if running {
                    problems.append("\(role) line \(chip.name):\(l.offset) is free although lmc runs (is the breaker in the config it loaded?)")
                    continue
                }
                if role == "aux" {
                    // Reading an input changes nothing on the box.
                    do {
                        let input = try chip.input(l.offset, consumer: "lmc-doctor", options: .init(activeLow: l.activeLow))
                        let closed = try input.value()
                        fine.append("aux \(chip.name):\(l.offset) reads \(closed ? "closed" : "open")")
                    } catch {
                        problems.append("aux line \(chip.name):\(l.offset): \(error)")
                    }
                } else {
                    fine.append("\(role) \(chip.name):\(l.offset) free")
                }
            }
            if problems.isEmpty {
                add(name, .ok, fine.joined(separator: "; "))
            } else {
                add(name, .fail, problems.joined(separator: "; "),
                    fix: "lmc gpio info shows every line and who holds it; check the chip name and offsets in [site.breaker] and the wiring")
            }
        }
    }

    // MARK: the system

    mutating func checkClock() {
        var status: Int32 = 0
        var esterror = 0
        let state = lmc_clock_state(&status, &esterror)
        // STA_UNSYNC is set by the kernel until an NTP client has disciplined the clock.
        let unsync = state == lmc_time_error || (status & lmc_sta_unsync) != 0
        if state < 0 {
            add("clock", .warn, "adjtimex: \(String(cString: strerror(errno)))", fix: "timedatectl shows whether the clock is synchronised")
        } else if unsync {
            add("clock", .fail, "not synchronised (the kernel reports STA_UNSYNC)",
                fix: "timedatectl set-ntp true (or check chrony/systemd-timesyncd and the network to the NTP server); half-hour records and the DNO's audit need true UTC")
        } else {
            add("clock", .ok, "synchronised, estimated error \(esterror / 1000) ms")
        }
    }

    mutating func checkLog() {
        let dir = configuration?.runtime.log.directory ?? "/var/lib/lmc"
        let rings = LogCommand.rings(dir)
        let missing = rings.filter { !$0.present }
        let broken = rings.filter { $0.present && $0.error != nil }
        let skippedRecords = rings.reduce(0) { $0 + $1.unreadable }
        func reach(_ r: LogCommand.RingSummary) -> String {
            guard let first = r.firstWallNs, let span = r.spanSeconds else { return "\(r.name) empty" }
            return "\(r.name) back to \(String(isoTime(first).prefix(16)))Z (\(fixed(span / 86_400, 1)) d" + (r.fullRingDays.map { " of \(fixed($0, 1)) d" } ?? "") + ")"
        }
        if !broken.isEmpty {
            add("log", .fail, broken.map { "\($0.name): \($0.error!)" }.joined(separator: "; "),
                fix: "lmc moves a ring with a corrupt header aside at start (journalctl -u \(unit) -g 'ring log'); check the disk (dmesg) and restart lmc")
        } else if !missing.isEmpty {
            add("log", daemon == nil ? .fail : .warn, "\(missing.map(\.name).joined(separator: ", ")) missing in \(dir)",
                fix: "lmc creates its rings at start: systemctl start \(unit); is [log] directory right and writable by user lmc?")
        } else if skippedRecords > 0 {
            add("log", .warn, "\(skippedRecords) unreadable record\(skippedRecords == 1 ? "" : "s") skipped; " + rings.map(reach).joined(separator: "; "),
                fix: "torn records from a power cut are expected and skipped; many of them point at failing flash (dmesg)")
        } else {
            add("log", .ok, rings.map(reach).joined(separator: "; "))
        }
    }

    mutating func checkDisk() {
        var dir = configuration?.runtime.log.directory ?? "/var/lib/lmc"
        while access(dir, F_OK) != 0, let slash = dir.lastIndex(of: "/"), slash != dir.startIndex { dir = String(dir[..<slash]) }
        var st = statvfs()
        guard statvfs(dir, &st) == 0 else {
            return add("disk", .fail, "statvfs \(dir): \(String(cString: strerror(errno)))", fix: "is the state directory mounted?")
        }
        let free = Double(st.f_bavail) * Double(st.f_frsize), total = Double(st.f_blocks) * Double(st.f_frsize)
        let pct = total > 0 ? free / total * 100 : 0
        func size(_ b: Double) -> String { b >= 10 * 1_073_741_824 ? "\(Int(b / 1_073_741_824)) GiB" : "\(Int(b / 1_048_576)) MiB" }
        let detail = "\(dir): \(size(free)) free of \(size(total)) (\(fixed(pct, 1)) %)"
        let fix = "the rings are preallocated and never grow; find what fills the disk: du -xsh /var/* | sort -h; journalctl --vacuum-size=50M"
        if free < 20 * 1_048_576 || pct < 2 { add("disk", .fail, detail, fix: fix) } else if pct < 10 { add("disk", .warn, detail, fix: fix) } else { add("disk", .ok, detail) }
    }

    /// `systemctl …`'s output, or nil when systemd is not running the box.
    func systemctl(_ args: [String]) -> (status: Int32, out: String)? {
        guard access("/run/systemd/system", F_OK) == 0, let path = (["/usr/bin/systemctl", "/bin/systemctl"] as [String]).first(where: { access($0, X_OK) == 0 }) else { return nil }
        return runTool(path, args)
    }

    mutating func checkService() {
        guard let active = systemctl(["is-active", unit]) else {
            return add("service", .fail, "systemd is not running this machine: nothing starts lmc at boot or restarts it",
                       fix: "run lmc on a Debian box with systemd and the lmc package (docs/release.md)")
        }
        let state = active.out.trimmingCharacters()
        let enabled = systemctl(["is-enabled", unit])?.out.trimmingCharacters() ?? "?"
        if state != "active" {
            add("service", .fail, "\(unit).service is \(state) (\(enabled))",
                fix: "systemctl status \(unit); journalctl -u \(unit) -b -p warning shows why; systemctl enable --now \(unit)")
        } else if enabled != "enabled" {
            add("service", .warn, "\(unit).service is active but \(enabled): it will not start after a power cut", fix: "systemctl enable \(unit)")
        } else {
            add("service", .ok, "\(unit).service is active and enabled" + (daemon == nil ? "; its control socket did not answer" : ""))
        }
    }

    mutating func checkWatchdog() {
        guard let show = systemctl(["show", unit, "-p", "WatchdogUSec", "--value"]) else {
            return add("watchdog", .fail, "no systemd: nothing restarts lmc if its control loop hangs",
                       fix: "run lmc under systemd (lmc.service sets WatchdogSec=5s)")
        }
        let f = WatchdogFinding(unit: unit, unitWatchdog: show.out.trimmingCharacters(),
                                     manager: systemctl(["show", "-p", "RuntimeWatchdogUSec", "--value"])?.out.trimmingCharacters() ?? "",
                                     hardwarePresent: access("/dev/watchdog", F_OK) == 0 || access("/dev/watchdog0", F_OK) == 0,
                                     lmcPets: configuration?.runtime.hardwareWatchdog)
        add("watchdog", DoctorCheck.Status(rawValue: f.status.rawValue)!, f.detail, fix: f.fix)
    }

    mutating func checkSSH() {
        let dropIn = "/etc/ssh/sshd_config.d/lmc-logs.conf"
        guard let sshd = (["/usr/sbin/sshd", "/sbin/sshd"] as [String]).first(where: { access($0, X_OK) == 0 }) else {
            return add("ssh", .warn, "no sshd on this box: the DNO cannot pull logs", fix: "apt install openssh-server; the lmc package's \(dropIn) then applies")
        }
        guard access(dropIn, R_OK) == 0 else {
            return add("ssh", .fail, "\(dropIn) is missing", fix: "reinstall the lmc package (it is a conffile): apt install --reinstall lmc")
        }
        // sshd -T reads the host keys, which are root's: run by an engineer in group lmc it fails on a
        // good configuration (make box-test: "FAIL ssh … does not load" on a stock Debian 12).
        guard geteuid() == 0 else {
            return add("ssh", .warn, "not checked: sshd -T needs root to read the configuration", fix: "run lmc doctor as root (sudo) for this check")
        }
        guard let r = runTool(sshd, ["-T", "-C", "user=lmc-logs,host=lmc-doctor,addr=127.0.0.1"]), r.status == 0 else {
            return add("ssh", .fail, "sshd -T failed: the configuration does not load", fix: "sshd -t shows the error; fix it, then systemctl reload ssh")
        }
        let settings = Set(r.out.lowercased().split(separator: "\n").map { $0.trimmingCharacters() })
        let keys = "/etc/lmc/dno_authorized_keys"
        let needed = ["forcecommand /usr/bin/lmc log ssh-command", "authorizedkeysfile \(keys)", "permittty no", "disableforwarding yes",
                      "passwordauthentication no", "permituserrc no"]
        let missing = needed.filter { !settings.contains($0) }
        guard missing.isEmpty else {
            return add("ssh", .fail, "sshd does not apply \(dropIn) to user lmc-logs (sshd -T lacks: \(missing.joined(separator: ", ")))",
                       fix: "sshd_config must Include /etc/ssh/sshd_config.d/*.conf before any Match block, and \(dropIn) be the packaged one; then systemctl reload ssh")
        }
        // sshd's StrictModes ignores a key file (or a directory above it) that anyone but root may write.
        var st = stat()
        guard stat(keys, &st) == 0 else {
            return add("ssh", .warn, "\(keys) is missing: the DNO cannot log in", fix: "install the DNO's key as docs/ssh.md says (root:root 0644)")
        }
        var dirSt = stat()
        if st.st_uid != 0 || st.st_mode & 0o022 != 0 || stat("/etc/lmc", &dirSt) != 0 || dirSt.st_uid != 0 || dirSt.st_mode & 0o022 != 0 {
            return add("ssh", .fail, "\(keys) or /etc/lmc may be written by someone other than root: sshd refuses the DNO's key",
                       fix: "chown root:root /etc/lmc \(keys) && chmod 0755 /etc/lmc && chmod 0644 \(keys)")
        }
        let lines = (readText(keys) ?? "").split(separator: "\n").map { $0.trimmingCharacters() }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        if lines.isEmpty {
            return add("ssh", .warn, "no DNO key in \(keys): nobody can pull logs over SSH", fix: "add the DNO's public key as docs/ssh.md says")
        }
        let unrestricted = lines.filter { !$0.hasPrefix("restrict") }.count
        if unrestricted > 0 {
            return add("ssh", .warn, "\(unrestricted) of \(lines.count) keys in \(keys) lack 'restrict' (the drop-in still forbids a tty and forwarding)",
                       fix: "start each key line with 'restrict ' (docs/ssh.md)")
        }
        add("ssh", .ok, "user lmc-logs: \(lines.count) key\(lines.count == 1 ? "" : "s") in \(keys); forced command lmc log ssh-command, no tty, no forwarding")
    }

    mutating func checkSysrq() {
        guard let text = readText("/proc/sys/kernel/sysrq"), let v = Int(text.trimmingCharacters()) else {
            return add("sysrq", .warn, "cannot read /proc/sys/kernel/sysrq", fix: "sysctl kernel.sysrq")
        }
        // A BREAK on the serial console (a cable pulled, a laptop suspended) followed by a character
        // is a SysRq. The package sets 0 (/usr/lib/sysctl.d/90-lmc.conf). 1 allows everything; of the
        // mask's bits 8 lets 'c' crash the kernel, 32 'u' remount read-only, 64 'e'/'i' kill every
        // process (lmc too), 128 'b' reboot and 'o' power off. Other bits (log level, sync, nice) are harmless.
        let dangerous = v == 1 || v & (8 | 32 | 64 | 128) != 0
        if dangerous {
            add("sysrq", .fail, "kernel.sysrq = \(v): a BREAK on the serial console can reboot the box, crash it, kill lmc or remount its disk read-only",
                fix: "the lmc package sets kernel.sysrq = 0 in /usr/lib/sysctl.d/90-lmc.conf: find the file in /etc/sysctl.d or /run/sysctl.d that overrides it (systemd-analyze cat-config sysctl.d), then sysctl --system")
        } else {
            add("sysrq", .ok, "kernel.sysrq = \(v): the serial console cannot reboot, crash, kill or remount anything")
        }
    }
}

/// Runs a tool with stdin from /dev/null and stderr discarded; its exit status and stdout (bounded).
func runTool(_ path: String, _ args: [String]) -> (status: Int32, out: String)? {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return nil }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    posix_spawn_file_actions_addclose(&actions, fds[1])
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
    close(fds[1])
    guard rc == 0 else { close(fds[0]); return nil }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count < 1_048_576 {
        let n = read(fds[0], &buf, buf.count)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), String(decoding: out, as: UTF8.self))
}
