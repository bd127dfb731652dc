import ArgumentParser
import RingLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The half-hours ring as CSV and JSON lines (`lmc log export --ring halfhours`).
enum HalfHourCSV {
    static let mpFields = ["unit", "limit", "trip", "min", "mean", "max", "s_beyond_limit", "s_beyond_trip", "s_bad"]
    static let siteFields = ["ceiling_w", "sp_min_w", "sp_mean_w", "imported_kwh", "curtailed_kwh", "s_restricted", "import_metered"]

    /// The header for these points and sites (an export's: every one in its range, in order of appearance).
    static func header(mps: [String], sites: [String]) -> String {
        var c = ["seq", "period_start", "seconds_covered", "clock_synchronised", "clock_jumped"] + ModeCodes.names.map { "s_\($0)" }
        for m in mps { c += mpFields.map { "\(m)_\($0)" } }
        for s in sites { c += siteFields.map { "\(s)_\($0)" } }
        return c.joined(separator: ",")
    }

    /// A row under `header(mps:sites:)`: each point's and site's values under its name, empty where this
    /// half hour has no such point or site.
    static func row(_ h: HalfHourRecord, seq: UInt64, mps: [String], sites: [String]) -> String {
        var c = ["\(seq)", isoTime(UInt64(h.periodStart) * 1_000_000_000), secs(h.secondsCovered),
                 h.clockSynchronised.map { $0 ? "1" : "0" } ?? "", h.clockJumped ? "1" : "0"]
        c += ModeCodes.names.indices.map { $0 < h.secondsInMode.count ? secs(h.secondsInMode[$0]) : "0" }
        for name in mps {
            guard let m = h.mps.first(where: { $0.name == name }) else { c += mpFields.map { _ in "" }; continue }
            c += [unitName(m.unit), num(m.limit), num(m.trip), num(m.min), num(m.mean), num(m.max),
                  secs(m.secondsBeyondLimit), secs(m.secondsBeyondTrip), secs(m.secondsBad)]
        }
        for name in sites {
            guard let s = h.sites.first(where: { $0.name == name }) else { c += siteFields.map { _ in "" }; continue }
            c += [num(s.ceilingW), num(s.setPointMinW), num(s.setPointMeanW), num(s.importedKWh), num(s.curtailedKWh),
                  secs(s.secondsRestricted), s.importMetered ? "1" : "0"]
        }
        return c.joined(separator: ",")
    }

    static func json(_ h: HalfHourRecord, seq: UInt64) -> JSON.Value {
        func n(_ f: Float) -> JSON.Value { jsonNumber(f) }
        return .object([
            ("seq", .int(Int(seq))), ("period_start", .string(isoTime(UInt64(h.periodStart) * 1_000_000_000))),
            ("seconds_covered", .number(h.secondsCovered)), ("clock_synchronised", h.clockSynchronised.map { .bool($0) } ?? .null),
            ("clock_jumped", .bool(h.clockJumped)),
            ("seconds_in_mode", .object(ModeCodes.names.indices.map { ($0 < ModeCodes.names.count ? ModeCodes.names[$0] : "?",
                                                                        .number($0 < h.secondsInMode.count ? h.secondsInMode[$0] : 0)) })),
            ("mps", .array(h.mps.map { m in .object([
                ("name", .string(m.name)), ("unit", .string(unitName(m.unit))), ("lower_limit", .bool(m.lowerLimit)),
                ("limit", n(m.limit)), ("trip", n(m.trip)), ("min", n(m.min)), ("mean", n(m.mean)), ("max", n(m.max)),
                ("s_beyond_limit", .number(m.secondsBeyondLimit)), ("s_beyond_trip", .number(m.secondsBeyondTrip)),
                ("s_bad", .number(m.secondsBad)),
            ]) })),
            ("sites", .array(h.sites.map { s in .object([
                ("name", .string(s.name)), ("ceiling_w", n(s.ceilingW)), ("sp_min_w", n(s.setPointMinW)), ("sp_mean_w", n(s.setPointMeanW)),
                ("imported_kwh", n(s.importedKWh)), ("curtailed_kwh", n(s.curtailedKWh)), ("s_restricted", .number(s.secondsRestricted)),
                ("import_metered", .bool(s.importMetered)),
            ]) })),
        ])
    }

    static func unitName(_ u: UInt8) -> String { HalfHourRecord.unitNames.indices.contains(Int(u)) ? HalfHourRecord.unitNames[Int(u)] : "?" }
    /// A Float at its own precision (400123.4, not 400123.40625); empty for NaN (an empty CSV field).
    static func num(_ f: Float) -> String { f.isFinite ? "\(f)" : "" }
}

extension LogCommand {
    /// The DNO engineer's review of one day: the half-hourly table against the limits.
    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One UTC day, half hour by half hour, against the limits: peaks, seconds over, energy curtailed.",
            discussion: """
            Reads the half-hours ring. For each measurement point: min, mean and max, the peak as a share of
            the limit, seconds beyond the limit and beyond the trip threshold, seconds without a usable
            value. For each site: set point min and mean, energy imported and curtailed, seconds restricted.
            Then seconds in each mode other than NORMAL, and the half hours whose wall clock was not
            synchronised in some cycle (not to be trusted for the TCC's half hours). Half hours with no record
            (box off) are shown as such; a half hour split by a restart is merged. Without --day: the newest
            day in the ring. --json: docs/json.md (the month's schema: docs/schemas/log-audit-month.schema.json).
            Example: lmc log audit --day 2026-11-20
            Example: lmc log audit --month 2026-11 --json
            """
        )
        @OptionGroup var location: LogCommand.Location
        @Option(help: ArgumentHelp("The UTC day to review (YYYY-MM-DD).", valueName: "day")) var day: String?
        @Option(help: ArgumentHelp("A UTC month instead (YYYY-MM): a line per day for each point and site, and the month's.", valueName: "month")) var month: String?
        @Flag(help: "Print JSON instead of the table (docs/json.md).") var json = false

        func validate() throws {
            if let month {
                guard day == nil else { throw ValidationError("--day or --month, not both") }
                guard month.count == 7, parseUTC(month + "-01") != nil else { throw ValidationError("--month '\(month)' is not a UTC month (YYYY-MM, e.g. 2026-11)") }
            }
            if let day, day.contains("T") || parseUTC(day) == nil {
                throw ValidationError("--day '\(day)' is not a UTC date (YYYY-MM-DD, e.g. 2026-11-20)")
            }
        }

        func run() throws {
            let r = try location.open("halfhours")
            defer { r.release() }
            if let month, let start = parseUTC(month + "-01") {
                let (y, m) = (Int(month.prefix(4))!, Int(month.suffix(2))!)
                let next = parseUTC(m == 12 ? "\(y + 1)-01-01" : "\(y)-\(pad(String(m + 1), 2))-01")!
                var periods: [UInt32: HalfHourRecord] = [:]
                r.forEach { rec in
                    guard let h = HalfHourRecord.decode(rec.payload), h.periodStart >= UInt32(start), h.periodStart < UInt32(next) else { return }
                    periods[h.periodStart] = periods[h.periodStart].map { $0.merged(with: h) } ?? h
                }
                let audit = MonthAudit(dayStart: UInt32(start), days: (next - start) / 86_400, periods: periods, boxID: r.boxID)
                if json { print(JSON.render(audit.json())) } else { print(audit.render(), terminator: "") }
                return
            }
            // The day: given, or the newest in the ring (one pass; the ring is small).
            var dayStart: UInt32
            if let day, let t = parseUTC(day) {
                dayStart = UInt32(t)
            } else {
                var newest: UInt32?
                r.forEach { rec in
                    if let h = HalfHourRecord.decode(rec.payload) { newest = max(newest ?? 0, h.periodStart) }
                }
                guard let newest else {
                    printError("\(r.path): no half hours recorded yet (the first is written 30 min after start)")
                    throw ExitCode(1)
                }
                dayStart = newest - newest % 86_400
            }
            var periods: [UInt32: HalfHourRecord] = [:]
            r.forEach { rec in
                guard let h = HalfHourRecord.decode(rec.payload), h.periodStart >= dayStart, h.periodStart < dayStart + 86_400 else { return }
                periods[h.periodStart] = periods[h.periodStart].map { $0.merged(with: h) } ?? h
            }
            let report = AuditReport(dayStart: dayStart, periods: periods, boxID: r.boxID)
            if json { print(JSON.render(report.json())) } else { print(report.render(), terminator: "") }
        }
    }
}

/// The audit table: fits 80 columns.
struct AuditReport {
    let dayStart: UInt32
    let periods: [UInt32: HalfHourRecord]
    let boxID: String

    func render() -> String {
        let day = String(isoTime(UInt64(dayStart) * 1_000_000_000).prefix(10))
        var o = "lmc log audit: box \(boxID), \(day) (UTC), \(periods.count) of 48 half hours recorded\n"
        guard !periods.isEmpty else { return o + "no half hours recorded on this day\n" }
        let slots = (0..<48).map { dayStart + UInt32($0) * HalfHourRecord.periodSeconds }
        func hhmm(_ t: UInt32) -> String { let s = Int(t - dayStart); return "\(pad(String(s / 3600), 2)):\(pad(String((s % 3600) / 60), 2))" }
        // Names in order of first appearance.
        var mpNames: [String] = [], siteNames: [String] = []
        for t in slots { for m in periods[t]?.mps ?? [] where !mpNames.contains(m.name) { mpNames.append(m.name) } }
        for t in slots { for s in periods[t]?.sites ?? [] where !siteNames.contains(s.name) { siteNames.append(s.name) } }

        for name in mpNames {
            let first = slots.lazy.compactMap { periods[$0]?.mps.first { $0.name == name } }.first!
            let unit = HalfHourCSV.unitName(first.unit)
            let (scale, shown) = Self.scale(unit)
            func v(_ f: Float) -> String { f.isFinite ? "\(fixed(Double(f) / scale, 1)) \(shown)" : "--" }
            o += "\n\(name): limit \(v(first.limit))\(first.lowerLimit ? " (lower)" : "")"
            o += first.trip.isFinite ? ", trip \(v(first.trip))\n" : ", no trip threshold\n"
            let w = [11, 11, 11, 9, 8, 8, 8]
            o += row(["UTC", "min", "mean", "max", "of limit", "s over", "s trip", "s bad"], widths: w)
            var peak: Float = .nan, over = 0.0, trip = 0.0, bad = 0.0
            for t in slots {
                guard let m = periods[t]?.mps.first(where: { $0.name == name }) else {
                    o += row([hhmm(t), "no record"], widths: w); continue
                }
                let extreme = m.lowerLimit ? m.min : m.max
                if extreme.isFinite { peak = peak.isFinite ? (m.lowerLimit ? min(peak, extreme) : max(peak, extreme)) : extreme }
                over += m.secondsBeyondLimit; trip += m.secondsBeyondTrip; bad += m.secondsBad
                o += row([hhmm(t) + (periods[t]!.secondsCovered < 1_790 ? "*" : ""), v(m.min), v(m.mean), v(m.max), percent(extreme, m.limit),
                          secs(m.secondsBeyondLimit), secs(m.secondsBeyondTrip), secs(m.secondsBad)], widths: w)
            }
            o += row(["day", "", "", v(peak), percent(peak, first.limit), secs(over), secs(trip), secs(bad)], widths: w)
            if slots.contains(where: { (periods[$0]?.secondsCovered ?? 1_800) < 1_790 }) {
                o += "*: the box ran only part of this half hour\n"
            }
        }
        for name in siteNames {
            let first = slots.lazy.compactMap { periods[$0]?.sites.first { $0.name == name } }.first!
            o += "\n\(name): ceiling \(fixed(Double(first.ceilingW) / 1000, 1)) kW\n"
            o += row(["UTC", "SP min", "SP mean", "import", "curtailed", "s restricted"], width: 13)
            var imported: Float = 0, curtailed: Float = 0, restricted = 0.0, metered = true
            for t in slots {
                guard let s = periods[t]?.sites.first(where: { $0.name == name }) else {
                    o += row([hhmm(t), "no record"], width: 13); continue
                }
                if s.importedKWh.isFinite { imported += s.importedKWh }
                curtailed += s.curtailedKWh
                restricted += s.secondsRestricted
                metered = metered && s.importMetered
                o += row([hhmm(t) + (periods[t]!.secondsCovered < 1_790 ? "*" : ""), kw(s.setPointMinW), kw(s.setPointMeanW), kwh(s.importedKWh),
                          (s.importMetered ? "" : "≤") + kwh(s.curtailedKWh), secs(s.secondsRestricted)], width: 13)
            }
            o += row(["day", "", "", kwh(imported), (metered ? "" : "≤") + kwh(curtailed), secs(restricted)], width: 13)
            if !metered { o += "≤: site import not metered; curtailed energy is an upper bound (ceiling − set point)\n" }
        }
        // Modes other than NORMAL, and notes.
        o += "\nseconds not NORMAL\n"
        let modes = Array(ModeCodes.names.enumerated().filter { $0.element != "NORMAL" })
        o += row(["UTC"] + modes.map { String($0.element.prefix(8)) }, width: 9)
        var any = false
        for t in slots {
            guard let h = periods[t] else { continue }
            let inMode = modes.map { $0.offset < h.secondsInMode.count ? h.secondsInMode[$0.offset] : 0 }
            guard inMode.contains(where: { $0 > 0 }) || h.clockJumped else { continue }
            any = true
            o += row([hhmm(t)] + inMode.map { $0 == 0 ? "" : secs($0) } + (h.clockJumped ? ["clock jumped"] : []), width: 9)
        }
        if !any { o += "none: NORMAL in every recorded half hour\n" }
        // The clock: half hours timed by a wall clock not known to be synchronised are not to be trusted
        // for the TCC's half hours; records older than the flag do not say.
        let recorded = slots.filter { periods[$0] != nil }
        let unsynced = recorded.filter { periods[$0]!.clockSynchronised == false }
        let unknown = recorded.filter { periods[$0]!.clockSynchronised == nil }
        o += "\n"
        if !unsynced.isEmpty {
            o += wrapped("clock not synchronised in \(unsynced.count) half hour\(unsynced.count == 1 ? "" : "s")", unsynced.map(hhmm))
        } else if unknown.count < recorded.count {
            o += "clock synchronised in every recorded half hour\(unknown.isEmpty ? "" : " that says")\n"
        }
        if !unknown.isEmpty { o += "clock's state not recorded in \(unknown.count) half hour\(unknown.count == 1 ? "" : "s") (records older than the flag)\n" }
        return o
    }

    /// The same review for scripts: the day's totals per measurement point and site, seconds in each
    /// mode, the half hours missing, and every recorded half hour as `log export --format jsonl` has it
    /// (merged where a restart split one; no seq). Values in SI units (VA, A, V, W), energy in kWh.
    func json() -> JSON.Value {
        let slots = (0..<48).map { dayStart + UInt32($0) * HalfHourRecord.periodSeconds }
        func hhmm(_ t: UInt32) -> String { let s = Int(t - dayStart); return "\(pad(String(s / 3600), 2)):\(pad(String((s % 3600) / 60), 2))" }
        func n(_ f: Float) -> JSON.Value { jsonNumber(f) }
        var mpNames: [String] = [], siteNames: [String] = []
        for t in slots { for m in periods[t]?.mps ?? [] where !mpNames.contains(m.name) { mpNames.append(m.name) } }
        for t in slots { for s in periods[t]?.sites ?? [] where !siteNames.contains(s.name) { siteNames.append(s.name) } }
        let mps: [JSON.Value] = mpNames.map { name in
            let all = slots.compactMap { periods[$0]?.mps.first { $0.name == name } }
            let first = all[0]
            var peak: Float = .nan
            for m in all {
                let extreme = m.lowerLimit ? m.min : m.max
                if extreme.isFinite { peak = peak.isFinite ? (m.lowerLimit ? min(peak, extreme) : max(peak, extreme)) : extreme }
            }
            let ofLimit: JSON.Value = peak.isFinite && first.limit.isFinite && first.limit != 0 ? .number(Double(peak / first.limit) * 100) : .null
            return .object([
                ("name", .string(name)), ("unit", .string(HalfHourCSV.unitName(first.unit))), ("lower_limit", .bool(first.lowerLimit)),
                ("limit", n(first.limit)), ("trip", n(first.trip)), ("peak", n(peak)), ("peak_of_limit_pct", ofLimit),
                ("s_beyond_limit", .number(all.reduce(0) { $0 + $1.secondsBeyondLimit })),
                ("s_beyond_trip", .number(all.reduce(0) { $0 + $1.secondsBeyondTrip })),
                ("s_bad", .number(all.reduce(0) { $0 + $1.secondsBad })),
            ])
        }
        let sites: [JSON.Value] = siteNames.map { name in
            let all = slots.compactMap { periods[$0]?.sites.first { $0.name == name } }
            return .object([
                ("name", .string(name)), ("ceiling_w", n(all[0].ceilingW)),
                ("imported_kwh", n(all.reduce(Float(0)) { $0 + ($1.importedKWh.isFinite ? $1.importedKWh : 0) })),
                ("curtailed_kwh", n(all.reduce(Float(0)) { $0 + $1.curtailedKWh })),
                ("import_metered", .bool(all.allSatisfy(\.importMetered))),
                ("s_restricted", .number(all.reduce(0) { $0 + $1.secondsRestricted })),
            ])
        }
        let recorded = slots.filter { periods[$0] != nil }
        let inMode: [(String, JSON.Value)] = ModeCodes.names.enumerated().map { i, mode in
            (mode, .number(recorded.reduce(0) { $0 + (i < periods[$1]!.secondsInMode.count ? periods[$1]!.secondsInMode[i] : 0) }))
        }
        let halfHours: [JSON.Value] = recorded.map { t in
            guard case .object(let fields) = HalfHourCSV.json(periods[t]!, seq: 0) else { return .null }
            return .object(fields.filter { $0.0 != "seq" })
        }
        return .object([
            ("box", .string(boxID)), ("day", .string(String(isoTime(UInt64(dayStart) * 1_000_000_000).prefix(10)))),
            ("half_hours_recorded", .int(recorded.count)),
            ("missing", .array(slots.filter { periods[$0] == nil }.map { .string(hhmm($0)) })),
            ("partial", .array(recorded.filter { periods[$0]!.secondsCovered < 1_790 }.map { .string(hhmm($0)) })),
            ("clock_jumped", .array(recorded.filter { periods[$0]!.clockJumped }.map { .string(hhmm($0)) })),
            ("clock_not_synchronised", .array(recorded.filter { periods[$0]!.clockSynchronised == false }.map { .string(hhmm($0)) })),
            ("clock_unknown", .array(recorded.filter { periods[$0]!.clockSynchronised == nil }.map { .string(hhmm($0)) })),
            ("measurement_points", .array(mps)), ("sites", .array(sites)), ("seconds_in_mode", .object(inMode)),
            ("half_hours", .array(halfHours)),
        ])
    }

    /// Columns: the first 6 wide, the rest right-aligned to `width` (or each to its entry in `widths`).
    func row(_ cells: [String], width: Int = 10, widths: [Int] = []) -> String {
        guard let first = cells.first else { return "\n" }
        var line = first + String(repeating: " ", count: max(0, 6 - first.count))
        for (k, c) in cells.dropFirst().enumerated() {
            let w = k < widths.count ? widths[k] : width
            line += String(repeating: " ", count: max(1, w - c.count)) + c
        }
        while line.hasSuffix(" ") { line.removeLast() }
        return line + "\n"
    }

    func kw(_ w: Float) -> String { w.isFinite ? "\(fixed(Double(w) / 1000, 1)) kW" : "--" }
    func kwh(_ e: Float) -> String { e.isFinite ? "\(fixed(Double(e), 1)) kWh" : "--" }
    func percent(_ v: Float, _ limit: Float) -> String {
        v.isFinite && limit.isFinite && limit != 0 ? "\(fixed(Double(v / limit) * 100, 1)) %" : "--"
    }

    /// kVA and kA-free units: VA shown as kVA, A and V as they are.
    static func scale(_ unit: String) -> (Double, String) { unit == "VA" ? (1000, "kVA") : (1, unit) }
}

/// Seconds as the audit shows them: whole seconds plain, tenths where there are any (0.3).
func secs(_ v: Double) -> String { v == v.rounded() ? "\(Int(v))" : fixed(v, 1) }

func fixed(_ v: Double, _ digits: Int) -> String {
    let p = pow(10, Double(digits))
    let r = (v * p).rounded() / p
    var s = "\(r)"
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
    } else if digits > 0 {
        s += "." + String(repeating: "0", count: digits)
    }
    return s
}
