import RingLog

extension AuditReport {
    /// `lmc log audit --month YYYY-MM`: a line per UTC day for each measurement point and site, and the
    /// month's line. `dayStart` is the month's first day; `periods` every half hour of the month.
    func renderMonth(days: Int) -> String {
        let month = String(isoTime(UInt64(dayStart) * 1_000_000_000).prefix(7))
        var o = "lmc log audit: box \(boxID), \(month) (UTC), \(periods.count) of \(days * 48) half hours recorded\n"
        guard !periods.isEmpty else { return o + "no half hours recorded in this month\n" }
        let sorted = periods.keys.sorted()
        func day(_ t: UInt32) -> Int { Int(t - dayStart) / 86_400 }
        var mpNames: [String] = [], siteNames: [String] = []
        for t in sorted { for m in periods[t]!.mps where !mpNames.contains(m.name) { mpNames.append(m.name) } }
        for t in sorted { for s in periods[t]!.sites where !siteNames.contains(s.name) { siteNames.append(s.name) } }

        struct MP { var min: Float = .nan, max: Float = .nan, peak: Float = .nan, weighted = 0.0, seconds = 0.0, over = 0.0, trip = 0.0, bad = 0.0, halfHours = 0 }
        for name in mpNames {
            let first = sorted.lazy.compactMap { periods[$0]!.mps.first { $0.name == name } }.first!
            let (scale, shown) = Self.scale(HalfHourCSV.unitName(first.unit))
            func v(_ f: Float) -> String { f.isFinite ? "\(fixed(Double(f) / scale, 1)) \(shown)" : "--" }
            o += "\n\(name): limit \(v(first.limit))\(first.lowerLimit ? " (lower)" : "")"
            o += first.trip.isFinite ? ", trip \(v(first.trip))\n" : ", no trip threshold\n"
            let w = [11, 11, 11, 9, 8, 8, 8]
            o += row(["day", "min", "mean", "max", "of limit", "s over", "s trip", "s bad"], widths: w)
            var perDay = [MP](repeating: MP(), count: days)
            for t in sorted {
                guard let m = periods[t]!.mps.first(where: { $0.name == name }) else { continue }
                let d = day(t)
                let covered = periods[t]!.secondsCovered
                func fold(_ x: inout MP) {
                    if m.min.isFinite { x.min = x.min.isFinite ? Swift.min(x.min, m.min) : m.min }
                    if m.max.isFinite { x.max = x.max.isFinite ? Swift.max(x.max, m.max) : m.max }
                    let extreme = m.lowerLimit ? m.min : m.max
                    if extreme.isFinite { x.peak = x.peak.isFinite ? (m.lowerLimit ? Swift.min(x.peak, extreme) : Swift.max(x.peak, extreme)) : extreme }
                    if m.mean.isFinite { x.weighted += Double(m.mean) * covered; x.seconds += covered }
                    x.over += m.secondsBeyondLimit; x.trip += m.secondsBeyondTrip; x.bad += m.secondsBad; x.halfHours += 1
                }
                fold(&perDay[d])
            }
            var total = MP()
            for (d, x) in perDay.enumerated() {
                let label = pad(String(d + 1), 2)
                guard x.halfHours > 0 else { o += row([label, "no record"], widths: w); continue }
                let mean: Float = x.seconds > 0 ? Float(x.weighted / x.seconds) : .nan
                o += row([label + (x.halfHours < 48 ? "*" : ""), v(x.min), v(mean), v(x.max), percent(x.peak, first.limit), secs(x.over), secs(x.trip), secs(x.bad)], widths: w)
                if x.min.isFinite { total.min = total.min.isFinite ? Swift.min(total.min, x.min) : x.min }
                if x.max.isFinite { total.max = total.max.isFinite ? Swift.max(total.max, x.max) : x.max }
                if x.peak.isFinite { total.peak = total.peak.isFinite ? (first.lowerLimit ? Swift.min(total.peak, x.peak) : Swift.max(total.peak, x.peak)) : x.peak }
                total.weighted += x.weighted; total.seconds += x.seconds; total.over += x.over; total.trip += x.trip; total.bad += x.bad
            }
            let mean: Float = total.seconds > 0 ? Float(total.weighted / total.seconds) : .nan
            o += row(["month", v(total.min), v(mean), v(total.max), percent(total.peak, first.limit), secs(total.over), secs(total.trip), secs(total.bad)], widths: w)
        }
        for name in siteNames {
            let first = sorted.lazy.compactMap { periods[$0]!.sites.first { $0.name == name } }.first!
            o += "\n\(name): ceiling \(fixed(Double(first.ceilingW) / 1000, 1)) kW\n"
            o += row(["day", "SP min", "SP mean", "import", "curtailed", "s restricted"], width: 13)
            var perDay = [(spMin: Float, spWeighted: Double, seconds: Double, imported: Float, curtailed: Float, restricted: Double, metered: Bool, n: Int)](
                repeating: (.nan, 0, 0, 0, 0, 0, true, 0), count: days)
            for t in sorted {
                guard let s = periods[t]!.sites.first(where: { $0.name == name }) else { continue }
                let d = day(t), covered = periods[t]!.secondsCovered
                if s.setPointMinW.isFinite { perDay[d].spMin = perDay[d].spMin.isFinite ? Swift.min(perDay[d].spMin, s.setPointMinW) : s.setPointMinW }
                if s.setPointMeanW.isFinite { perDay[d].spWeighted += Double(s.setPointMeanW) * covered; perDay[d].seconds += covered }
                if s.importedKWh.isFinite { perDay[d].imported += s.importedKWh }
                perDay[d].curtailed += s.curtailedKWh
                perDay[d].restricted += s.secondsRestricted
                perDay[d].metered = perDay[d].metered && s.importMetered
                perDay[d].n += 1
            }
            var imported: Float = 0, curtailed: Float = 0, restricted = 0.0, metered = true, spMin: Float = .nan, spW = 0.0, spS = 0.0
            for (d, x) in perDay.enumerated() {
                let label = pad(String(d + 1), 2)
                guard x.n > 0 else { o += row([label, "no record"], width: 13); continue }
                o += row([label + (x.n < 48 ? "*" : ""), kw(x.spMin), kw(x.seconds > 0 ? Float(x.spWeighted / x.seconds) : .nan), kwh(x.imported),
                          (x.metered ? "" : "≤") + kwh(x.curtailed), secs(x.restricted)], width: 13)
                imported += x.imported; curtailed += x.curtailed; restricted += x.restricted; metered = metered && x.metered
                if x.spMin.isFinite { spMin = spMin.isFinite ? Swift.min(spMin, x.spMin) : x.spMin }
                spW += x.spWeighted; spS += x.seconds
            }
            o += row(["month", kw(spMin), kw(spS > 0 ? Float(spW / spS) : .nan), kwh(imported), (metered ? "" : "≤") + kwh(curtailed), secs(restricted)], width: 13)
            if !metered { o += "≤: site import not metered; curtailed energy is an upper bound (ceiling − set point)\n" }
        }
        let modes = Array(ModeCodes.names.enumerated().filter { $0.element != "NORMAL" })
        var inMode = [Double](repeating: 0, count: ModeCodes.names.count)
        var jumps = 0
        for t in sorted {
            for (i, s) in periods[t]!.secondsInMode.enumerated() where i < inMode.count { inMode[i] += s }
            if periods[t]!.clockJumped { jumps += 1 }
        }
        o += "\nseconds not NORMAL\n"
        o += row([""] + modes.map { String($0.element.prefix(8)) }, width: 9)
        o += row(["month"] + modes.map { secs(inMode[$0.offset]) }, width: 9)
        o += "half hours with a clock jump: \(jumps)\n"
        if periods.values.contains(where: { $0.secondsCovered < 1_790 }) || periods.count < days * 48 {
            o += "*: the box did not run all of this day\n"
        }
        return o
    }
}
