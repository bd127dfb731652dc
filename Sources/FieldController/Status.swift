import ControlCycle
import FailSafe
import Headroom
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What the console shows: the last cycle's picture, swapped in whole under a lock.
final class StatusBoard: Sendable {
    typealias Snapshot = StatusView

    private let snapshot = Mutex<Snapshot?>(nil)
    private let notes = Mutex<[String]>([])
    /// The DNP3 master's connection, as the loop last saw it (nil: no [dnp3]).
    struct DNP3Line: Sendable, Equatable {
        var peer: String?
        var lastRequestSecondsAgo: Double?
        var unsolicitedGivenUp: Int
    }
    private let dnp3 = Mutex<DNP3Line?>(nil)
    func updateDNP3(_ l: DNP3Line?) { dnp3.withLock { $0 = l } }

    private func dnp3Text() -> String? {
        guard let d = dnp3.withLock({ $0 }) else { return nil }
        var t = "dnp3: " + (d.peer.map { "master \($0)" } ?? "no master connected")
        t += d.lastRequestSecondsAgo.map { ", last request \(num($0)) s ago" } ?? ", no request yet"
        if d.unsolicitedGivenUp > 0 { t += ", \(d.unsolicitedGivenUp) unsolicited unconfirmed" }
        return t
    }

    func update(_ s: Snapshot) { snapshot.withLock { $0 = s } }
    func note(_ n: String) { notes.withLock { $0 = Array(($0 + [n]).suffix(5)) } }
    var current: Snapshot? { snapshot.withLock { $0 } }

    /// Plain text for a dumb 80×24 serial terminal: mode and why, each MP against its limit, each
    /// site's set point and what bound it, relay health, alarms, recent notes.
    func render() -> String {
        guard let s = current else { return "lmc: starting, no control cycle yet\n" }
        var lines: [String] = []
        lines.append(cut("lmc  \(s.mode.rawValue)  \(s.reason)"))
        lines.append(cut("cycles \(s.cycles)  overruns \(s.overruns)"))
        lines.append("")
        lines.append("MEASUREMENT POINT     VALUE        LIMIT        STATE")
        for mp in s.mps {
            let unit = mp.kind == .apparentPower ? "kVA" : mp.kind == .current ? "A" : "V"
            let scale = mp.kind == .apparentPower ? 1000.0 : 1
            let value = mp.value.map { num($0 / scale) + " " + unit } ?? "--"
            lines.append(cut(pad(mp.id, 21) + pad(value, 13) + pad(num(mp.limit / scale) + " " + unit, 13) + mp.state))
            lines.append(cut("  " + mp.reason + "; meter " + mp.meter))
        }
        lines.append("")
        lines.append("SITE          SET POINT    IMPORT       CHARGER      BOUND BY")
        for site in s.sites {
            let charger = site.chargerA.map { num($0) + " A" } ?? "--"
            lines.append(cut(pad(site.id, 14) + pad(num(site.setPointW / 1000) + " kW", 13) + pad(site.importW.map { num($0 / 1000) + " kW" } ?? "--", 13)
                             + pad(charger, 13) + site.boundBy))
            lines.append(cut("  " + site.reason))
            if let e = site.relayError { lines.append(cut("  relay: " + e)) }
            if let o = site.oscp { lines.append(cut("  " + o)) }
        }
        lines.append("")
        lines.append(s.alarms.isEmpty ? "no alarms" : "ALARMS")
        for a in s.alarms.prefix(4) { lines.append(cut("  " + a)) }
        if let d = dnp3Text() { lines.append(cut(d)) }
        for n in notes.withLock({ $0 }) { lines.append(cut("note: " + n)) }
        return lines.prefix(23).joined(separator: "\n") + "\n"
    }

    func json() -> String {
        guard let s = current else { return JSON.render(.object([("mode", .string("STARTING"))])) }
        return JSON.render(.object([
            ("mode", .string(s.mode.rawValue)), ("reason", .string(s.reason)), ("cycles", .int(s.cycles)), ("overruns", .int(s.overruns)),
            ("measurement_points", .array(s.mps.map { mp in .object([
                ("id", .string(mp.id)), ("value", mp.value.map { .number($0) } ?? .null), ("limit", .number(mp.limit)),
                ("state", .string(mp.state)), ("reason", .string(mp.reason)), ("meter", .string(mp.meter)),
            ]) })),
            ("sites", .array(s.sites.map { site in .object([
                ("id", .string(site.id)), ("set_point_w", .number(site.setPointW)), ("requested_w", .number(site.requestedW)),
                ("bound_by", .string(site.boundBy)), ("reason", .string(site.reason)), ("import_w", site.importW.map { .number($0) } ?? .null),
                ("charger_a", site.chargerA.map { .number($0) } ?? .null), ("applied_a", site.appliedA.map { .number($0) } ?? .null),
                ("relay_error", site.relayError.map { .string($0) } ?? .null),
                ("oscp", site.oscp.map { .string($0) } ?? .null),
            ]) })),
            ("alarms", .array(s.alarms.map { .string($0) })),
            ("dnp3", dnp3.withLock { $0 }.map { d in .object([
                ("master", d.peer.map { .string($0) } ?? .null),
                ("last_request_s_ago", d.lastRequestSecondsAgo.map { .number($0) } ?? .null),
                ("unsolicited_given_up", .int(d.unsolicitedGivenUp)),
            ]) } ?? .null),
        ]))
    }
}

/// Every line is cut to the console and made terminal-safe: reasons and errors may carry a peer's text.
private func cut(_ s: String) -> String { let s = terminalSafe(s); return s.count <= 79 ? s : String(s.prefix(78)) + "…" }
private func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s + " " : s + String(repeating: " ", count: w - s.count) }
private func num(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return r == r.rounded() && abs(r) < 1e12 ? "\(Int64(r)).0" : "\(r)"
}
