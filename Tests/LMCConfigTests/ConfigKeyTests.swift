import Foundation
import Testing
import TOMLReader
@testable import LMCConfig
import LMCWiring

/// The declarations in `ConfigKeys` are the one list of lmc.toml keys: the reader reads every one of
/// them, and docs/config.md documents every one with the same default.
@Suite struct ConfigKeyTests {
    /// A config with every table present and the fewest keys; `U` is the current point's unit.
    static let blocks: [(schema: String, header: String, lines: [String])] = [
        ("control", "[control]", []),
        ("box", "[box]", []),
        ("failsafe", "[failsafe]", []),
        ("log", "[log]", []),
        ("upstream", "[upstream]", []),
        ("oscp", "[oscp]", []),
        ("dnp3", "[dnp3]", []),
        ("bus", "[[bus]]", ["id = \"rs485\"", "tcp = \"127.0.0.1:1502\""]),
        ("meter", "[[meter]]", ["id = \"m\"", "bus = \"rs485\"", "profile = \"generic\""]),
        ("pulse_meter", "[[pulse_meter]]", ["id = \"s0\"", "line = 6", "impulses_per_kwh = 1000"]),
        ("measurement_point", "[[measurement_point]]", ["id = \"feeder\"", "kind = \"current\"", "sensitivity_per_kw = 1.44"]),
        ("measurement_point.upper", "[measurement_point.upper]", ["limit_a = 400", "release_zone_a = 385", "release_trigger_a = 370"]),
        ("measurement_point.lower", "[measurement_point.lower]", ["limit_a = 10", "release_zone_a = 20", "release_trigger_a = 30"]),
        ("site", "[[site]]", ["id = \"hub\"", "firm_kw = 150", "rated_kw = 250"]),
        ("site.schedule", "[[site.schedule]]", ["from = \"17:00\"", "to = \"19:00\"", "limit_kw = 100"]),
        ("site.breaker", "[site.breaker]", ["trip_line = 23"]),
        ("site.charger", "[site.charger]", ["profile = \"generic\"", "tcp = \"127.0.0.1:1503\""]),
    ]

    static func render(adding extra: (schema: String, line: String)? = nil) -> String {
        blocks.map { b in
            ([b.header] + b.lines + (extra?.schema == b.schema ? [extra!.line] : [])).joined(separator: "\n")
        }.joined(separator: "\n") + "\n"
    }

    static func sample(_ k: ConfigKey) -> String? {
        switch k.type {
        case .number: formatNumber(k.min ?? 1)
        case .string: "\"x\""
        case .choice(let c): "\"\(c[0])\""
        case .bool: "true"
        case .numbers(let n): "[" + Array(repeating: "1", count: n ?? 1).joined(separator: ", ") + "]"
        case .strings: "[\"x\"]"
        case .table, .tables: nil
        }
    }

    static func unknownKeyIssues(_ text: String) -> [ConfigIssue] {
        guard case .failure(let e) = Configuration.parse(text) else { return [] }
        return e.issues.filter { $0.message.contains("unknown key") || $0.path == "(syntax)" }
    }

    @Test func theBaseConfigHasNoUnknownKeys() {
        #expect(Self.unknownKeyIssues(Self.render()).isEmpty, "\(Self.unknownKeyIssues(Self.render()))")
    }

    /// A declared key the reader forgot would be refused as unknown; a key read but not declared stops
    /// the reader (an assertion in debug builds), so this also walks every read.
    @Test func everyDeclaredKeyIsRead() {
        var tried = 0
        for k in ConfigKeys.all {
            guard let value = Self.sample(k) else { continue }
            let name = k.name.hasSuffix("_U") ? String(k.name.dropLast(2)) + "_a" : k.name
            guard let block = Self.blocks.first(where: { $0.schema == k.table }) else {
                Issue.record("no block for table \(k.table)"); continue
            }
            if block.lines.contains(where: { $0.hasPrefix("\(name) =") }) { continue }
            let issues = Self.unknownKeyIssues(Self.render(adding: (k.table, "\(name) = \(value)")))
            #expect(issues.isEmpty, "\(k.table).\(name): \(issues)")
            tried += 1
        }
        #expect(tried > 90)
    }

    @Test func aTypoIsAnsweredFromTheDeclarations() throws {
        let text = Self.render(adding: ("failsafe", "auto_close_delay = 300"))
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("accepted a typo"); return }
        #expect(e.description.contains("failsafe.auto_close_delay: unknown key (did you mean auto_close_delay_s?)"), "\(e)")
    }

    @Test func declarationsAreUniqueAndSane() {
        var seen = Set<String>()
        for k in ConfigKeys.all {
            #expect(seen.insert("\(k.table)|\(k.name)").inserted, "declared twice: \(k.table).\(k.name)")
            #expect(!k.doc.isEmpty, "\(k.table).\(k.name) has no doc line")
            if case .number(let d) = k.defaultValue {
                if let lo = k.min { #expect(d >= lo, "\(k.table).\(k.name): default below min") }
                if let hi = k.max { #expect(d <= hi, "\(k.table).\(k.name): default above max") }
                if k.positive { #expect(d > 0, "\(k.table).\(k.name): default not positive") }
            }
        }
    }
}

/// docs/config.md in step with the declarations: every declared key is a row of its section's table with
/// the same default (and range, where it has one), and every row is a declared key.
@Suite struct ConfigDocTests {
    struct Row { var table: String; var key: String; var type: String; var defaultText: String; var line: Int }

    /// The rows of the key tables, under the headings that name their tables (`## \`[failsafe]\``,
    /// `### \`[measurement_point.upper]\` and/or \`[measurement_point.lower]\``).
    static func rows() throws -> (rows: [Row], headings: Set<String>) {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        let text = try String(contentsOfFile: u.appendingPathComponent("docs/config.md").path, encoding: .utf8)
        var tables: [String] = [], rows: [Row] = [], headings = Set<String>(), columns: [String] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            if line.hasPrefix("#") {
                tables = line.matches(of: /`\[\[?([a-z0-9_.]+)\]\]?`/).map { String($0.1) }
                headings.formUnion(tables)
                columns = []
                continue
            }
            guard line.hasPrefix("|"), !tables.isEmpty else { continue }
            // Cells split at | not escaped as \|.
            let cells = line.replacingOccurrences(of: "\\|", with: "\u{1}").split(separator: "|", omittingEmptySubsequences: false)
                .dropFirst().dropLast().map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "\u{1}", with: "\\|") }
            if columns.isEmpty { columns = cells; continue }
            if cells.allSatisfy({ $0.allSatisfy { "-: ".contains($0) } }) { continue }
            guard let k = columns.firstIndex(of: "key"), let t = columns.firstIndex(of: "type"), let d = columns.firstIndex(of: "default"),
                  cells.count == columns.count else { continue }
            for table in tables {
                rows.append(Row(table: table, key: cells[k], type: cells[t], defaultText: cells[d], line: i + 1))
            }
        }
        return (rows, headings)
    }

    @Test func everyDeclaredKeyIsDocumentedWithItsDefault() throws {
        let (rows, headings) = try Self.rows()
        for k in ConfigKeys.all where k.type != .table && k.type != .tables {
            #expect(headings.contains(k.table), "docs/config.md has no section for [\(k.table)]")
            guard let row = rows.first(where: { $0.table == k.table && $0.key == "`\(k.name)`" }) else {
                Issue.record("docs/config.md: [\(k.table)] has no row for `\(k.name)`"); continue
            }
            #expect(row.defaultText == k.docDefault, "docs/config.md:\(row.line): \(k.table).\(k.name) default \(row.defaultText), declared \(k.docDefault)")
            if let range = k.docRange {
                #expect(row.type.contains(range), "docs/config.md:\(row.line): \(k.table).\(k.name) type \(row.type), declared range \(range)")
            }
        }
    }

    @Test func everyDocumentedKeyIsDeclared() throws {
        let (rows, _) = try Self.rows()
        #expect(rows.count > 100)
        for row in rows {
            let name = row.key.hasPrefix("`") && row.key.hasSuffix("`") && row.key.count > 2 ? String(row.key.dropFirst().dropLast()) : nil
            guard let name, !name.contains("`") else {
                Issue.record("docs/config.md:\(row.line): one key per row, in backticks: \(row.key)"); continue
            }
            #expect(ConfigKeys.keys(in: row.table).contains { $0.name == name }, "docs/config.md:\(row.line): \(row.table).\(name) is not declared")
        }
    }
}

/// `[dnp3]`: defaults, and errors that name the key.
@Suite struct DNP3ConfigTests {
    static let base = """
        [[measurement_point]]
        id = "feeder"
        kind = "current"
        sensitivity_per_kw = 1.44
        [measurement_point.upper]
        limit_a = 400
        release_zone_a = 385
        release_trigger_a = 370
        [[site]]
        id = "hub"
        firm_kw = 150
        rated_kw = 250

        """

    @Test func defaultsAndValues() throws {
        guard case .success(let c) = Configuration.parse(Self.base + "[dnp3]\n") else { Issue.record("does not parse"); return }
        let d = try #require(c.runtime.dnp3)
        #expect(d.port == 20000 && d.outstationAddress == 1024 && d.masterAddress == 1 && d.allowedIPs == ["127.0.0.1"] && d.listen == "127.0.0.1")
        guard case .success(let c2) = Configuration.parse(Self.base + "[dnp3]\nport = 20001\nallowed_ips = [\"10.0.0.5\"]\nmaster_address = 3\n") else {
            Issue.record("does not parse"); return
        }
        #expect(c2.runtime.dnp3?.allowedIPs == ["10.0.0.5"] && c2.runtime.dnp3?.masterAddress == 3 && c2.runtime.dnp3?.port == 20001)
    }

    @Test func errorsNameTheKey() {
        for (text, path) in [("listen = \"box.local\"", "dnp3.listen"), ("allowed_ips = [\"scada\"]", "dnp3.allowed_ips"),
                             ("master_address = 1024", "dnp3.master_address"), ("port = 0", "dnp3.port"), ("colour = 1", "dnp3.colour")] {
            guard case .failure(let e) = Configuration.parse(Self.base + "[dnp3]\n" + text + "\n") else { Issue.record("\(text) accepted"); continue }
            #expect(e.issues.contains { $0.path.hasPrefix(path) }, "\(text): \(e.issues)")
        }
    }

    /// Classes and deadbands per point group, event buffers per class.
    @Test func classesDeadbandsAndEventBuffers() throws {
        let text = "[dnp3]\nevent_buffer = 50\nevent_buffer_class2 = 500\nclass_mp_value = 1\ndeadband_mp_value = 20\nclass_halfhour = 0\ndeadband_site_import_w = 2500\n"
        guard case .success(let c) = Configuration.parse(Self.base + text) else { Issue.record("does not parse"); return }
        let d = try #require(c.runtime.dnp3)
        #expect(d.eventBuffers == [50, 500, 50])
        #expect(d.classes == ["mp_value": 1, "halfhour": 0])
        #expect(d.deadbands == ["mp_value": 20, "site_import": 2500])
        // Nothing set: no overrides (the map's defaults).
        guard case .success(let c0) = Configuration.parse(Self.base + "[dnp3]\n") else { Issue.record("does not parse"); return }
        #expect(c0.runtime.dnp3?.classes == [:] && c0.runtime.dnp3?.deadbands == [:] && c0.runtime.dnp3?.eventBuffers == [100, 100, 100])
    }

    @Test func aBadClassOrDeadbandNamesTheKeyTheValueAndTheFix() {
        for (text, path, words) in [("class_mp_value = 4", "dnp3.class_mp_value", ["4", "at most 3"]),
                                    ("class_alarms = 1.5", "dnp3.class_alarms", ["1.5", "0, 1, 2 or 3", "class_alarms = 1"]),
                                    ("deadband_mp_limit_w = -5", "dnp3.deadband_mp_limit_w", ["-5", "at least 0"]),
                                    ("event_buffer_class3 = 0", "dnp3.event_buffer_class3", ["0", "at least 1"]),
                                    ("deadband_codes = 1", "dnp3.deadband_codes", [])] {
            guard case .failure(let e) = Configuration.parse(Self.base + "[dnp3]\n" + text + "\n") else { Issue.record("\(text) accepted"); continue }
            let issue = e.issues.first { $0.path.hasPrefix(path) }
            #expect(issue != nil, "\(text): \(e.issues)")
            for w in words { #expect(issue?.description.contains(w) == true, "\(text): \(issue?.description ?? "-") lacks \(w)") }
        }
    }
}
