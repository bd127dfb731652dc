import LMCPlatform
import ModbusBridge

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The little HTTP/1.1 the OSCP endpoint needs: JSON POSTs with a Content-Length, one request per
/// connection, TLS through OpenSSL. No chunked bodies, no keep-alive, small limits — a substation box
/// talks to one CPMS, not the internet (docs/oscp.md says why not SwiftNIO).
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    public var peer: String
}

public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status; self.headers = headers; self.body = body
    }
    public static func == (a: HTTPResponse, b: HTTPResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.headers.map { "\($0.0):\($0.1)" } == b.headers.map { "\($0.0):\($0.1)" }
    }
    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"; case 204: "No Content"; case 400: "Bad Request"; case 401: "Unauthorized"; case 404: "Not Found"
        case 405: "Method Not Allowed"; case 408: "Request Timeout"; case 411: "Length Required"; case 413: "Content Too Large"
        case 415: "Unsupported Media Type"; case 431: "Request Header Fields Too Large"; case 500: "Internal Server Error"
        default: "Status"
        }
    }
}

/// Where to send: scheme, host, port and path of an `http://` or `https://` URL.
public struct HTTPURL: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    public var path: String
    public var description: String { "\(tls ? "https" : "http")://\(host):\(port)\(path)" }

    public init?(_ text: String) {
        let rest: Substring
        if text.hasPrefix("https://") { tls = true; rest = text.dropFirst(8) } else if text.hasPrefix("http://") { tls = false; rest = text.dropFirst(7) } else { return nil }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":"), let p = Int(authority[authority.index(after: colon)...]), (1...65_535).contains(p) {
            host = String(authority[..<colon]); port = p
        } else {
            guard !authority.contains(":") else { return nil }
            host = String(authority); port = tls ? 443 : 80
        }
        guard !host.isEmpty else { return nil }
    }

    /// This URL with `suffix` appended to its path ("…/2.0" + "/heartbeat").
    public func appending(_ suffix: String) -> HTTPURL {
        var u = self
        u.path = (path.hasSuffix("/") ? String(path.dropLast()) : path) + suffix
        return u
    }
}

/// A connected socket, plain or TLS, with timeouts on every read and write.
final class Connection {
    let fd: Int32
    var ssl: OpaquePointer?
    private var buffer: [UInt8] = []

    init(fd: Int32, timeoutSeconds: Double) {
        self.fd = fd
        var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - timeoutSeconds.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        if let ssl { TLSSeam.close(ssl) }
        Sys.close(fd)
    }

    func send(_ bytes: [UInt8]) throws(HTTPError) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { p in
                ssl.map { TLSSeam.write($0, p.baseAddress!, p.count) } ?? Sys.send(fd, p.baseAddress, p.count, Int32(MSG_NOSIGNAL))
            }
            guard n > 0 else { throw HTTPError("write failed: \(ssl == nil ? String(cString: strerror(errno)) : TLSSeam.lastError())") }
            off += n
        }
    }

    /// Reads more into the buffer; false at end of stream.
    private func fill() throws(HTTPError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let n = chunk.withUnsafeMutableBytes { p in
            ssl.map { TLSSeam.read($0, p.baseAddress!, p.count) } ?? Sys.recv(fd, p.baseAddress, p.count, 0)
        }
        if n == 0 { return false }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw HTTPError("timed out waiting for data") }
            throw HTTPError("read failed: \(ssl == nil ? String(cString: strerror(errno)) : TLSSeam.lastError())")
        }
        buffer += chunk[0..<n]
        return true
    }

    /// The head (up to the blank line), at most `limit` bytes; nil if the stream ended first.
    func readHead(limit: Int) throws(HTTPError) -> String? {
        while true {
            if let end = findCRLFCRLF() {
                let head = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                return head
            }
            if buffer.count > limit { throw HTTPError("header larger than \(limit) bytes") }
            if try !fill() {
                if buffer.isEmpty { return nil }
                throw HTTPError("connection closed inside the header")
            }
        }
    }

    func readBody(count: Int) throws(HTTPError) -> [UInt8] {
        while buffer.count < count {
            if try !fill() { throw HTTPError("connection closed after \(buffer.count) of \(count) body bytes") }
        }
        let body = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return body
    }

    func readToEnd(limit: Int) throws(HTTPError) -> [UInt8] {
        while buffer.count <= limit, try fill() {}
        return Array(buffer.prefix(limit))
    }

    private func findCRLFCRLF() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
        return nil
    }
}

/// Parses a request head: "POST /path HTTP/1.1" and headers.
public func parseHead(_ head: String) -> (String, String, [String: String])? {
    var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
    guard !lines.isEmpty else { return nil }
    let first = lines.removeFirst().split(separator: " ")
    guard first.count == 3, first[2].hasPrefix("HTTP/1.") else { return nil }
    var headers: [String: String] = [:]
    for l in lines {
        guard let colon = l.firstIndex(of: ":") else { return nil }
        let name = l[..<colon].trimmingSpaces().lowercased()
        guard !name.isEmpty, !name.contains(" ") else { return nil }
        headers[name] = l[l.index(after: colon)...].trimmingSpaces()
    }
    return (String(first[0]), String(first[1]), headers)
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

/// Serves requests one connection at a time on its own thread (OSCP traffic is a few requests a
/// minute). Limits: 8 KiB of header, `maxBody` of body, 5 s to send a request.
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
    public let port: Int
    private let listenFD: Int32
    private let loop = LoopThread()
    private struct TLS: @unchecked Sendable { let ctx: OpaquePointer }
    private let tls: TLS?
    public let maxBody: Int

    /// - Parameters: `certificate`/`key` (PEM files) turn TLS on.
    public init(host: String, port: Int, certificate: String? = nil, key: String? = nil, maxBody: Int = 65_536,
                handler: @escaping Handler) throws(HTTPError) {
        var ctx: OpaquePointer?
        if let certificate, let key { ctx = try TLSSeam.serverContext(certificate: certificate, key: key) }
        tls = ctx.map { TLS(ctx: $0) }
        self.maxBody = maxBody
        let fd = socket(AF_INET, Sys.sockStream | Sys.sockCloexec, 0)
        guard fd >= 0 else { throw HTTPError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            Sys.close(fd)
            throw HTTPError("listen address '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 16) == 0 else {
            let e = String(cString: strerror(errno))
            Sys.close(fd)
            throw HTTPError("cannot listen on \(host):\(port): \(e)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
        listenFD = fd
        let tlsCtx = tls
        loop.start { [loop, maxBody] in
            while !loop.isStopping {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, 200) > 0 else { continue }
                var peer = sockaddr_in()
                var plen = socklen_t(MemoryLayout<sockaddr_in>.size)
                let c = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Sys.accept(fd, $0, &plen) } }
                guard c >= 0 else { continue }
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                var ip = [CChar](repeating: 0, count: 64)
                inet_ntop(AF_INET, &peer.sin_addr, &ip, 64)
                let conn = Connection(fd: c, timeoutSeconds: 5)
                Self.serve(conn, peer: String(decoding: ip.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                           tls: tlsCtx?.ctx, maxBody: maxBody, handler: handler)
            }
        }
    }

    deinit { stop() }

    public func stop() {
        loop.stop()
        Sys.close(listenFD)
        if let tls { TLSSeam.freeContext(tls.ctx) }
    }

    static func serve(_ conn: Connection, peer: String, tls: OpaquePointer?, maxBody: Int, handler: Handler) {
        func reply(_ r: HTTPResponse) {
            var head = "HTTP/1.1 \(r.status) \(HTTPResponse.reason(r.status))\r\n"
            for (k, v) in r.headers { head += "\(k): \(v)\r\n" }
            head += "Content-Length: \(r.body.count)\r\nConnection: close\r\n\r\n"
            try? conn.send(Array(head.utf8) + r.body)
        }
        func refuse(_ status: Int, _ message: String) { reply(HTTPResponse(status: status, headers: [("X-Error-Message", message)])) }
        if let tls {
            do { conn.ssl = try TLSSeam.accept(tls, fd: conn.fd) } catch { return }
        }
        let head: String?
        do { head = try conn.readHead(limit: 8_192) } catch {
            refuse(error.description.hasPrefix("header larger") ? 431 : 408, error.description)
            return
        }
        guard let head else { return }
        guard let (method, path, headers) = parseHead(head) else { refuse(400, "malformed request line or header"); return }
        if headers["transfer-encoding"] != nil { refuse(411, "chunked bodies are not accepted; send Content-Length"); return }
        var body: [UInt8] = []
        if let cl = headers["content-length"] {
            guard let n = Int(cl), n >= 0 else { refuse(400, "Content-Length '\(cl)' is not a number"); return }
            guard n <= maxBody else { refuse(413, "body of \(n) bytes is larger than \(maxBody)"); return }
            do { body = try conn.readBody(count: n) } catch { refuse(408, error.description); return }
        } else if method == "POST" || method == "PUT" {
            refuse(411, "Content-Length is required"); return
        }
        reply(handler(HTTPRequest(method: method, path: path, headers: headers, body: body, peer: peer)))
    }
}

/// One POST per connection, with a timeout; TLS verified against a CA file.
public final class HTTPClient: Sendable {
    private struct TLS: @unchecked Sendable { let ctx: OpaquePointer }
    private let tls: TLS?
    public let timeoutSeconds: Double

    public init(caFile: String? = nil, useTLS: Bool, timeoutSeconds: Double = 5) throws(HTTPError) {
        tls = useTLS ? TLS(ctx: try TLSSeam.clientContext(caFile: caFile)) : nil
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { if let tls { TLSSeam.freeContext(tls.ctx) } }

    public func post(_ url: HTTPURL, headers: [(String, String)], body: [UInt8]) throws(HTTPError) -> HTTPResponse {
        guard url.tls == (tls != nil) else { throw HTTPError("\(url): \(url.tls ? "https needs TLS configured" : "plain http on a TLS client")") }
        let fd = try Self.connect(host: url.host, port: url.port, timeoutSeconds: timeoutSeconds)
        let conn = Connection(fd: fd, timeoutSeconds: timeoutSeconds)
        if let tls { conn.ssl = try TLSSeam.connect(tls.ctx, fd: fd, host: url.host) }
        var head = "POST \(url.path) HTTP/1.1\r\nHost: \(url.host):\(url.port)\r\nContent-Type: application/json\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try conn.send(Array(head.utf8) + body)
        guard let rhead = try conn.readHead(limit: 16_384) else { throw HTTPError("\(url): connection closed without a response") }
        var lines = rhead.split(separator: "\r\n").map(String.init)
        let status = lines.isEmpty ? nil : lines.removeFirst().split(separator: " ").dropFirst().first.flatMap { Int($0) }
        guard let status else { throw HTTPError("\(url): malformed status line") }
        var hs: [(String, String)] = []
        for l in lines {
            if let c = l.firstIndex(of: ":") { hs.append((String(l[..<c]), l[l.index(after: c)...].trimmingSpaces())) }
        }
        let length = hs.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) }
        let rbody: [UInt8]
        if let length { rbody = try conn.readBody(count: min(length, 65_536)) } else { rbody = try conn.readToEnd(limit: 65_536) }
        return HTTPResponse(status: status, headers: hs, body: rbody)
    }

    static func connect(host: String, port: Int, timeoutSeconds: Double) throws(HTTPError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Sys.sockStream
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else { throw HTTPError("cannot resolve \(host)") }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Sys.sockStream | Sys.sockCloexec | Sys.sockNonblock, 0)
        guard fd >= 0 else { throw HTTPError("socket: \(String(cString: strerror(errno)))") }
        if Sys.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
            let e = String(cString: strerror(errno)); Sys.close(fd)
            throw HTTPError("cannot connect to \(host):\(port): \(e)")
        }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard poll(&p, 1, Int32(timeoutSeconds * 1000)) == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, err == 0 else {
            let e = err != 0 ? String(cString: strerror(err)) : "timed out after \(timeoutSeconds) s"
            Sys.close(fd)
            throw HTTPError("cannot connect to \(host):\(port): \(e)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }
}
