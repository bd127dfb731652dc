import RingLog

/// `lmc log export --ring minutes`: named columns, one header for the whole export.
enum MinuteExport {
    static func run(_ r: RingReader, fromNs: UInt64, toNs: UInt64, format: String) {
        func inRange(_ m: MinuteRecord) -> Bool {
            let ns = UInt64(m.minuteStart) * 1_000_000_000
            return ns >= fromNs && ns <= toNs
        }
        var out = BufferedOutput()
        func mode(_ m: MinuteRecord) -> String { ModeCodes.names.indices.contains(Int(m.mode)) ? ModeCodes.names[Int(m.mode)] : "?" }
        func num(_ f: Float) -> String { f.isFinite ? "\(f)" : "" }
        if format == "jsonl" {
            r.forEach { rec in
                guard let m = MinuteRecord.decode(rec.payload), inRange(m) else { return }
                out.write(JSON.render(.object([
                    ("seq", .int(Int(rec.seq))), ("minute_start", .string(isoTime(UInt64(m.minuteStart) * 1_000_000_000))),
                    ("seconds_covered", .number(m.secondsCovered)), ("clock_synchronised", .bool(m.clockSynchronised)),
                    ("clock_jumped", .bool(m.clockJumped)), ("mode", .string(mode(m))), ("s_not_normal", .number(m.secondsNotNormal)),
                    ("mps", .object(m.mps.map { ($0.name, .object([("unit", .string($0.unitName)), ("min", jsonNumber($0.min)),
                                                                     ("mean", jsonNumber($0.mean)), ("max", jsonNumber($0.max))])) })),
                    ("sites", .object(m.sites.map { ($0.name, .object([("set_point_w", jsonNumber($0.setPointW)), ("import_w", jsonNumber($0.importW))])) })),
                ])) + "\n")
            }
            out.flush()
            return
        }
        // Pass 1: every point (with its unit) and site in the range, in order of first appearance.
        var mpColumns: [String] = [], siteColumns: [String] = []
        r.forEach { rec in
            guard let m = MinuteRecord.decode(rec.payload), inRange(m) else { return }
            for p in m.mps where !mpColumns.contains("\(p.name)_\(p.unitName)") { mpColumns.append("\(p.name)_\(p.unitName)") }
            for s in m.sites where !siteColumns.contains(s.name) { siteColumns.append(s.name) }
        }
        var h = "seq,minute_start,seconds_covered,clock_synchronised,clock_jumped,mode,s_not_normal"
        for c in mpColumns { h += ",\(c)_min,\(c)_mean,\(c)_max" }
        for c in siteColumns { h += ",\(c)_set_point_w,\(c)_import_w" }
        out.write(h + "\n")
        // Pass 2: the rows, each value under its name.
        r.forEach { rec in
            guard let m = MinuteRecord.decode(rec.payload), inRange(m) else { return }
            var line = "\(rec.seq),\(isoTime(UInt64(m.minuteStart) * 1_000_000_000)),\(m.secondsCovered),\(m.clockSynchronised ? 1 : 0),\(m.clockJumped ? 1 : 0),\(mode(m)),\(m.secondsNotNormal)"
            for c in mpColumns {
                if let p = m.mps.first(where: { "\($0.name)_\($0.unitName)" == c }) { line += ",\(num(p.min)),\(num(p.mean)),\(num(p.max))" } else { line += ",,," }
            }
            for c in siteColumns {
                if let s = m.sites.first(where: { $0.name == c }) { line += ",\(num(s.setPointW)),\(num(s.importW))" } else { line += ",," }
            }
            out.write(line + "\n")
        }
        out.flush()
    }
}

/// The samples export's columns: named after the points and sites of the layouts in the ring's header
/// (`trafo_va`, `hub_set_point_w`); positional (`mp0_value`, `site0_set_point_w`) for samples no layout
/// describes (rings written before layouts, or a count that does not match). One header for the export:
/// every column of every sample in the range, in order of appearance.
struct SampleColumns {
    private let layouts: [(fromSeq: UInt64, layout: SampleLayout)]
    private(set) var mpColumns: [String] = []
    private(set) var siteColumns: [String] = []
    private struct Key: Hashable { var entry: Int, mps: Int, sites: Int }
    private var cache: [Key: (mps: [Int], sites: [Int])] = [:]

    init(_ r: RingReader, fromNs: UInt64, toNs: UInt64) {
        layouts = r.layouts()
        var mpColumns: [String] = [], siteColumns: [String] = []
        r.forEach { rec in
            guard rec.wallNs >= fromNs && rec.wallNs <= toNs, let s = SampleRecord.decode(rec.payload) else { return }
            let (mps, sites) = names(seq: rec.seq, mps: s.mps.count, sites: s.sites.count)
            for n in mps where !mpColumns.contains(n) { mpColumns.append(n) }
            for n in sites where !siteColumns.contains(n) { siteColumns.append(n) }
        }
        self.mpColumns = mpColumns
        self.siteColumns = siteColumns
    }

    private func entry(_ seq: UInt64) -> Int? { layouts.lastIndex { $0.fromSeq <= seq } }

    func names(seq: UInt64, mps: Int, sites: Int) -> (mps: [String], sites: [String]) {
        if let e = entry(seq), layouts[e].layout.mps.count == mps, layouts[e].layout.sites.count == sites {
            return (layouts[e].layout.mps, layouts[e].layout.sites)
        }
        return ((0..<mps).map { "mp\($0)" }, (0..<sites).map { "site\($0)" })
    }

    var header: String {
        var h = "seq,time,mono_s,clock_synchronised,mode"
        for c in mpColumns { h += c.hasPrefix("mp") && Int(c.dropFirst(2)) != nil ? ",\(c)_value,\(c)_quality" : ",\(c),\(c)_quality" }
        for c in siteColumns { h += ",\(c)_set_point_w,\(c)_bound_by,\(c)_import_w" }
        return h
    }

    /// For each header column, the index of the sample's value in it (-1: the sample has none).
    mutating func mapping(seq: UInt64, mps: Int, sites: Int) -> (mps: [Int], sites: [Int]) {
        let key = Key(entry: entry(seq) ?? -1, mps: mps, sites: sites)
        if let m = cache[key] { return m }
        let (mn, sn) = names(seq: seq, mps: mps, sites: sites)
        let m = (mpColumns.map { mn.firstIndex(of: $0) ?? -1 }, siteColumns.map { sn.firstIndex(of: $0) ?? -1 })
        cache[key] = m
        return m
    }
}
