import ArgumentParser
import RingLog

extension LogCommand {
    /// `lmc log trips`: every trip record in the trips ring.
    struct Trips: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the trip records: when, which site, why, and what the breaker answered.",
            discussion: """
            One line per trip the box commanded (non-response, last resort, a test trip): its number, the time
            (UTC), the site, the reason and the breaker's answer in the 60 s after. "cut short" marks a record a
            stop or a reload wrote before its 60 s after were over; "N sample records unreadable" one that lost some.
            Example: lmc log trips; lmc log export --trip 3 > trip3.csv
            """
        )
        @OptionGroup var location: Location
        @Flag(help: "Print JSON instead of text (docs/json.md).")
        var json = false

        func run() throws {
            let r = try location.open("trips")
            defer { r.release() }
            let (entries, skipped) = TripLog.read(r, samples: false)
            if json {
                print(JSON.render(.object([("trips", .array(entries.map(Self.json))), ("unreadable_records", .int(skipped))])))
                return
            }
            if entries.isEmpty { print("no trip records in \(r.path)") }
            for e in entries {
                let t = e.record
                var line = "\(e.number)  \(isoTime(t.wallNs))\(t.clockSynchronised ? "" : " (clock not synchronised)")  \(t.site)  \(t.reason)  → \(t.answer)"
                if !t.complete { line += "  [cut short]" }
                if e.missingChunks > 0 { line += "  [\(e.missingChunks) sample records unreadable]" }
                print(line)
            }
            if skipped > 0 { print("\(skipped) unreadable records skipped") }
        }

        static func json(_ e: TripLog.Entry) -> JSON.Value {
            let t = e.record
            return .object([("number", .int(Int(e.number))), ("time", .string(isoTime(t.wallNs))), ("clock_synchronised", .bool(t.clockSynchronised)),
                            ("site", .string(t.site)), ("reason", .string(t.reason)), ("answer", .string(t.answer)),
                            ("complete", .bool(t.complete)), ("missing_sample_records", .int(e.missingChunks))])
        }
    }
}

/// `lmc log export --trip N`: one trip record's samples with named columns.
enum TripExport {
    static func run(location: LogCommand.Location, number: UInt64, format: String) throws {
        let r = try location.open("trips")
        defer { r.release() }
        guard let e = TripLog.read(r, only: number).entries.first else {
            printError("no trip record \(number) in \(r.path) (lmc log trips lists them)")
            throw ExitCode(1)
        }
        var out = BufferedOutput()
        let t = e.record
        let quality = ["good", "estimated", "bad"]
        func mode(_ s: SampleRecord) -> String { ModeCodes.names.indices.contains(Int(s.mode)) ? ModeCodes.names[Int(s.mode)] : "?" }
        func bound(_ b: UInt8) -> String { LimitCodes.names.indices.contains(Int(b)) ? LimitCodes.names[Int(b)] : "?" }
        func name(_ names: [String], _ i: Int, _ fallback: String) -> String { names.indices.contains(i) ? names[i] : "\(fallback)\(i)" }
        if format == "csv" {
            // Names from the head: the config of the trip's time. Every sample of one record has them all.
            let nmp = t.samples.first?.sample.mps.count ?? t.mpNames.count
            let nsite = t.samples.first?.sample.sites.count ?? t.siteNames.count
            var h = "offset_s,time,mode"
            for i in 0..<nmp { let n = name(t.mpNames, i, "mp"); h += ",\(n),\(n)_quality" }
            for j in 0..<nsite { let n = name(t.siteNames, j, "site"); h += ",\(n)_set_point_w,\(n)_bound_by,\(n)_import_w" }
            out.write(h + "\n")
            for s in t.samples {
                var line = "\(Double(s.offsetMs) / 1000),\(isoTime(UInt64(Int64(bitPattern: t.wallNs) + Int64(s.offsetMs) * 1_000_000))),\(mode(s.sample))"
                for m in s.sample.mps { line += ",\(m.value.isFinite ? "\(m.value)" : ""),\(quality[min(Int(m.quality), 2)])" }
                for x in s.sample.sites {
                    line += ",\(x.setPointW.isFinite ? "\(x.setPointW)" : ""),\(bound(x.boundBy)),\(x.importW.isFinite ? "\(x.importW)" : "")"
                }
                out.write(line + "\n")
            }
        } else {
            out.write(JSON.render(LogCommand.Trips.json(e)) + "\n")
            for s in t.samples {
                out.write(JSON.render(.object([
                    ("offset_s", .number(Double(s.offsetMs) / 1000)),
                    ("time", .string(isoTime(UInt64(Int64(bitPattern: t.wallNs) + Int64(s.offsetMs) * 1_000_000)))),
                    ("mode", .string(mode(s.sample))),
                    ("mps", .object(s.sample.mps.enumerated().map { i, m in
                        (name(t.mpNames, i, "mp"), .object([("value", jsonNumber(m.value)), ("quality", .string(quality[min(Int(m.quality), 2)]))]))
                    })),
                    ("sites", .object(s.sample.sites.enumerated().map { j, x in
                        (name(t.siteNames, j, "site"), .object([("set_point_w", jsonNumber(x.setPointW)), ("bound_by", .string(bound(x.boundBy))),
                                                              ("import_w", jsonNumber(x.importW))]))
                    })),
                ])) + "\n")
            }
        }
        out.flush()
    }
}
