import ArgumentParser
import DNP3
import LMCPlatform

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The DNP3 outstation over loopback TCP, from a raw master in this process: an integrity poll's
/// round trip (request frame out to the last response frame in), and an event's unsolicited latency
/// (publish to the unsolicited frame in).
struct DNP3Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dnp3", abstract: "DNP3 integrity poll round trip and unsolicited event latency.")
    @Option(help: "Integrity polls.") var polls: Int = 2_000
    @Option(help: "Unsolicited events.") var events: Int = 200

    /// A blocking loopback client that reads link frames.
    final class Master {
        let fd: Int32
        var parser = LinkStreamParser()
        var pending: [LinkFrame] = []
        init(port: Int) throws {
            fd = socket(AF_INET, Sys.sockStream, 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            inet_pton(AF_INET, "127.0.0.1", &a.sin_addr)
            let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard rc == 0 else { throw ExitCode(1) }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        func send(_ app: [UInt8], tseq: UInt8) {
            let f = LinkFrame(fromMaster: true, primary: true, function: 4, destination: 1024, source: 1, userData: [0xC0 | (tseq & 0x3F)] + app).encode()
            _ = f.withUnsafeBytes { Sys.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        /// The next frame whose transport header has FIN (the end of a fragment).
        func nextFragmentEnd() -> LinkFrame {
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                while !pending.isEmpty {
                    let f = pending.removeFirst()
                    if let h = f.userData.first, h & 0x80 != 0 { return f }
                }
                let n = buf.withUnsafeMutableBytes { Sys.recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { fatalError("the outstation closed the connection") }
                pending += parser.feed(buf[0..<n])
            }
        }
        deinit { Sys.close(fd) }
    }

    func run() throws {
        var v = PointValues(map: .standard)
        for i in v.analogs.indices { v.analogs[i] = Double(i) * 1000 }
        for i in v.binaries.indices { v.binaries[i] = false }
        for i in v.counters.indices { v.counters[i] = UInt32(i) }
        let server = try DNP3Server(.init(host: "127.0.0.1", port: 0, outstation: .init(localAddress: 1024, masterAddresses: [1], unsolicited: true)))
        defer { server.stop() }
        server.publish(v)
        let m = try Master(port: server.port)
        var tseq: UInt8 = 0
        func request(_ app: [UInt8]) { m.send(app, tseq: tseq); tseq &+= 1 }
        // The null unsolicited response, confirmed; unsolicited enabled for class 1.
        let null = m.nextFragmentEnd()
        request([0xD0 | (null.userData[1] & 0x0F), 0x00])
        request([0xC1, 0x14, 0x3C, 0x02, 0x06])
        _ = m.nextFragmentEnd()

        var rtt: [Double] = []
        for k in 0..<polls {
            let seq = UInt8(k & 0x0F)
            let t0 = nowSeconds()
            request([0xC0 | seq, 0x01, 0x3C, 0x01, 0x06])
            _ = m.nextFragmentEnd()
            rtt.append(nowSeconds() - t0)
        }
        var lat: [Double] = []
        for k in 0..<events {
            v.binaries[0] = k % 2 == 0
            let t0 = nowSeconds()
            server.publish(v)
            let f = m.nextFragmentEnd()
            lat.append(nowSeconds() - t0)
            // Confirm it (UNS, its sequence).
            request([0xD0 | (f.userData[1] & 0x0F), 0x00])
        }
        rtt.sort(); lat.sort()
        func p(_ a: [Double], _ q: Double) -> Double { a[min(a.count - 1, Int(Double(a.count) * q))] }
        row("DNP3 integrity poll (class 0, 82 points, loopback)", "p50 \(fmt(p(rtt, 0.5) * 1e6)) µs, p99 \(fmt(p(rtt, 0.99) * 1e6)) µs", "", "",
            "\(polls) READ g60v1 from a raw master in this process, request sent to the response's last frame in")
        row("DNP3 unsolicited event latency (loopback)", "p50 \(fmt(p(lat, 0.5) * 1e3)) ms, p99 \(fmt(p(lat, 0.99) * 1e3)) ms", "", "",
            "\(events) binary changes published as the control loop does, to the unsolicited frame in; each confirmed")
    }
}
