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
