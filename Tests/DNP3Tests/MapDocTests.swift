import Foundation
import Testing
@testable import DNP3

/// docs/dnp3-map.md lists exactly the points of `PointMap.standard` (the table between its markers is
/// what this renders; on a difference the rendered table is written to /tmp/dnp3-map-table.md).
@Suite struct MapDocTests {
    static func render(_ map: PointMap) -> String {
        func num(_ d: Double) -> String { d == d.rounded() ? String(Int(d)) : String(d) }
        var lines = ["| type | index | static | event | name | unit | scale | class | deadband | group | meaning |",
                     "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for t in PointType.allCases {
            for p in map.points(t) {
                let (g, v) = t.staticGV
                let ev = t.eventGV.map { "g\($0.0)v\($0.1)" } ?? "—"
                lines.append("| \(t.rawValue) | \(p.index) | g\(g)v\(v) | \(p.eventClass == 0 ? "—" : ev) | `\(p.name)` | \(p.unit.isEmpty ? "—" : p.unit) | \(num(p.scale)) | \(p.eventClass == 0 ? "0 (static only)" : String(p.eventClass)) | \(t == .binaryInput || t == .analogOutput || t == .binaryOutput ? "—" : num(p.deadband)) | \(p.group.map { "`\($0.rawValue)`" } ?? "—") | \(p.description) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test func theMapDocumentListsEveryPoint() throws {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        let text = try String(contentsOfFile: u.appendingPathComponent("docs/dnp3-map.md").path, encoding: .utf8)
        let begin = "<!-- points: generated from PointMap.standard, checked by MapDocTests -->\n", end = "<!-- end points -->"
        let a = try #require(text.range(of: begin)), b = try #require(text.range(of: end, range: a.upperBound..<text.endIndex))
        let doc = String(text[a.upperBound..<b.lowerBound])
        let want = Self.render(.standard) + "\n"
        if doc != want { try? want.write(toFile: "/tmp/dnp3-map-table.md", atomically: true, encoding: .utf8) }
        #expect(doc == want, "docs/dnp3-map.md differs from PointMap.standard (rendered: /tmp/dnp3-map-table.md)")
    }
}
