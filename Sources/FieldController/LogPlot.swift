import ArgumentParser
import RingLog

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension LogCommand {
    /// A self-contained SVG of what the box measured and decided: readable in any browser.
    struct Plot: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an SVG plot of the samples ring to stdout: constraint load, thresholds, set points, import, modes.",
            discussion: """
            One panel per measurement point (the range of values in each pixel column shaded, the mean as a
            line, the limit dashed red, the trip threshold dotted) and one for the sites (set point, import
            at the point of connection, ceiling dashed). Time in any mode other than NORMAL is shaded in
            the mode's colour across all panels. Thresholds and names come from the half-hours ring.
            Without --from/--to: the last 24 h in the ring.
            Example: lmc log plot --from 2026-11-20 --to 2026-11-21 > plot.svg
            """
        )
        @OptionGroup var location: LogCommand.Location
        @Option(help: ArgumentHelp("From (UTC date or time).", valueName: "time")) var from: String?
        @Option(help: ArgumentHelp("To (UTC date or time).", valueName: "time")) var to: String?
        @Option(help: ArgumentHelp("Width of the plot in pixels (400–4000).", valueName: "px")) var width: Int = 1200

        func validate() throws {
            if let from, parseUTC(from) == nil { throw ValidationError("--from '\(from)' is not a UTC date or time (2026-11-01 or 2026-11-01T17:30:00)") }
            if let to, parseUTC(to) == nil { throw ValidationError("--to '\(to)' is not a UTC date or time (2026-11-01 or 2026-11-01T17:30:00)") }
            if let f = from.flatMap(parseUTC), let t = to.flatMap(parseUTC), t <= f { throw ValidationError("--to '\(to!)' is not after --from '\(from!)'") }
            guard (400...4000).contains(width) else { throw ValidationError("--width \(width) is outside 400–4000 pixels") }
        }

        func run() throws {
            let r = try location.open("samples")
            defer { r.release() }
            var t1 = to.flatMap(parseUTC).map(Double.init)
            var t0 = from.flatMap(parseUTC).map(Double.init)
            if t0 == nil || t1 == nil {
                var newest = 0.0
                r.forEach { newest = max(newest, Double($0.wallNs) / 1e9) }
                guard newest > 0 else {
                    printError("\(r.path): no samples recorded yet")
                    throw ExitCode(1)
                }
                if t1 == nil { t1 = t0.map { min($0 + 86_400, newest) } ?? newest }
                if t0 == nil { t0 = t1! - 86_400 }
            }
            var plot = SamplePlot(from: t0!, to: t1!, columns: width - SamplePlot.left - SamplePlot.right)
            plot.thresholds = HalfHourLayout.read("\(location.dir)/halfhours.ring", from: t0!, to: t1!)
            r.forEach { rec in
                let t = Double(rec.wallNs) / 1e9
                guard t >= t0! && t < t1!, let s = SampleRecord.decode(rec.payload) else { return }
                plot.add(s, at: t)
            }
            var out = BufferedOutput()
            out.write(plot.svg(boxID: r.boxID, width: width))
            out.flush()
        }
    }
}

/// Names and thresholds per half hour, from the half-hours ring: what the plot draws its limits from.
struct HalfHourLayout {
    struct MP { var name: String; var unit: String; var lower: Bool; var limit: Float; var trip: Float }
    /// Period start → the MPs (in sample order) and site names.
    var periods: [(start: Double, mps: [MP], sites: [String])] = []

    static func read(_ path: String, from: Double, to: Double) -> HalfHourLayout {
        var l = HalfHourLayout()
        guard let r = try? RingReader(path: path) else { return l }
        defer { r.release() }
        var nearest: (distance: Double, entry: (start: Double, mps: [MP], sites: [String]))?
        r.forEach { rec in
            guard let h = HalfHourRecord.decode(rec.payload) else { return }
            let start = Double(h.periodStart)
            let entry = (start: start, mps: h.mps.map { MP(name: $0.name, unit: HalfHourCSV.unitName($0.unit), lower: $0.lowerLimit, limit: $0.limit, trip: $0.trip) },
                         sites: h.sites.map(\.name))
            if start + 1800 > from && start < to { l.periods.append(entry) }
            let d = start < from ? from - start : start - to
            if nearest == nil || d < nearest!.distance { nearest = (d, entry) }
        }
        if l.periods.isEmpty, let n = nearest { l.periods = [n.entry] }
        l.periods.sort { $0.start < $1.start }
        return l
    }

    func mp(_ i: Int, at t: Double) -> MP? {
        let p = periods.last { $0.start <= t } ?? periods.first
        return p.flatMap { i < $0.mps.count ? $0.mps[i] : nil }
    }
    func site(_ j: Int) -> String? { periods.lazy.compactMap { j < $0.sites.count ? $0.sites[j] : nil }.first }
}

/// Samples folded into pixel columns (constant memory whatever the span), then drawn as SVG.
struct SamplePlot {
    static let left = 70, right = 20
    let from: Double, to: Double, columns: Int
    var thresholds = HalfHourLayout()

    struct Column {
        var mpMin: [Float] = [], mpMax: [Float] = [], mpSum: [Double] = [], mpCount: [Int] = []
        var spSum: [Double] = [], spCount: [Int] = [], impSum: [Double] = [], impCount: [Int] = []
        var worstMode: Int = -1
        var samples = 0
    }
    private(set) var cols: [Column]
    private(set) var mpCount = 0, siteCount = 0

    init(from: Double, to: Double, columns: Int) {
        self.from = from; self.to = to; self.columns = columns
        cols = Array(repeating: Column(), count: columns)
    }

    mutating func add(_ s: SampleRecord, at t: Double) {
        let i = min(columns - 1, max(0, Int((t - from) / (to - from) * Double(columns))))
        var c = cols[i]
        mpCount = max(mpCount, s.mps.count); siteCount = max(siteCount, s.sites.count)
        while c.mpMin.count < s.mps.count { c.mpMin.append(.infinity); c.mpMax.append(-.infinity); c.mpSum.append(0); c.mpCount.append(0) }
        while c.spSum.count < s.sites.count { c.spSum.append(0); c.spCount.append(0); c.impSum.append(0); c.impCount.append(0) }
        for (k, m) in s.mps.enumerated() where m.quality < 2 && m.value.isFinite {
            c.mpMin[k] = min(c.mpMin[k], m.value); c.mpMax[k] = max(c.mpMax[k], m.value)
            c.mpSum[k] += Double(m.value); c.mpCount[k] += 1
        }
        for (k, site) in s.sites.enumerated() {
            if site.setPointW.isFinite { c.spSum[k] += Double(site.setPointW); c.spCount[k] += 1 }
            if site.importW.isFinite { c.impSum[k] += Double(site.importW); c.impCount[k] += 1 }
        }
        c.worstMode = max(c.worstMode, Int(s.mode))
        c.samples += 1
        cols[i] = c
    }

    static let modeColours = ["", "#fff3b0", "#dde8ff", "#ffd6a5", "#ffc2c2", "#ff9e9e", "#d9b3ff"]
    static let siteColours = ["#1a7f37", "#8250df", "#bf3989", "#0550ae"]

    func svg(boxID: String, width: Int) -> String {
        let panelH = 220.0, gap = 40.0, top = 96.0
        let panels = mpCount + 1
        let height = Int(top + Double(panels) * (panelH + gap) + 30)
        var o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" font-size=\"12\">\n"
        o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        o += "<text x=\"\(Self.left)\" y=\"20\" font-size=\"15\">lmc log plot: box \(xml(boxID)), \(isoTime(UInt64(from * 1e9))) to \(isoTime(UInt64(to * 1e9)))</text>\n"
        if thresholds.periods.isEmpty {
            o += "<text x=\"\(Self.left)\" y=\"38\" fill=\"#a00\">no half-hour record yet: thresholds and names not drawn (mp0 … in sample order)</text>\n"
        }
        // Mode legend.
        o += "<text x=\"10\" y=\"56\">shaded:</text>\n"
        var lx = Double(Self.left)
        for (k, name) in ModeCodes.names.enumerated() where k > 0 {
            o += "<rect x=\"\(Int(lx))\" y=\"46\" width=\"12\" height=\"12\" fill=\"\(Self.modeColours[k])\" stroke=\"#999\"/>"
            o += "<text x=\"\(Int(lx) + 16)\" y=\"56\">\(name)</text>\n"
            lx += Double(name.count) * 7.5 + 30
        }
        let x = { (col: Int) in Double(Self.left) + Double(col) + 0.5 }
        for p in 0..<panels {
            let y0 = top + Double(p) * (panelH + gap)
            o += shading(y0: y0, h: panelH)
            if p < mpCount { o += mpPanel(p, y0: y0, h: panelH, x: x) } else { o += sitePanel(y0: y0, h: panelH, x: x) }
            o += axis(y0: y0, h: panelH)
        }
        o += "</svg>\n"
        return o
    }

    private func shading(y0: Double, h: Double) -> String {
        var o = "", k = 0
        while k < columns {
            let m = cols[k].worstMode
            guard m > 0 && m < Self.modeColours.count else { k += 1; continue }
            var e = k
            while e + 1 < columns && cols[e + 1].worstMode == m { e += 1 }
            o += "<rect x=\(q(Double(Self.left + k))) y=\(q(y0)) width=\(q(Double(e - k + 1))) height=\(q(h)) fill=\"\(Self.modeColours[m])\"/>\n"
            k = e + 1
        }
        return o
    }

    private func mpPanel(_ i: Int, y0: Double, h: Double, x: (Int) -> Double) -> String {
        let info = thresholds.mp(i, at: from)
        let unit = info?.unit ?? "SI"
        let (scale, shown) = AuditReport.scale(unit)
        var lo = Float.infinity, hi = -Float.infinity
        for c in cols where i < c.mpMin.count && c.mpCount[i] > 0 { lo = min(lo, c.mpMin[i]); hi = max(hi, c.mpMax[i]) }
        for p in thresholds.periods where i < p.mps.count {
            for v in [p.mps[i].limit, p.mps[i].trip] where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        }
        if !lo.isFinite { lo = 0; hi = 1 }
        if unit != "V" { lo = min(lo, 0) }
        let span = max(Double(hi - lo), 1e-9)
        let yMin = Double(lo) - (unit == "V" ? span * 0.1 : 0), yMax = Double(hi) + span * 0.1
        let y = { (v: Double) in y0 + h - (v - yMin) / (yMax - yMin) * h }
        var o = "<text x=\"\(Self.left)\" y=\(q(y0 - 6)) font-weight=\"bold\">\(xml(info?.name ?? "mp\(i)")) (\(shown))</text>\n"
        o += yTicks(y0: y0, h: h, lo: yMin, hi: yMax, scale: scale)
        // Envelope and mean.
        var upper: [String] = [], lower: [String] = [], mean: [String] = []
        func flush() {
            if upper.count > 1 { o += "<polygon points=\"\((upper + lower.reversed()).joined(separator: " "))\" fill=\"#9ab\" fill-opacity=\"0.5\"/>\n" }
            if mean.count > 1 { o += "<polyline points=\"\(mean.joined(separator: " "))\" fill=\"none\" stroke=\"#223\" stroke-width=\"1.2\"/>\n" }
            upper = []; lower = []; mean = []
        }
        for (k, c) in cols.enumerated() {
            guard i < c.mpCount.count, c.mpCount[i] > 0 else { flush(); continue }
            upper.append("\(r1(x(k))),\(r1(y(Double(c.mpMax[i]))))")
            lower.append("\(r1(x(k))),\(r1(y(Double(c.mpMin[i]))))")
            mean.append("\(r1(x(k))),\(r1(y(c.mpSum[i] / Double(c.mpCount[i]))))")
        }
        flush()
        // Thresholds as steps per half hour.
        for (which, colour, dash) in [(0, "#c00", "6 4"), (1, "#700", "2 3")] {
            var pts: [String] = []
            for k in 0..<columns {
                let t = from + (Double(k) + 0.5) / Double(columns) * (to - from)
                guard let m = thresholds.mp(i, at: t) else { continue }
                let v = which == 0 ? m.limit : m.trip
                if v.isFinite { pts.append("\(r1(x(k))),\(r1(y(Double(v))))") }
            }
            if pts.count > 1 { o += "<polyline points=\"\(pts.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-dasharray=\"\(dash)\"/>\n" }
        }
        o += legend(y0: y0, items: [("#223", "value (mean; range shaded)", nil), ("#c00", "limit", "6 4"), ("#700", "trip", "2 3")])
        return o
    }

    private func sitePanel(y0: Double, h: Double, x: (Int) -> Double) -> String {
        var hi = 1.0
        for c in cols {
            for k in c.spSum.indices where c.spCount[k] > 0 { hi = max(hi, c.spSum[k] / Double(c.spCount[k])) }
            for k in c.impSum.indices where c.impCount[k] > 0 { hi = max(hi, c.impSum[k] / Double(c.impCount[k])) }
        }
        let yMax = hi * 1.1
        let y = { (v: Double) in y0 + h - v / yMax * h }
        var o = "<text x=\"\(Self.left)\" y=\(q(y0 - 6)) font-weight=\"bold\">sites (kW)</text>\n"
        o += yTicks(y0: y0, h: h, lo: 0, hi: yMax, scale: 1000)
        var items: [(String, String, String?)] = []
        for j in 0..<siteCount {
            let colour = Self.siteColours[j % Self.siteColours.count]
            let name = thresholds.site(j) ?? "site\(j)"
            for (isImport, dash) in [(true, "4 2" as String?), (false, nil)] {
                var pts: [String] = []
                for (k, c) in cols.enumerated() {
                    let (sum, n) = isImport ? (j < c.impSum.count ? c.impSum[j] : 0, j < c.impCount.count ? c.impCount[j] : 0)
                                            : (j < c.spSum.count ? c.spSum[j] : 0, j < c.spCount.count ? c.spCount[j] : 0)
                    guard n > 0 else {
                        if pts.count > 1 { o += polyline(pts, isImport ? "#e36209" : colour, dash) }
                        pts = []; continue
                    }
                    pts.append("\(r1(x(k))),\(r1(y(sum / Double(n))))")
                }
                if pts.count > 1 { o += polyline(pts, isImport ? "#e36209" : colour, dash) }
                items.append((isImport ? "#e36209" : colour, "\(name) \(isImport ? "import" : "set point")", dash))
            }
        }
        o += legend(y0: y0, items: items)
        return o
    }

    private func polyline(_ pts: [String], _ colour: String, _ dash: String?) -> String {
        "<polyline points=\"\(pts.joined(separator: " "))\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>\n"
    }

    private func legend(y0: Double, items: [(String, String, String?)]) -> String {
        var o = "", lx = Double(Self.left + 200)
        for (colour, label, dash) in items {
            o += "<line x1=\(q(lx)) x2=\(q(lx + 20)) y1=\(q(y0 - 10)) y2=\(q(y0 - 10)) stroke=\"\(colour)\" stroke-width=\"2\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>"
            o += "<text x=\(q(lx + 24)) y=\(q(y0 - 6))>\(xml(label))</text>\n"
            lx += Double(label.count) * 6.5 + 40
        }
        return o
    }

    private func yTicks(y0: Double, h: Double, lo: Double, hi: Double, scale: Double) -> String {
        let step = niceStep((hi - lo) / scale / 5) * scale
        var o = "<rect x=\"\(Self.left)\" y=\(q(y0)) width=\"\(columns)\" height=\(q(h)) fill=\"none\" stroke=\"#888\"/>\n"
        var v = (lo / step).rounded(.up) * step
        while v <= hi {
            let yy = y0 + h - (v - lo) / (hi - lo) * h
            o += "<line x1=\"\(Self.left)\" x2=\"\(Self.left + columns)\" y1=\(q(yy)) y2=\(q(yy)) stroke=\"#eee\"/>"
            o += "<text x=\"\(Self.left - 6)\" y=\(q(yy + 4)) text-anchor=\"end\">\(trimmed(v / scale))</text>\n"
            v += step
        }
        return o
    }

    private func axis(y0: Double, h: Double) -> String {
        let span = to - from
        let steps: [Double] = [60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800]
        let step = steps.first { span / $0 <= 12 } ?? 604_800
        var o = ""
        var t = (from / step).rounded(.up) * step
        while t <= to {
            let xx = Double(Self.left) + (t - from) / span * Double(columns)
            let iso = isoTime(UInt64(t * 1e9))
            let label = span > 86_400 ? String(iso.prefix(16)).replacing("T", with: " ") : String(iso.dropFirst(11).prefix(5))
            o += "<line x1=\(q(xx)) x2=\(q(xx)) y1=\(q(y0)) y2=\(q(y0 + h)) stroke=\"#ddd\"/>"
            o += "<text x=\(q(xx)) y=\(q(y0 + h + 14)) text-anchor=\"middle\">\(label)</text>\n"
            t += step
        }
        return o
    }
}

private func niceStep(_ raw: Double) -> Double {
    guard raw > 0 && raw.isFinite else { return 1 }
    let p = pow(10, (log10(raw)).rounded(.down))
    for m in [1.0, 2, 2.5, 5, 10] where m * p >= raw { return m * p }
    return 10 * p
}
private func trimmed(_ v: Double) -> String { v == v.rounded() ? "\(Int(v))" : "\((v * 100).rounded() / 100)" }
private func r1(_ v: Double) -> String { "\((v * 10).rounded() / 10)" }
private func q(_ v: Double) -> String { "\"\(r1(v))\"" }
private func xml(_ s: String) -> String {
    s.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
}
