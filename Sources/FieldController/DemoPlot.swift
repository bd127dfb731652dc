/// The picture `lmc demo` leaves behind: the example day's transformer load against its rating, and
/// the site's set point against what it imported. Readable without tools: every series has a legend
/// entry drawn with the series' own stroke, the legend wraps instead of overlapping, and the set point
/// is drawn last, dashed, so it stays visible where the site imports exactly what it is allowed.
struct DemoPlot {
    struct Point { var t: Double, background: Double, load: Double, site: Double, limit: Double }

    struct Series {
        var label: String
        var color: String
        var width: Double
        var dash: String?
    }

    // Drawn in this order: the set point last, on top of the import it bounds.
    static let rating = Series(label: "rating 500 kVA", color: "#c00", width: 1.5, dash: "8 4")
    static let firm = Series(label: "firm 150 kVA", color: "#888", width: 1, dash: "2 3")
    static let background = Series(label: "background load", color: "#aaa", width: 1.5, dash: nil)
    static let load = Series(label: "transformer load", color: "#222", width: 1.5, dash: nil)
    static let siteImport = Series(label: "site import", color: "#3b3", width: 4, dash: nil)
    static let setPoint = Series(label: "site set point (charger limit)", color: "#04a", width: 2, dash: "6 3")
    static let legendOrder = [load, background, rating, siteImport, setPoint, firm]

    static let width = 960.0, height = 500.0
    static let left = 72.0, right = 36.0, bottom = 44.0
    static let fontSize = 12.0
    /// Width of a character at 12 px sans-serif, rounded up (DejaVu Sans averages about 0.6 em; the
    /// widest letters used here, m and w, are below 0.9 em): the legend's spacing is computed with it.
    static let charWidth = 7.5

    /// A legend item's swatch and text, placed left to right, wrapping to a new row before the edge.
    struct LegendItem { var series: Series; var x: Double; var y: Double; var textX: Double; var textWidth: Double }

    static func legend(maxWidth: Double = width - left - right, rowHeight: Double = 18) -> [LegendItem] {
        var items: [LegendItem] = []
        var x = 0.0, row = 0.0
        for s in legendOrder {
            let textWidth = Double(s.label.count) * charWidth
            let itemWidth = 26 + textWidth
            if x > 0 && x + itemWidth > maxWidth { x = 0; row += 1 }
            items.append(LegendItem(series: s, x: left + x, y: 40 + row * rowHeight, textX: left + x + 26, textWidth: textWidth))
            x += itemWidth + 22
        }
        return items
    }

    static func svg(_ points: [Point]) -> String {
        let items = legend()
        let top = (items.map(\.y).max() ?? 40) + 22
        func x(_ t: Double) -> Double { left + t / 86_400 * (width - left - right) }
        func y(_ kva: Double) -> Double { height - bottom - kva / 600 * (height - bottom - top) }
        func n(_ v: Double) -> String { String(Int(v.rounded())) }
        func stroke(_ s: Series) -> String {
            "fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"\(s.width)\"" + (s.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")
                + " stroke-linejoin=\"round\""
        }
        func polyline(_ s: Series, _ values: [(Double, Double)]) -> String {
            let d = values.map { "\(n(x($0.0))),\(n(y($0.1)))" }.joined(separator: " ")
            return "<polyline class=\"series\" data-label=\"\(s.label)\" \(stroke(s)) points=\"\(d)\"/>\n"
        }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" font-family=\"sans-serif\" font-size=\"\(n(fontSize))\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(n(left))\" y=\"20\" font-size=\"14\">lmc demo — the Charge Project example day: 500 kVA transformer, EV hub 250 kVA rated, 150 kVA firm</text>\n"
        svg += "<g id=\"legend\">\n"
        for i in items {
            svg += "<line x1=\"\(n(i.x))\" x2=\"\(n(i.x + 20))\" y1=\"\(n(i.y - 4))\" y2=\"\(n(i.y - 4))\" \(stroke(i.series))/>"
            svg += "<text x=\"\(n(i.textX))\" y=\"\(n(i.y))\" data-width=\"\(n(i.textWidth))\">\(i.series.label)</text>\n"
        }
        svg += "</g>\n"
        for kva in stride(from: 0.0, through: 600, by: 100) {
            svg += "<line x1=\"\(n(left))\" x2=\"\(n(width - right))\" y1=\"\(n(y(kva)))\" y2=\"\(n(y(kva)))\" stroke=\"#e4e4e4\"/>"
            svg += "<text x=\"\(n(left - 8))\" y=\"\(n(y(kva) + 4))\" text-anchor=\"end\">\(Int(kva)) kVA</text>\n"
        }
        for hour in stride(from: 0, through: 24, by: 3) {
            let hx = x(Double(hour) * 3600)
            svg += "<line x1=\"\(n(hx))\" x2=\"\(n(hx))\" y1=\"\(n(top))\" y2=\"\(n(height - bottom))\" stroke=\"#f0f0f0\"/>"
            svg += "<text x=\"\(n(hx))\" y=\"\(n(height - bottom + 18))\" text-anchor=\"middle\">\(hour):00</text>\n"
        }
        svg += "<text x=\"\(n(width - right))\" y=\"\(n(height - 8))\" text-anchor=\"end\" fill=\"#555\">simulated time of day; kW = kVA at the site's unity power factor</text>\n"
        svg += polyline(rating, [(0, 500), (86_400, 500)])
        svg += polyline(firm, [(0, 150), (86_400, 150)])
        svg += polyline(background, points.map { ($0.t, $0.background) })
        svg += polyline(load, points.map { ($0.t, $0.load) })
        svg += polyline(siteImport, points.map { ($0.t, $0.site) })
        svg += polyline(setPoint, points.map { ($0.t, $0.limit) })
        svg += "</svg>\n"
        return svg
    }
}
