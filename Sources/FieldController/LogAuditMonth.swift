import RingLog

/// `lmc log audit --month YYYY-MM`: the month's half hours folded per UTC day, for each measurement
/// point and site, and the month's totals — one set of numbers, printed as the 80-column table or as
/// JSON (docs/json.md, docs/schemas/log-audit-month.schema.json).
struct MonthAudit {
    struct MPDay {
        var min: Float = .nan, max: Float = .nan, peak: Float = .nan
        var weighted = 0.0, seconds = 0.0, over = 0.0, trip = 0.0, bad = 0.0, halfHours = 0
        var mean: Float { seconds > 0 ? Float(weighted / seconds) : .nan }
    }
    struct MP { var first: HalfHourRecord.MP; var days: [MPDay]; var total: MPDay }
    struct SiteDay {
        var spMin: Float = .nan, spWeighted = 0.0, seconds = 0.0, imported: Float = 0, curtailed: Float = 0, restricted = 0.0
        var metered = true, halfHours = 0
        var spMean: Float { seconds > 0 ? Float(spWeighted / seconds) : .nan }
    }
    struct Site { var first: HalfHourRecord.Site; var days: [SiteDay]; var total: SiteDay }
    /// Per day: half hours recorded, covered in part, with a wall-clock jump, with the clock not
    /// synchronised in some cycle, and with the clock's state not recorded (records older than the flag).
    struct Day { var halfHours = 0, partial = 0, jumped = 0, notSynchronised = 0, syncUnknown = 0 }

    let boxID: String
    let dayStart: UInt32
    let dayCount: Int
    var recorded = 0
    var mps: [MP] = []
    var sites: [Site] = []
    var days: [Day]
    var inMode = [Double](repeating: 0, count: ModeCodes.names.count)

    var month: String { String(isoTime(UInt64(dayStart) * 1_000_000_000).prefix(7)) }
    func date(_ d: Int) -> String { String(isoTime((UInt64(dayStart) + UInt64(d) * 86_400) * 1_000_000_000).prefix(10)) }
    var total: Day {
        days.reduce(into: Day()) {
            $0.halfHours += $1.halfHours; $0.partial += $1.partial; $0.jumped += $1.jumped
            $0.notSynchronised += $1.notSynchronised; $0.syncUnknown += $1.syncUnknown
        }
    }

    /// `periods`: every (merged) half hour of the month, by start; `dayStart` the month's first day.
    init(dayStart: UInt32, days: Int, periods: [UInt32: HalfHourRecord], boxID: String) {
        self.boxID = boxID
        self.dayStart = dayStart
        dayCount = days
        self.days = [Day](repeating: Day(), count: days)
        recorded = periods.count
        let sorted = periods.keys.sorted()
        func day(_ t: UInt32) -> Int { Int(t - dayStart) / 86_400 }
        var mpNames: [String] = [], siteNames: [String] = []
        for t in sorted { for m in periods[t]!.mps where !mpNames.contains(m.name) { mpNames.append(m.name) } }
        for t in sorted { for s in periods[t]!.sites where !siteNames.contains(s.name) { siteNames.append(s.name) } }

        for name in mpNames {
            let first = sorted.lazy.compactMap { periods[$0]!.mps.first { $0.name == name } }.first!
            var perDay = [MPDay](repeating: MPDay(), count: days)
            for t in sorted {
                guard let m = periods[t]!.mps.first(where: { $0.name == name }) else { continue }
                let covered = periods[t]!.secondsCovered
                let d = day(t)
                if m.min.isFinite { perDay[d].min = perDay[d].min.isFinite ? Swift.min(perDay[d].min, m.min) : m.min }
                if m.max.isFinite { perDay[d].max = perDay[d].max.isFinite ? Swift.max(perDay[d].max, m.max) : m.max }
                let extreme = m.lowerLimit ? m.min : m.max
                if extreme.isFinite {
                    perDay[d].peak = perDay[d].peak.isFinite ? (m.lowerLimit ? Swift.min(perDay[d].peak, extreme) : Swift.max(perDay[d].peak, extreme)) : extreme
                }
                if m.mean.isFinite { perDay[d].weighted += Double(m.mean) * covered; perDay[d].seconds += covered }
                perDay[d].over += m.secondsBeyondLimit; perDay[d].trip += m.secondsBeyondTrip; perDay[d].bad += m.secondsBad; perDay[d].halfHours += 1
            }
            var total = MPDay()
            for x in perDay where x.halfHours > 0 {
                if x.min.isFinite { total.min = total.min.isFinite ? Swift.min(total.min, x.min) : x.min }
                if x.max.isFinite { total.max = total.max.isFinite ? Swift.max(total.max, x.max) : x.max }
                if x.peak.isFinite { total.peak = total.peak.isFinite ? (first.lowerLimit ? Swift.min(total.peak, x.peak) : Swift.max(total.peak, x.peak)) : x.peak }
                total.weighted += x.weighted; total.seconds += x.seconds; total.over += x.over; total.trip += x.trip; total.bad += x.bad
                total.halfHours += x.halfHours
            }
            mps.append(MP(first: first, days: perDay, total: total))
        }
        for name in siteNames {
            let first = sorted.lazy.compactMap { periods[$0]!.sites.first { $0.name == name } }.first!
            var perDay = [SiteDay](repeating: SiteDay(), count: days)
            for t in sorted {
                guard let s = periods[t]!.sites.first(where: { $0.name == name }) else { continue }
                let d = day(t), covered = periods[t]!.secondsCovered
                if s.setPointMinW.isFinite { perDay[d].spMin = perDay[d].spMin.isFinite ? Swift.min(perDay[d].spMin, s.setPointMinW) : s.setPointMinW }
                if s.setPointMeanW.isFinite { perDay[d].spWeighted += Double(s.setPointMeanW) * covered; perDay[d].seconds += covered }
                if s.importedKWh.isFinite { perDay[d].imported += s.importedKWh }
                perDay[d].curtailed += s.curtailedKWh
                perDay[d].restricted += s.secondsRestricted
                perDay[d].metered = perDay[d].metered && s.importMetered
                perDay[d].halfHours += 1
            }
            var total = SiteDay()
            for x in perDay where x.halfHours > 0 {
                total.imported += x.imported; total.curtailed += x.curtailed; total.restricted += x.restricted; total.metered = total.metered && x.metered
                if x.spMin.isFinite { total.spMin = total.spMin.isFinite ? Swift.min(total.spMin, x.spMin) : x.spMin }
                total.spWeighted += x.spWeighted; total.seconds += x.seconds; total.halfHours += x.halfHours
            }
            sites.append(Site(first: first, days: perDay, total: total))
        }
        for t in sorted {
            let h = periods[t]!, d = day(t)
            for (i, s) in h.secondsInMode.enumerated() where i < inMode.count { inMode[i] += s }
            self.days[d].halfHours += 1
            if h.secondsCovered < 1_790 { self.days[d].partial += 1 }
            if h.clockJumped { self.days[d].jumped += 1 }
            switch h.clockSynchronised {
            case false?: self.days[d].notSynchronised += 1
            case nil: self.days[d].syncUnknown += 1
            case true?: break
            }
        }
    }

    /// The 80-column table.
    func render() -> String {
        let a = AuditReport(dayStart: dayStart, periods: [:], boxID: boxID)
        var o = "lmc log audit: box \(boxID), \(month) (UTC), \(recorded) of \(dayCount * 48) half hours recorded\n"
        guard recorded > 0 else { return o + "no half hours recorded in this month\n" }
        for mp in mps {
            let first = mp.first
            let (scale, shown) = AuditReport.scale(HalfHourCSV.unitName(first.unit))
            func v(_ f: Float) -> String { f.isFinite ? "\(fixed(Double(f) / scale, 1)) \(shown)" : "--" }
            o += "\n\(first.name): limit \(v(first.limit))\(first.lowerLimit ? " (lower)" : "")"
            o += first.trip.isFinite ? ", trip \(v(first.trip))\n" : ", no trip threshold\n"
            let w = [11, 11, 11, 9, 8, 8, 8]
            o += a.row(["day", "min", "mean", "max", "of limit", "s over", "s trip", "s bad"], widths: w)
            for (d, x) in mp.days.enumerated() {
                let label = pad(String(d + 1), 2)
                guard x.halfHours > 0 else { o += a.row([label, "no record"], widths: w); continue }
                o += a.row([label + (x.halfHours < 48 ? "*" : ""), v(x.min), v(x.mean), v(x.max), a.percent(x.peak, first.limit), secs(x.over), secs(x.trip), secs(x.bad)], widths: w)
            }
            let t = mp.total
            o += a.row(["month", v(t.min), v(t.mean), v(t.max), a.percent(t.peak, first.limit), secs(t.over), secs(t.trip), secs(t.bad)], widths: w)
        }
        for site in sites {
            o += "\n\(site.first.name): ceiling \(fixed(Double(site.first.ceilingW) / 1000, 1)) kW\n"
            o += a.row(["day", "SP min", "SP mean", "import", "curtailed", "s restricted"], width: 13)
            for (d, x) in site.days.enumerated() {
                let label = pad(String(d + 1), 2)
                guard x.halfHours > 0 else { o += a.row([label, "no record"], width: 13); continue }
                o += a.row([label + (x.halfHours < 48 ? "*" : ""), a.kw(x.spMin), a.kw(x.spMean), a.kwh(x.imported),
                            (x.metered ? "" : "≤") + a.kwh(x.curtailed), secs(x.restricted)], width: 13)
            }
            let t = site.total
            o += a.row(["month", a.kw(t.spMin), a.kw(t.spMean), a.kwh(t.imported), (t.metered ? "" : "≤") + a.kwh(t.curtailed), secs(t.restricted)], width: 13)
            if !t.metered { o += "≤: site import not metered; curtailed energy is an upper bound (ceiling − set point)\n" }
        }
        let modes = Array(ModeCodes.names.enumerated().filter { $0.element != "NORMAL" })
        o += "\nseconds not NORMAL\n"
        o += a.row([""] + modes.map { String($0.element.prefix(8)) }, width: 9)
        o += a.row(["month"] + modes.map { secs(inMode[$0.offset]) }, width: 9)
        let all = total
        o += "half hours with a clock jump: \(all.jumped)\n"
        // The DNO's question: which half hours were timed by a clock not known to be right (not to be
        // trusted for the TCC's half hours).
        o += "half hours with the clock not synchronised: \(all.notSynchronised)\n"
        if all.notSynchronised > 0 {
            o += wrapped("  on days", days.indices.filter { days[$0].notSynchronised > 0 }.map { "\($0 + 1) (\(days[$0].notSynchronised))" })
        }
        if all.syncUnknown > 0 { o += "half hours with the clock's state not recorded (older records): \(all.syncUnknown)\n" }
        if days.contains(where: { $0.partial > 0 }) || recorded < dayCount * 48 {
            o += "*: the box did not run all of this day\n"
        }
        return o
    }

    /// The same numbers for scripts: every day of the month (a day with no record has `half_hours` 0
    /// and nulls), each point's and site's days and month, modes and the clock's state.
    func json() -> JSON.Value {
        func n(_ f: Float) -> JSON.Value { jsonNumber(f) }
        func pct(_ v: Float, _ limit: Float) -> JSON.Value { v.isFinite && limit.isFinite && limit != 0 ? .number(Double(v / limit) * 100) : .null }
        func mpFields(_ x: MPDay, _ first: HalfHourRecord.MP) -> [(String, JSON.Value)] {
            let none = x.halfHours == 0
            return [("half_hours", .int(x.halfHours)), ("min", n(x.min)), ("mean", n(x.mean)), ("max", n(x.max)), ("peak", n(x.peak)),
                    ("peak_of_limit_pct", pct(x.peak, first.limit)),
                    ("s_beyond_limit", none ? .null : .number(x.over)), ("s_beyond_trip", none ? .null : .number(x.trip)),
                    ("s_bad", none ? .null : .number(x.bad))]
        }
        func siteFields(_ x: SiteDay) -> [(String, JSON.Value)] {
            let none = x.halfHours == 0
            return [("half_hours", .int(x.halfHours)), ("sp_min_w", n(x.spMin)), ("sp_mean_w", n(x.spMean)),
                    ("imported_kwh", none ? .null : n(x.imported)), ("curtailed_kwh", none ? .null : n(x.curtailed)),
                    ("import_metered", none ? .null : .bool(x.metered)), ("s_restricted", none ? .null : .number(x.restricted))]
        }
        let all = total
        return .object([
            ("box", .string(boxID)), ("month", .string(month)), ("days", .int(dayCount)),
            ("half_hours_recorded", .int(recorded)), ("half_hours_in_month", .int(dayCount * 48)),
            ("half_hours_clock_jumped", .int(all.jumped)), ("half_hours_clock_not_synchronised", .int(all.notSynchronised)),
            ("half_hours_clock_unknown", .int(all.syncUnknown)),
            ("seconds_in_mode", .object(ModeCodes.names.enumerated().map { ($0.element, .number(inMode[$0.offset])) })),
            ("by_day", .array(days.enumerated().map { d, x in .object([
                ("day", .string(date(d))), ("half_hours", .int(x.halfHours)), ("partial", .int(x.partial)), ("clock_jumped", .int(x.jumped)),
                ("clock_not_synchronised", .int(x.notSynchronised)), ("clock_unknown", .int(x.syncUnknown)),
            ]) })),
            ("measurement_points", .array(mps.map { mp in .object([
                ("name", .string(mp.first.name)), ("unit", .string(HalfHourCSV.unitName(mp.first.unit))), ("lower_limit", .bool(mp.first.lowerLimit)),
                ("limit", n(mp.first.limit)), ("trip", n(mp.first.trip)),
                ("days", .array(mp.days.enumerated().map { d, x in .object([("day", .string(date(d)))] + mpFields(x, mp.first)) })),
                ("month", .object(mpFields(mp.total, mp.first))),
            ]) })),
            ("sites", .array(sites.map { site in .object([
                ("name", .string(site.first.name)), ("ceiling_w", n(site.first.ceilingW)),
                ("days", .array(site.days.enumerated().map { d, x in .object([("day", .string(date(d)))] + siteFields(x)) })),
                ("month", .object(siteFields(site.total))),
            ]) })),
        ])
    }
}

/// "label: a, b, c" wrapped at 80 columns, continuation lines indented like the first item.
func wrapped(_ label: String, _ items: [String], width: Int = 80) -> String {
    var out = "", line = label + ":"
    let indent = String(repeating: " ", count: label.count + 2)
    for (k, item) in items.enumerated() {
        let piece = item + (k < items.count - 1 ? "," : "")
        if line.count + 1 + piece.count > width && line != label + ":" && line != indent {
            out += line + "\n"
            line = indent + piece
        } else {
            line += (line == indent ? "" : " ") + piece
        }
    }
    return out + line + "\n"
}
