import CTSensorDriver
import LMCConfig
import LMCWiring
import ModbusBridge
import HTTPTransport
import OSCP
import RingLog
import Supervision
import FailSafe
import DNP3

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The inputs a box takes from outside, each as a function of arbitrary bytes. Nothing here may crash,
/// hang or return something invalid; a finding becomes a file in Fuzz/regressions/TARGET.
enum FuzzTargets {
    static let names = ["config", "registers", "oscp", "ring", "ssh", "time", "control", "mbserver", "oscpclient", "dnp3"]

    static func run(_ target: String, _ data: [UInt8]) {
        switch target {
        case "config": config(data)
        case "registers": registers(data)
        case "oscp": oscp(data)
        case "ring": ring(data)
        case "ssh": ssh(data)
        case "time": time(data)
        case "control": control(data)
        case "mbserver": mbserver(data)
        case "oscpclient": oscpClient(data)
        case "dnp3": dnp3(data)
        default: fatalError("no fuzz target '\(target)'; targets: \(names.joined(separator: ", "))")
        }
    }

    /// lmc.toml: the parser and the schema, errors named, never a crash.
    static func config(_ data: [UInt8]) {
        _ = Configuration.parse(String(decoding: data, as: UTF8.self))
    }

    /// A meter's reply: every profile's registers decoded from the bytes and judged.
    nonisolated(unsafe) static var profiles: [MeterProfile] = {
        ["eastron-sdm630", "carlo-gavazzi-em24", "carlo-gavazzi-em340", "schneider-iem3000", "schneider-pm5100", "generic"]
            .compactMap { try? MeterProfiles.load($0).get() }
    }()

    static func registers(_ data: [UInt8]) {
        var regs: [UInt16] = []
        var i = 0
        while i + 1 < data.count { regs.append(UInt16(data[i]) << 8 | UInt16(data[i + 1])); i += 2 }
        for p in profiles {
            var values: [Quantity: Double] = [:]
            for r in p.registers {
                let off = Int(r.address) % max(1, regs.count)
                let slice = Array(regs.dropFirst(off).prefix(r.codec.registerCount))
                if let v = try? r.codec.decode(slice) { values[r.quantity] = v }
            }
            var judge = QualityJudge(QualityRules(ctRatingA: 600))
            _ = judge.judge(values: values, raw: regs, atNs: 0)
        }
    }

    /// An HTTP request head and every OSCP body type.
    static func oscp(_ data: [UInt8]) {
        _ = parseHead(String(decoding: data, as: UTF8.self))
        if case .success(let m) = decodeOSCP(OSCPWire.Register.self, from: data) { _ = m.validate() }
        if case .success(let m) = decodeOSCP(OSCPWire.Handshake.self, from: data) { _ = m.validate() }
        if case .success(let m) = decodeOSCP(OSCPWire.HandshakeAcknowledgement.self, from: data) { _ = m.validate() }
        if case .success(let m) = decodeOSCP(OSCPWire.Heartbeat.self, from: data) { _ = m.validate() }
        if case .success(let m) = decodeOSCP(OSCPWire.UpdateGroupCapacityForecast.self, from: data) { _ = m.validate() }
        if case .success(let m) = decodeOSCP(OSCPWire.UpdateGroupMeasurements.self, from: data) { _ = m.validate() }
        if case .success(let m) = decodeOSCP(OSCPWire.GroupCapacityComplianceError.self, from: data) { _ = m.validate() }
        _ = RFC3339.parse(String(decoding: data, as: UTF8.self))
    }

    /// A ring file's bytes (a power cut, a bad flash block, a hostile file): recovery and reading return
    /// only records whose CRC checks, in sequence order, and never crash.
    static func ring(_ data: [UInt8]) {
        let path = "/tmp/lmc-fuzz-ring-\(getpid())"
        // A valid header (so the slots are reached) followed by the fuzz bytes as slots, unless the input
        // asks for its own header (first byte odd).
        var file: [UInt8]
        if let first = data.first, first & 1 == 1 {
            file = data
        } else {
            unlink(path)
            if let r = try? RingFile(path: path, ringName: "samples", boxID: "fuzz", recordSize: 64, capacity: 16) {
                _ = r
            }
            file = Array(readAll(path).prefix(RingFile.headerSize)) + Array(data.dropFirst())
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        _ = file.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if let reader = try? RingReader(path: path) {
            var last: UInt64 = 0
            _ = reader.forEach { rec in
                precondition(rec.seq > last, "ring reader returned sequence \(rec.seq) after \(last)")
                last = rec.seq
                _ = SampleRecord.decode(rec.payload)
                _ = HalfHourRecord.decode(rec.payload)
                _ = EventRecord.decodePayload(rec.payload)
            }
            reader.release()
        }
        // Recovery as the writer does it (may move a bad header aside).
        _ = try? RingFile(path: path, ringName: "samples", boxID: "fuzz", recordSize: 64, capacity: 16)
        unlink(path)
        for f in (try? listDirectory("/tmp")) ?? [] where f.hasPrefix("lmc-fuzz-ring-\(getpid()).corrupt") { unlink("/tmp/" + f) }
    }

    /// The DNO's SSH account: whatever arrives, only plain allowed words pass.
    static func ssh(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if case .success(let words) = LogAccess.check(text) {
            let bad = Set("';|&$`<>\\\"(){}*?!~\n\t/")
            precondition(!words.joined().contains { bad.contains($0) }, "ssh-command let through \(words)")
            precondition(["info", "export", "audit", "plot"].contains(words[0]), "ssh-command let through \(words)")
        }
    }

    /// A control-socket request: only well-formed commands with finite, bounded values pass, and what
    /// passes reads back the same.
    static func control(_ data: [UInt8]) {
        guard case .success(let r) = ControlRequest.parse(String(decoding: data, as: UTF8.self)) else { return }
        if case .overrideSet(_, let kw, let s) = r {
            precondition(kw.isFinite && kw >= 0 && kw <= ControlRequest.maxOverrideKW, "override kW \(kw) let through")
            precondition(s.isFinite && s > 0 && s <= ControlRequest.maxOverrideSeconds, "override of \(s) s let through")
        }
        guard case .success(let back) = ControlRequest.parse(r.line), back == r else { preconditionFailure("\(r.line) does not read back") }
    }

    /// Bytes from a Modbus TCP client to the upstream server: framed (in arbitrary pieces), parsed and
    /// answered on the upstream map's layout. Every reply is a well-formed PDU of at most 253 bytes,
    /// and nothing outside the writable registers changes unless the request's written range says so.
    /// The DNP3 outstation: the bytes as a TCP stream (link frames, transport segments, fragments) in
    /// pieces of 1–17 bytes, and as one application fragment. Never a crash; a response is one
    /// fragment within the limit, answering with the request's sequence; the stream parser's buffer
    /// stays bounded.
    static func dnp3(_ data: [UInt8]) {
        let clock = OutstationClock(utcMs: 1_700_000_000_000, monoMs: 1_000)
        var o = Outstation()
        var v = PointValues(map: .standard)
        for i in v.analogs.indices { v.analogs[i] = Double(i) * 1000.5 }
        o.update(v, clock: clock)
        for i in v.analogs.indices { v.analogs[i] = Double(i) * -7000 }
        for i in v.binaries.indices { v.binaries[i] = i % 2 == 0 }
        o.update(v, clock: clock)
        func check(_ fragment: [UInt8], _ out: Outstation.Output) {
            guard let r = out.response else { return }
            precondition(r.count >= 4 && r.count <= o.config.maxFragment, "response of \(r.count) bytes")
            precondition(r[1] == FunctionCode.response.rawValue, "response function \(r[1])")
            precondition(r[0] & 0x0F == fragment[0] & 0x0F, "response sequence differs from the request's")
        }
        var parser = LinkStreamParser()
        var transport = TransportReassembler()
        var rest = data[...]
        while !rest.isEmpty {
            let piece = rest.prefix(Int(rest.first! % 17) + 1)
            rest = rest.dropFirst(piece.count)
            for f in parser.feed(piece) {
                precondition((try? LinkFrame.decode(f.encode())) == f, "a decoded frame does not survive encoding")
                if let fragment = transport.receive(f.userData) { check(fragment, o.handle(fragment, source: f.source, clock: clock)) }
                // Unsolicited work between requests: one fragment within the limit, function 130, UNS and CON set.
                if let u = o.pollUnsolicited(clock: OutstationClock(utcMs: clock.utcMs, monoMs: clock.monoMs + UInt64(piece.count) * 1_000)) {
                    precondition(u.count >= 4 && u.count <= o.config.maxFragment && u[1] == FunctionCode.unsolicitedResponse.rawValue && u[0] & 0x30 == 0x30,
                                 "unsolicited response \(u.prefix(4))")
                }
            }
        }
        if !data.isEmpty { check(data, o.handle(data, source: 1, clock: clock)) }
    }

    static func mbserver(_ data: [UInt8]) {
        var framer = MBAPFramer()
        var image = RegisterImage(.init(coils: 0..<16, discreteInputs: 0..<16, holding: 0..<1101, input: 0..<16))
        var rest = data[...]
        while !rest.isEmpty {
            let piece = rest.prefix(Int(rest.first! % 17) + 1)
            rest = rest.dropFirst(piece.count)
            guard let frames = try? framer.push(piece) else { return }
            precondition(framer.pending.count < 260, "framer holds \(framer.pending.count) bytes")
            for f in frames {
                let parsed = RegisterImage.parse(f.pdu)
                let before = image
                let reply = image.respond(to: f.pdu)
                precondition(!reply.isEmpty && reply.count <= 253, "reply of \(reply.count) bytes")
                // The function echoed, or with the exception bit (for codes of 128 and up both are the same byte).
                precondition(reply[0] == (f.pdu.first ?? 0) || reply[0] == (f.pdu.first ?? 0) | 0x80, "reply to another function")
                if reply[0] & 0x80 != 0 || { if case .request(let fn, _, _, _) = parsed { return [1, 2, 3, 4].contains(fn) } else { return true } }() {
                    precondition(image == before, "a read or a refused request changed the image")
                } else if case .request(23, let a, let n, _) = parsed {
                    for i in image.holding.indices where i < Int(a) || i >= Int(a) + n {
                        precondition(image.holding[i] == before.holding[i], "function 23 wrote \(i) outside \(a)+\(n)")
                    }
                }
                _ = MBAPFramer.reply(to: f, pdu: reply)
            }
        }
    }

    /// An HTTP response as the OSCP client reads it from a Flexibility Provider: the head and its
    /// Content-Length (negative, huge, repeated, with junk) never trap; a body is taken only when whole.
    static func oscpClient(_ data: [UInt8]) {
        _ = HTTPResponseParser.parse(data, maxHead: 8 * 1024, maxBody: 64 * 1024)
    }

    /// --from/--to/--day: a date never crashes and, when accepted, formats back to itself.
    static func time(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let t = LogAccess.parseUTC(text) {
            precondition(t >= 0, "\(text) parsed to \(t)")
            precondition(!UInt64(t).multipliedReportingOverflow(by: 1_000_000_000).overflow, "\(text) overflows nanoseconds")
        }
    }
}

func readAll(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "r") else { return [] }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func listDirectory(_ path: String) throws -> [String] {
    guard let d = opendir(path) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        // d_name is as long as the entry, not sizeof(dirent): read it as a C string in place.
        let name = UnsafeRawPointer(e).advanced(by: MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(to: CChar.self)
        names.append(String(cString: name))
    }
    return names
}
