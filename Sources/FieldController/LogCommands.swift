import LMCPlatform
import ArgumentParser
import RingLog
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Read the ring log: what the box measured and decided (read-only; the DNO's SSH account runs these).",
        subcommands: [Info.self, Export.self, Trips.self, Audit.self, Plot.self, SSHCommand.self]
    )

    struct Location: ParsableArguments {
        @Option(help: ArgumentHelp("Ring log directory.", valueName: "dir"))
        var dir: String = "/var/lib/lmc"

        /// Opens `NAME.ring` in the directory for reading; says why and exits 1 when it cannot.
        func open(_ ring: String) throws -> RingReader {
            do { return try RingReader(path: "\(dir)/\(ring).ring") } catch {
                printError("\(error)")
                throw ExitCode(1)
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each ring's size, records held and the span of time they cover.",
                                                        discussion: "Example: lmc log info; lmc log info --json (docs/json.md)")
        @OptionGroup var location: Location
        @Flag(help: "Print JSON instead of text (docs/json.md).")
        var json = false

        func run() throws {
            if json { return print(JSON.render(.object([("dir", .string(location.dir)), ("rings", .array(LogCommand.rings(location.dir).map(\.json)))]))) }
            for name in LogCommand.ringNames {
                let path = "\(location.dir)/\(name).ring"
                guard let r = try? RingReader(path: path) else {
                    print("\(name): no ring at \(path)")
                    continue
                }
                defer { r.release() }
                var first: RingRecord?, last: RingRecord?
                let (count, skipped) = r.forEach { rec in
                    if first == nil { first = rec }
                    last = rec
                }
                let mb = Double(RingFile.headerSize + r.recordSize * r.capacity) / 1_048_576
                var line = "\(name): \(String(format1(mb))) MB, \(r.capacity) records of \(r.recordSize) B; holds \(count)"
                if skipped > 0 { line += ", \(skipped) unreadable skipped" }
                if let f = first, let l = last {
                    let span = Double(l.monoNs &- f.monoNs) / 1e9
                    line += "; \(isoTime(f.wallNs)) to \(isoTime(l.wallNs)) (\(format1(span / 3600)) h)"
                    if count > 1 {
                        let perRecord = span / Double(count - 1)
                        line += "; full ring spans \(format1(perRecord * Double(r.capacity) / 86_400)) days at this rate"
                    }
                }
                print(line)
                if let note = r.note { print("  \(note)") }
                for old in LogCommand.keptBeforeResize(path) {
                    guard let o = try? RingReader(path: old) else { continue }
                    var first: RingRecord?, last: RingRecord?
                    let (n, _) = o.forEach { rec in if first == nil { first = rec }; last = rec }
                    o.release()
                    let span = first.flatMap { f in last.map { "; \(isoTime(f.wallNs)) to \(isoTime($0.wallNs))" } } ?? ""
                    print("  kept from before a resize: \(old) (\(o.capacity) records of \(o.recordSize) B), holds \(n)\(span); read it with lmc log export --ring \(name) --file \(old)")
                }
            }
        }
    }

    /// One ring's health and reach, for `log info --json` and `lmc doctor`.
    struct RingSummary {
        var name: String, path: String
        var present: Bool, error: String?
        var sizeBytes = 0, capacity = 0, recordSize = 0, records = 0, unreadable = 0
        var firstWallNs: UInt64?, lastWallNs: UInt64?
        /// Seconds from the first record to the last, on the monotonic clock.
        var spanSeconds: Double?
        /// How many days the whole ring holds at the rate seen so far.
        var fullRingDays: Double?
        /// What a resize did, from the header; the old files it kept.
        var note: String?
        var kept: [String] = []

        var json: JSON.Value {
            .object([
                ("name", .string(name)), ("path", .string(path)), ("present", .bool(present)), ("error", error.map { .string($0) } ?? .null),
                ("size_bytes", .int(sizeBytes)), ("capacity", .int(capacity)), ("record_size", .int(recordSize)), ("records", .int(records)),
                ("unreadable", .int(unreadable)),
                ("first", firstWallNs.map { .string(isoTime($0)) } ?? .null), ("last", lastWallNs.map { .string(isoTime($0)) } ?? .null),
                ("span_s", spanSeconds.map { .number($0) } ?? .null), ("full_ring_days", fullRingDays.map { .number($0) } ?? .null),
                ("resized", note.map { .string($0) } ?? .null), ("kept_before_resize", .array(kept.map { .string($0) })),
            ])
        }
    }

    /// Old files a resize kept beside the ring (`NAME.ring.before-resize-N`), oldest first.
    static func keptBeforeResize(_ path: String) -> [String] {
        var out: [String] = []
        var n = 1
        while access("\(path).before-resize-\(n)", F_OK) == 0 { out.append("\(path).before-resize-\(n)"); n += 1 }
        return out
    }

    /// The rings `log info` describes, in that order.
    static let ringNames = ["samples", "minutes", "halfhours", "events", "trips"]

    static func rings(_ dir: String) -> [RingSummary] {
        ringNames.map { name in
            let path = "\(dir)/\(name).ring"
            var s = RingSummary(name: name, path: path, present: false, error: nil)
            let r: RingReader
            do { r = try RingReader(path: path) } catch {
                s.present = access(path, F_OK) == 0
                s.error = "\(error)"
                return s
            }
            defer { r.release() }
            s.present = true
            var first: RingRecord?, last: RingRecord?
            let (count, skipped) = r.forEach { rec in
                if first == nil { first = rec }
                last = rec
            }
            s.note = r.note
            s.kept = keptBeforeResize(path)
            s.sizeBytes = RingFile.headerSize + r.recordSize * r.capacity
            s.capacity = r.capacity
            s.recordSize = r.recordSize
            s.records = count
            s.unreadable = skipped
            if let f = first, let l = last {
                s.firstWallNs = f.wallNs
                s.lastWallNs = l.wallNs
                let span = Double(l.monoNs &- f.monoNs) / 1e9
                s.spanSeconds = span
                if count > 1 { s.fullRingDays = span / Double(count - 1) * Double(r.capacity) / 86_400 }
            }
            return s
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream a ring as CSV or JSON lines, oldest first, in constant memory.",
            discussion: """
            --from and --to take a UTC date (2026-11-01) or time (2026-11-01T17:30:00).
            clock_synchronised (samples, minutes, half hours): 1 when the wall clock was synchronised (for a minute or
            half hour: in every cycle of it), 0 when it was not, empty (JSON null) in records written before the
            flag existed (0.1.0 rings): unknown.
            samples columns: seq, time (UTC), mono_s, clock_synchronised, mode, then per measurement point NAME with its unit (trafo_va:
            the value in SI) and NAME_UNIT_quality (good/estimated/bad), per site NAME: NAME_set_point_w,
            NAME_bound_by, NAME_import_w. Samples of a ring written before 0.2 have positional columns (mp<i>_value,
            mp<i>_quality, site<j>_set_point_w, …).
            minutes columns: seq, minute_start (UTC), seconds_covered, clock_synchronised, clock_jumped, mode (at the
            minute's end), s_not_normal, then per measurement point NAME (its unit: a, va or v): NAME_UNIT_min,
            NAME_UNIT_mean, NAME_UNIT_max; per site NAME: NAME_set_point_w, NAME_import_w (means). One header for
            the whole export: points and sites of every config in it, empty where a minute has no such column.
            halfhours columns: seq, period_start (UTC), seconds_covered, clock_synchronised, clock_jumped, s_<MODE> for each mode,
            then per measurement point NAME: NAME_unit, NAME_limit, NAME_trip, NAME_min, NAME_mean, NAME_max,
            NAME_s_beyond_limit, NAME_s_beyond_trip, NAME_s_bad; per site NAME: NAME_ceiling_w, NAME_sp_min_w,
            NAME_sp_mean_w, NAME_imported_kwh, NAME_curtailed_kwh, NAME_s_restricted, NAME_import_metered.
            One header for the whole export: a config change that adds or renames points or sites adds their
            columns, empty in the half hours without them.
            events columns: seq, time, mono_s, kind, text.
            --trip N instead of --ring: trip record N (lmc log trips lists them), one row per control cycle from
            60 s before the trip to 60 s after: offset_s (from the trip command), time, mode, then per
            measurement point NAME and NAME_quality, per site NAME_set_point_w, NAME_bound_by, NAME_import_w.
            Example: lmc log export --ring halfhours --from 2026-11-01 > nov.csv
            Example: lmc log export --trip 1 > trip1.csv
            """
        )
        @OptionGroup var location: Location
        @Option(help: ArgumentHelp("samples, minutes, halfhours or events.", valueName: "ring")) var ring: String = ""
        @Option(help: ArgumentHelp("A trip record's number (lmc log trips), instead of --ring.", valueName: "N")) var trip: UInt64?
        @Option(help: ArgumentHelp("Read this file as the --ring (an old ring a resize kept: lmc log info lists them).", valueName: "path")) var file: String?
        @Option(help: ArgumentHelp("From (UTC).", valueName: "time")) var from: String?
        @Option(help: ArgumentHelp("To (UTC).", valueName: "time")) var to: String?
        @Option(help: ArgumentHelp("csv or jsonl.", valueName: "format")) var format: String = "csv"

        func validate() throws {
            if trip != nil {
                guard ring.isEmpty, from == nil, to == nil else { throw ValidationError("--trip exports one trip record: no --ring, --from or --to with it") }
                guard ["csv", "jsonl"].contains(format) else { throw ValidationError("--format '\(format)' is not csv or jsonl") }
                return
            }
            guard !ring.isEmpty else { throw ValidationError("--ring samples|minutes|halfhours|events, or --trip N") }
            guard ["samples", "minutes", "halfhours", "events"].contains(ring) else { throw ValidationError("--ring '\(ring)' is not samples, minutes, halfhours or events") }
            guard ["csv", "jsonl"].contains(format) else { throw ValidationError("--format '\(format)' is not csv or jsonl") }
            if let from, parseUTC(from) == nil { throw ValidationError("--from '\(from)' is not a UTC date or time (2026-11-01 or 2026-11-01T17:30:00)") }
            if let to, parseUTC(to) == nil { throw ValidationError("--to '\(to)' is not a UTC date or time (2026-11-01 or 2026-11-01T17:30:00)") }
        }

        func run() throws {
            if let trip { return try TripExport.run(location: location, number: trip, format: format) }
            let r: RingReader
            if let file {
                do { r = try RingReader(path: file) } catch { printError("\(error)"); throw ExitCode(1) }
            } else {
                r = try location.open(ring)
            }
            defer { r.release() }
            let fromNs = from.flatMap(parseUTC).map { UInt64($0) * 1_000_000_000 } ?? 0
            let toNs = to.flatMap(parseUTC).map { UInt64($0) * 1_000_000_000 } ?? .max
            if ring == "minutes" { return MinuteExport.run(r, fromNs: fromNs, toNs: toNs, format: format) }
            var out = BufferedOutput()
            var headerDone = false
            // Half hours: one header for the export, with every point and site in its range (a first pass).
            var hhNames: (mps: [String], sites: [String]) = ([], [])
            if ring == "halfhours" && format == "csv" {
                r.forEach { rec in
                    guard let h = HalfHourRecord.decode(rec.payload) else { return }
                    let startNs = UInt64(h.periodStart) * 1_000_000_000
                    guard startNs >= fromNs && startNs <= toNs else { return }
                    for m in h.mps where !hhNames.mps.contains(m.name) { hhNames.mps.append(m.name) }
                    for s in h.sites where !hhNames.sites.contains(s.name) { hhNames.sites.append(s.name) }
                }
            }
            var columns = ring == "samples" && format == "csv" ? SampleColumns(r, fromNs: fromNs, toNs: toNs) : nil
            r.forEach { rec in
                if ring == "halfhours" {
                    guard let h = HalfHourRecord.decode(rec.payload) else { return }
                    let startNs = UInt64(h.periodStart) * 1_000_000_000
                    guard startNs >= fromNs && startNs <= toNs else { return }
                    if format == "csv" {
                        if !headerDone { out.write(HalfHourCSV.header(mps: hhNames.mps, sites: hhNames.sites) + "\n"); headerDone = true }
                        out.write(HalfHourCSV.row(h, seq: rec.seq, mps: hhNames.mps, sites: hhNames.sites) + "\n")
                    } else {
                        out.write(JSON.render(HalfHourCSV.json(h, seq: rec.seq)) + "\n")
                    }
                    return
                }
                guard rec.wallNs >= fromNs && rec.wallNs <= toNs else { return }
                if ring == "events" {
                    guard let e = EventRecord.decodePayload(rec.payload) else { return }
                    if format == "csv" {
                        if !headerDone { out.write("seq,time,mono_s,kind,text\n"); headerDone = true }
                        out.write("\(rec.seq),\(isoTime(rec.wallNs)),\(monoSeconds(rec.monoNs)),\(e.kind.name),\(csvQuote(e.text))\n")
                    } else {
                        out.write(JSON.render(.object([("seq", .int(Int(rec.seq))), ("time", .string(isoTime(rec.wallNs))),
                                                       ("mono_s", .number(Double(rec.monoNs) / 1e9)), ("kind", .string(e.kind.name)),
                                                       ("text", .string(e.text))])) + "\n")
                    }
                } else {
                    guard let s = SampleRecord.decode(rec.payload) else { return }
                    let mode = ModeCodes.names.indices.contains(Int(s.mode)) ? ModeCodes.names[Int(s.mode)] : "?"
                    let quality = ["good", "estimated", "bad"]
                    if format == "csv" {
                        if !headerDone {
                            out.write(columns!.header + "\n")
                            headerDone = true
                        }
                        let map = columns!.mapping(seq: rec.seq, mps: s.mps.count, sites: s.sites.count)
                        // The hot path of a big export: bytes appended directly, no intermediate strings.
                        out.append(rec.seq); out.byte(0x2C)
                        out.write(isoPrefix(rec.wallNs / 1_000_000_000)); out.append3(rec.wallNs / 1_000_000 % 1000); out.byte(0x5A); out.byte(0x2C)
                        out.append(rec.monoNs / 1_000_000_000); out.byte(0x2E); out.append3(rec.monoNs / 1_000_000 % 1000)
                        out.byte(0x2C); if let c = s.clockSynchronised { out.byte(c ? 0x31 : 0x30) }   // empty: not recorded
                        out.byte(0x2C); out.write(mode)
                        for i in map.mps {
                            guard i >= 0 else { out.byte(0x2C); out.byte(0x2C); continue }
                            let m = s.mps[i]
                            out.byte(0x2C); out.append(m.value); out.byte(0x2C); out.write(quality[min(Int(m.quality), 2)])
                        }
                        for j in map.sites {
                            guard j >= 0 else { out.byte(0x2C); out.byte(0x2C); out.byte(0x2C); continue }
                            let site = s.sites[j]
                            let b = LimitCodes.names.indices.contains(Int(site.boundBy)) ? LimitCodes.names[Int(site.boundBy)] : "?"
                            out.byte(0x2C); out.append(site.setPointW); out.byte(0x2C); out.write(b); out.byte(0x2C); out.append(site.importW)
                        }
                        out.byte(0x0A)
                    } else {
                        out.write(JSON.render(.object([
                            ("seq", .int(Int(rec.seq))), ("time", .string(isoTime(rec.wallNs))), ("mono_s", .number(Double(rec.monoNs) / 1e9)),
                            ("clock_synchronised", s.clockSynchronised.map { .bool($0) } ?? .null), ("mode", .string(mode)),
                            ("mps", .array(s.mps.map { .object([("value", jsonNumber($0.value)),
                                                                ("quality", .string(quality[min(Int($0.quality), 2)]))]) })),
                            ("sites", .array(s.sites.map { .object([("set_point_w", jsonNumber($0.setPointW)),
                                                                    ("bound_by", .string(LimitCodes.names.indices.contains(Int($0.boundBy)) ? LimitCodes.names[Int($0.boundBy)] : "?")),
                                                                    ("import_w", jsonNumber($0.importW))]) })),
                        ])) + "\n")
                    }
                }
            }
            out.flush()
        }
    }

    /// The DNO's SSH account (`ForceCommand lmc log ssh-command`): runs only the read-only log commands
    /// named in SSH_ORIGINAL_COMMAND, refusing anything else with a message.
    struct SSHCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ssh-command",
            abstract: "Run the read-only log command in SSH_ORIGINAL_COMMAND (the lmc-logs account's forced command).",
            discussion: """
            Allowed: log info [--json]; log export (--ring, --from, --to, --format, --trip); log trips [--json]; log audit (--day, --month, --json); log plot
            (--from, --to, --width). Anything else — another command, shell syntax, quotes — is refused.
            Examples from the DNO's side:
              ssh lmc-logs@box log export --ring halfhours --from 2026-11-01 > nov.csv
              ssh lmc-logs@box log audit --day 2026-11-20
              ssh lmc-logs@box log plot --from 2026-11-20 --to 2026-11-21 > day.svg
            The DNO's keys go in /etc/lmc/dno_authorized_keys (root:root 0644), one 'restrict <key>' line each (docs/ssh.md); /etc/ssh/sshd_config.d/lmc-logs.conf forces this command for lmc-logs.
            """
        )
        @OptionGroup var location: Location

        func run() throws {
            let original = getenv("SSH_ORIGINAL_COMMAND").map { String(cString: $0) } ?? ""
            switch Self.check(original) {
            case .failure(let why):
                printError("refused: \(why). Allowed: log info [--json] | log export --ring samples|minutes|halfhours|events [--from T] [--to T] [--format csv|jsonl] | log export --trip N [--format csv|jsonl] | log trips [--json] | log audit [--day YYYY-MM-DD | --month YYYY-MM] [--json] | log plot [--from T] [--to T] [--width PX]")
                throw ExitCode(1)
            case .success(let args):
                let argv = args + ["--dir", location.dir]
                var command = try LogCommand.parseAsRoot(argv)
                try command.run()
            }
        }

        static func check(_ text: String) -> Result<[String], LogAccess.Refusal> { LogAccess.check(text) }
    }
}

/// Parses "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS]" as UTC seconds.
func parseUTC(_ text: String) -> Int? { LogAccess.parseUTC(text) }

func isoTime(_ ns: UInt64) -> String {
    isoPrefix(ns / 1_000_000_000) + threeDigits(Int((ns / 1_000_000) % 1000)) + "Z"
}

/// "2026-11-20T17:30:05." for a UTC second, cached: exports print runs of records in the same second.
func isoPrefix(_ second: UInt64) -> String {
    if let cached = isoPrefixCache.withLock({ $0 }), cached.second == second { return cached.text }
    var t = time_t(second)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    func p(_ v: Int32, _ w: Int = 2) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
    let text = "\(p(tmv.tm_year + 1900, 4))-\(p(tmv.tm_mon + 1))-\(p(tmv.tm_mday))T\(p(tmv.tm_hour)):\(p(tmv.tm_min)):\(p(tmv.tm_sec))."
    isoPrefixCache.withLock { $0 = (second, text) }
    return text
}

private func threeDigits(_ v: Int) -> String { (v < 10 ? "00" : v < 100 ? "0" : "") + String(v) }

/// Exports print runs of records within the same second: their date and time is formatted once.
private let isoPrefixCache = Mutex<(second: UInt64, text: String)?>(nil)

private func monoSeconds(_ ns: UInt64) -> String { "\(ns / 1_000_000_000).\(pad(String((ns / 1_000_000) % 1000), 3))" }
/// The same for JSON: the Float's shortest decimal as a Double.
func jsonNumber(_ f: Float) -> JSON.Value { f.isFinite ? .number(Double("\(f)") ?? Double(f)) : .null }
private func format1(_ v: Double) -> String { "\((v * 10).rounded() / 10)" }
private func csvQuote(_ s: String) -> String {
    s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : s
}

/// stdout in 64 KiB writes: exports stream at disk speed in constant memory.
struct BufferedOutput {
    private var buf: [UInt8] = []
    mutating func write(_ s: String) {
        buf += s.utf8
        if buf.count >= 65_536 { flush() }
    }
    mutating func byte(_ b: UInt8) { buf.append(b) }
    /// An unsigned integer in decimal.
    mutating func append(_ v: UInt64) {
        if v < 10 { buf.append(0x30 + UInt8(v)); return }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0, x = v
        withUnsafeMutableBytes(of: &digits) { d in
            while x > 0 { d[n] = 0x30 + UInt8(x % 10); x /= 10; n += 1 }
            for k in stride(from: n - 1, through: 0, by: -1) { buf.append(d[k]) }
        }
        if buf.count >= 65_536 { flush() }
    }
    /// Three digits, zero padded (milliseconds).
    mutating func append3(_ v: UInt64) {
        buf.append(0x30 + UInt8(v / 100 % 10)); buf.append(0x30 + UInt8(v / 10 % 10)); buf.append(0x30 + UInt8(v % 10))
    }
    /// A Float's shortest decimal; nothing for NaN (an empty CSV field).
    mutating func append(_ f: Float) {
        guard f.isFinite else { return }
        buf += f.description.utf8
    }
    mutating func flush() {
        var off = 0
        while off < buf.count {
            let n = buf[off...].withUnsafeBytes { Sys.write(1, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
        buf.removeAll(keepingCapacity: true)
    }
}
