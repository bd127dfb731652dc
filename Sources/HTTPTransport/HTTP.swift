import LMCPlatform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The little HTTP/1.1 the OSCP endpoint needs: JSON POSTs with a Content-Length, one request per
/// connection, TLS through OpenSSL. No chunked bodies, no keep-alive, small limits — a substation box
/// talks to one CPMS, not the internet (docs/oscp.md says why not SwiftNIO).
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed, for a caller that acts on it (a 401 is `.status(401)`, not a substring).
    public enum Kind: Sendable, Equatable {
        /// Resolving, the socket, connecting, listening.
        case connect
        /// The deadline for the whole exchange passed.
        case timeout
        /// A TLS context, handshake or certificate.
        case tls
        /// poll, read or write failed, or the peer closed the connection early.
        case io
        /// What the peer sent is not HTTP as we accept it.
        case malformed
        /// A header or body beyond the limits.
        case tooLarge
        /// The peer answered with this status (a caller's judgement: OSCP takes non-2xx as failure).
        case status(Int)
        /// Our side: a URL, a file or an option.
        case config
    }
    public var kind: Kind
    public var description: String
    public init(_ kind: Kind, _ d: String) { self.kind = kind; description = d }
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
        // No spaces, controls or CR/LF anywhere: the URL goes into a request line and a Host header.
        guard text.utf8.count <= 2048, text.utf8.allSatisfy({ $0 > 32 && $0 != 127 }) else { return nil }
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

/// A connected socket, plain or TLS, non-blocking, with one deadline for the whole exchange: every
/// read, write and TLS handshake step waits in poll() for at most what is left of it, so a peer that
/// drips bytes cannot stretch an exchange beyond the deadline (per-read timeouts would let it).
final class Connection {
    let fd: Int32
    var ssl: OpaquePointer?
    let deadlineNs: UInt64
    private(set) var buffer: [UInt8] = []
    /// The seam's fault hook (a plan in test builds).
    let faults: FaultHook

    init(fd: Int32, deadlineNs: UInt64, faults: FaultHook = .current) {
        self.fd = fd
        self.deadlineNs = deadlineNs
        self.faults = faults
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        if let ssl { TLSSeam.close(ssl) }
        Sys.close(fd)
    }

    /// Waits until the socket is ready for `events`, or throws when the deadline has passed.
    private func wait(_ events: Int16) throws(HTTPError) {
        let now = monotonicNanoseconds()
        guard now < deadlineNs else { throw HTTPError(.timeout, "timed out (deadline for the whole exchange passed)") }
        var p = pollfd(fd: fd, events: events, revents: 0)
        let ms = Int32(clamping: (deadlineNs - now) / 1_000_000 + 1)
        let r = NetSeam.poll(faults, &p, ms)
        if r < 0 && errno != EINTR { throw HTTPError(.io, "poll failed: \(String(cString: strerror(errno)))") }
    }

    /// The TLS handshake, within the deadline.
    func handshake(_ ssl: OpaquePointer) throws(HTTPError) {
        self.ssl = ssl
        while true {
            let rc = NetSeam.tlsHandshake(faults, ssl)
            if rc == 1 { return }
            switch TLSSeam.errorCode(ssl, rc) {
            case TLSSeam.wantRead: try wait(Int16(POLLIN))
            case TLSSeam.wantWrite: try wait(Int16(POLLOUT))
            default: throw HTTPError(.tls, "TLS handshake: \(TLSSeam.lastError())")
            }
        }
    }

    func send(_ bytes: [UInt8]) throws(HTTPError) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { p in
                ssl.map { TLSSeam.write($0, p.baseAddress!, p.count) } ?? NetSeam.send(faults, fd, p.baseAddress, p.count)
            }
            if n > 0 { off += n; continue }
            if let ssl {
                switch TLSSeam.errorCode(ssl, Int32(n)) {
                case TLSSeam.wantRead: try wait(Int16(POLLIN)); continue
                case TLSSeam.wantWrite: try wait(Int16(POLLOUT)); continue
                default: throw HTTPError(.tls, "write failed: \(TLSSeam.lastError())")
                }
            }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { try wait(Int16(POLLOUT)); continue }
            throw HTTPError(.io, "write failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads more into the buffer; false at end of stream.
    func fill() throws(HTTPError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = chunk.withUnsafeMutableBytes { p in
                ssl.map { TLSSeam.read($0, p.baseAddress!, p.count) } ?? NetSeam.recv(faults, fd, p.baseAddress, p.count)
            }
            if n > 0 {
                buffer += chunk[0..<n]
                return true
            }
            if let ssl {
                switch TLSSeam.errorCode(ssl, Int32(n)) {
                case TLSSeam.wantRead: try wait(Int16(POLLIN)); continue
                case TLSSeam.wantWrite: try wait(Int16(POLLOUT)); continue
                case TLSSeam.zeroReturn: return false
                case TLSSeam.syscall where errno == 0: return false
                default: throw HTTPError(.tls, "read failed: \(TLSSeam.lastError())")
                }
            }
            if n == 0 { return false }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { try wait(Int16(POLLIN)); continue }
            throw HTTPError(.io, "read failed: \(String(cString: strerror(errno)))")
        }
    }

    /// The head (up to the blank line), at most `limit` bytes; nil if the stream ended first.
    func readHead(limit: Int) throws(HTTPError) -> String? {
        while true {
            if let end = findCRLFCRLF(buffer, limit: limit) {
                let head = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                return head
            }
            if buffer.count > limit { throw HTTPError(.tooLarge, "header larger than \(limit) bytes") }
            if try !fill() {
                if buffer.isEmpty { return nil }
                throw HTTPError(.io, "connection closed inside the header")
            }
        }
    }

    func readBody(count: Int) throws(HTTPError) -> [UInt8] {
        precondition(count >= 0)
        while buffer.count < count {
            if try !fill() { throw HTTPError(.io, "connection closed after \(buffer.count) of \(count) body bytes") }
        }
        let body = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return body
    }
}

/// The index of the first CR LF CR LF within the first `limit + 4` bytes.
func findCRLFCRLF(_ b: [UInt8], limit: Int = .max) -> Int? {
    let n = min(b.count, limit == .max ? b.count : limit + 4)
    guard n >= 4 else { return nil }
    for i in 0...(n - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    return nil
}

/// A Content-Length value: digits only (no sign, no spaces inside), at most 18 of them — anything else
/// is not a length. Pure; fuzzed through ``HTTPResponseParser``.
public func parseContentLength(_ text: String) -> Int? {
    let u = Array(text.utf8)
    guard !u.isEmpty, u.count <= 18, u.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
    return Int(text)
}

/// Bytes a header value may hold: visible ASCII, space, tab and UTF-8 (obs-text). No CR, LF, NUL or other
/// control characters (response splitting, terminal escapes).
public func isCleanHeaderValue<S: Sequence>(_ bytes: S) -> Bool where S.Element == UInt8 {
    bytes.allSatisfy { $0 == 9 || ($0 >= 32 && $0 != 127) }
}

/// An HTTP/1.x response as the OSCP client reads it, as pure logic over the bytes received so far.
/// A negative, signed, huge, repeated-and-different or non-numeric Content-Length, chunked encoding,
/// a control character in the head or a malformed status line is an error — never a trap.
public enum HTTPResponseParser {
    public enum Outcome: Equatable {
        case needMore
        case complete(HTTPResponse)
    }

    public static func parse(_ b: [UInt8], maxHead: Int, maxBody: Int, atEOF: Bool = false) -> Result<Outcome, HTTPError> {
        guard let end = findCRLFCRLF(b, limit: maxHead) else {
            if b.count > maxHead + 3 { return .failure(HTTPError(.tooLarge, "response header larger than \(maxHead) bytes")) }
            return atEOF ? .failure(HTTPError(.io, b.isEmpty ? "connection closed without a response" : "connection closed inside the response header"))
                         : .success(.needMore)
        }
        let headBytes = b[0..<end]
        // Lines split on CR LF only; a bare CR or LF, or any other control character, is refused.
        var lines: [ArraySlice<UInt8>] = []
        var start = headBytes.startIndex, i = headBytes.startIndex
        while i < headBytes.endIndex {
            if headBytes[i] == 13 && i + 1 < headBytes.endIndex && headBytes[i + 1] == 10 {
                lines.append(headBytes[start..<i]); i += 2; start = i
            } else { i += 1 }
        }
        lines.append(headBytes[start..<headBytes.endIndex])
        for l in lines where !isCleanHeaderValue(l) { return .failure(HTTPError(.malformed, "control character in the response header")) }
        let statusLine = String(decoding: lines[0], as: UTF8.self)
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", parts[1].utf8.count == 3,
              parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let status = Int(parts[1]), (100...599).contains(status) else {
            return .failure(HTTPError(.malformed, "malformed status line"))
        }
        var headers: [(String, String)] = []
        var length: Int?
        for l in lines.dropFirst() {
            let line = String(decoding: l, as: UTF8.self)
            guard let c = line.firstIndex(of: ":") else { return .failure(HTTPError(.malformed, "malformed response header line")) }
            let name = String(line[..<c])
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else { return .failure(HTTPError(.malformed, "malformed response header name")) }
            let value = line[line.index(after: c)...].trimmingSpaces()
            switch name.lowercased() {
            case "content-length":
                guard let n = parseContentLength(value) else { return .failure(HTTPError(.malformed, "Content-Length '\(value.prefix(32))' is not a length")) }
                if let l = length, l != n { return .failure(HTTPError(.malformed, "two different Content-Length headers")) }
                guard n <= maxBody else { return .failure(HTTPError(.tooLarge, "response body of \(n) bytes is larger than \(maxBody)")) }
                length = n
            case "transfer-encoding":
                return .failure(HTTPError(.malformed, "Transfer-Encoding is not supported; a Content-Length is expected"))
            default: break
            }
            headers.append((name, value))
        }
        let rest = b[(end + 4)...]
        if status == 204 || status == 304 || status < 200 {
            return .success(.complete(HTTPResponse(status: status, headers: headers)))
        }
        if let length {
            if rest.count >= length { return .success(.complete(HTTPResponse(status: status, headers: headers, body: Array(rest.prefix(length))))) }
            return atEOF ? .failure(HTTPError(.io, "connection closed after \(rest.count) of \(length) body bytes")) : .success(.needMore)
        }
        if rest.count > maxBody { return .failure(HTTPError(.tooLarge, "response body larger than \(maxBody) bytes")) }
        return atEOF ? .success(.complete(HTTPResponse(status: status, headers: headers, body: Array(rest)))) : .success(.needMore)
    }

    static func isTokenByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || Array("!#$%&'*+-.^_`|~".utf8).contains(c)
    }
}

/// Parses a request head: "POST /path HTTP/1.1" and headers. A control character anywhere (bare CR or
/// LF, NUL, escapes) makes it malformed.
public func parseHead(_ head: String) -> (String, String, [String: String])? {
    var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
    guard !lines.isEmpty, lines.allSatisfy({ isCleanHeaderValue($0.utf8) }) else { return nil }
    let first = lines.removeFirst().split(separator: " ")
    guard first.count == 3, first[2].hasPrefix("HTTP/1.") else { return nil }
    var headers: [String: String] = [:]
    for l in lines {
        guard let colon = l.firstIndex(of: ":") else { return nil }
        let name = l[..<colon].trimmingSpaces().lowercased()
        guard !name.isEmpty, name.utf8.allSatisfy(HTTPResponseParser.isTokenByte) else { return nil }
        let value = l[l.index(after: colon)...].trimmingSpaces()
        // A repeated Content-Length with another value is request smuggling: refused.
        if name == "content-length", let old = headers[name], old != value { return nil }
        headers[name] = value
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

/// Compares two secrets in time that depends only on their lengths, not on where they differ.
public func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
    return diff == 0
}

/// A server-side TLS session handed from the accept thread to the connection's thread (which owns it:
/// the Connection frees it).
private struct TLSSession: @unchecked Sendable { let ssl: OpaquePointer }

/// Serves each connection on its own thread, at most `maxConnections` at once (more are accepted and
/// closed at once), each with one deadline for the whole request — TLS handshake, head and body — so a
/// client that drips bytes, before TLS or the token check, holds only its own connection and only
/// until its deadline. Limits: 8 KiB of header, `maxBody` of body.
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
    public let port: Int
    private let listenFD: Int32
    private let loop = LoopThread()
    private struct TLS: @unchecked Sendable { let ctx: OpaquePointer }
    private let tls: TLS?
    public let maxBody: Int
    public let maxConnections: Int
    public let requestDeadlineSeconds: Double
    private final class Shared: Sendable {
        let active = Atomic<Int>(0)
        let counters = Mutex(Stats())
        let stopped = Atomic(false)
    }
    private let shared = Shared()

    /// Connections refused at the cap and those cut at their deadline.
    public struct Stats: Sendable, Equatable {
        public var served = 0, refused = 0, timedOut = 0
    }
    public var stats: Stats { shared.counters.withLock { $0 } }
    public var activeConnections: Int { shared.active.load(ordering: .relaxed) }

    /// - Parameters: `certificate`/`key` (PEM files) turn TLS on; `clientCA` (PEM) also requires and
    ///   verifies a client certificate (mutual TLS).
    public init(host: String, port: Int, certificate: String? = nil, key: String? = nil, clientCA: String? = nil, maxBody: Int = 65_536,
                maxConnections: Int = 8, requestDeadlineSeconds: Double = 10, handler: @escaping Handler) throws(HTTPError) {
        var ctx: OpaquePointer?
        if let certificate, let key { ctx = try TLSSeam.serverContext(certificate: certificate, key: key, clientCA: clientCA) }
        tls = ctx.map { TLS(ctx: $0) }
        self.maxBody = maxBody
        self.maxConnections = maxConnections
        self.requestDeadlineSeconds = requestDeadlineSeconds
        let fd = socket(AF_INET, Sys.sockStream | Sys.sockCloexec, 0)
        guard fd >= 0 else {
            if let ctx { TLSSeam.freeContext(ctx) }
            throw HTTPError(.connect, "socket: \(String(cString: strerror(errno)))")
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(clamping: port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            Sys.close(fd)
            if let ctx { TLSSeam.freeContext(ctx) }
            throw HTTPError(.connect, "listen address '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 16) == 0 else {
            let e = String(cString: strerror(errno))
            Sys.close(fd)
            if let ctx { TLSSeam.freeContext(ctx) }
            throw HTTPError(.connect, "cannot listen on \(host):\(port): \(e)")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
        listenFD = fd
        let tlsCtx = tls
        let shared = shared
        let faults = FaultHook.current   // a test's plan reaches every connection's thread
        loop.start { [loop, maxBody, maxConnections, requestDeadlineSeconds] in
            while !loop.isStopping {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard NetSeam.poll(faults, &p, 200) > 0 else { continue }
                var peer = sockaddr_in()
                var plen = socklen_t(MemoryLayout<sockaddr_in>.size)
                let c = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { NetSeam.accept(faults, fd, $0, &plen) } }
                guard c >= 0 else { continue }
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                guard shared.active.load(ordering: .relaxed) < maxConnections else {
                    shared.counters.withLock { $0.refused += 1 }
                    Sys.close(c)
                    continue
                }
                var ip = [CChar](repeating: 0, count: 64)
                inet_ntop(AF_INET, &peer.sin_addr, &ip, 64)
                let peerText = String(decoding: ip.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                let deadline = monotonicNanoseconds() + UInt64(requestDeadlineSeconds * 1e9)
                // The TLS session is made here, on the accept thread (no I/O): it holds its own reference
                // to the context, so stop() may free the context while connections are still in flight.
                var session: TLSSession?
                if let tlsCtx {
                    guard let ssl = TLSSeam.newSession(tlsCtx.ctx, fd: c, server: true) else { Sys.close(c); continue }
                    session = TLSSession(ssl: ssl)
                }
                shared.active.add(1, ordering: .relaxed)
                let started = Sys.startDetachedThread { [session] in
                    let conn = Connection(fd: c, deadlineNs: deadline, faults: faults)
                    let timedOut = Self.serve(conn, peer: peerText, tls: session?.ssl, maxBody: maxBody, handler: handler)
                    shared.counters.withLock { $0.served += 1; if timedOut { $0.timedOut += 1 } }
                    shared.active.subtract(1, ordering: .relaxed)
                }
                if !started {
                    shared.active.subtract(1, ordering: .relaxed)
                    if let session { TLSSeam.close(session.ssl) }
                    Sys.close(c)
                }
            }
        }
    }

    deinit { stop() }

    /// Stops accepting and returns at once (at most one 200 ms poll of the accept thread): it never waits
    /// on a peer — whoever calls it (a reload from the control loop) is not held by a dripping client.
    /// Connections in flight end on their own at their deadline; their TLS sessions keep the context
    /// alive until then (OpenSSL counts the references).
    public func stop() {
        guard !shared.stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.stop()
        Sys.close(listenFD)
        if let tls { TLSSeam.freeContext(tls.ctx) }
    }

    /// Serves one request; returns true when the deadline cut it.
    @discardableResult
    static func serve(_ conn: Connection, peer: String, tls ssl: OpaquePointer?, maxBody: Int, handler: Handler) -> Bool {
        func reply(_ r: HTTPResponse) {
            var head = "HTTP/1.1 \(r.status) \(HTTPResponse.reason(r.status))\r\n"
            // Our own headers never carry CR or LF (a message echoing a peer's text could).
            for (k, v) in r.headers where isCleanHeaderValue(k.utf8) && isCleanHeaderValue(v.utf8) { head += "\(k): \(v)\r\n" }
            head += "Content-Length: \(r.body.count)\r\nConnection: close\r\n\r\n"
            try? conn.send(Array(head.utf8) + r.body)
        }
        func refuse(_ status: Int, _ message: String) { reply(HTTPResponse(status: status, headers: [("X-Error-Message", message)])) }
        func timedOut(_ e: HTTPError) -> Bool { e.description.hasPrefix("timed out") }
        if let ssl {
            do { try conn.handshake(ssl) } catch { return timedOut(error) }
        }
        let head: String?
        do { head = try conn.readHead(limit: 8_192) } catch {
            refuse(error.description.hasPrefix("header larger") ? 431 : 408, error.description)
            return timedOut(error)
        }
        guard let head else { return false }
        guard let (method, path, headers) = parseHead(head) else { refuse(400, "malformed request line or header"); return false }
        if headers["transfer-encoding"] != nil { refuse(411, "chunked bodies are not accepted; send Content-Length"); return false }
        var body: [UInt8] = []
        if let cl = headers["content-length"] {
            guard let n = parseContentLength(cl) else { refuse(400, "Content-Length is not a number"); return false }
            guard n <= maxBody else { refuse(413, "body of \(n) bytes is larger than \(maxBody)"); return false }
            do { body = try conn.readBody(count: n) } catch { refuse(408, error.description); return timedOut(error) }
        } else if method == "POST" || method == "PUT" {
            refuse(411, "Content-Length is required"); return false
        }
        reply(handler(HTTPRequest(method: method, path: path, headers: headers, body: body, peer: peer)))
        return false
    }
}

/// One POST per connection, with one deadline for all of it (connect, TLS, request, response); TLS
/// verified against a CA file.
public final class HTTPClient: Sendable {
    private struct TLS: @unchecked Sendable { let ctx: OpaquePointer }
    private let tls: TLS?
    public let timeoutSeconds: Double
    public static let maxResponseHead = 16_384, maxResponseBody = 65_536

    public init(caFile: String? = nil, useTLS: Bool, timeoutSeconds: Double = 5) throws(HTTPError) {
        tls = useTLS ? TLS(ctx: try TLSSeam.clientContext(caFile: caFile)) : nil
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { if let tls { TLSSeam.freeContext(tls.ctx) } }

    public func post(_ url: HTTPURL, headers: [(String, String)], body: [UInt8]) throws(HTTPError) -> HTTPResponse {
        guard url.tls == (tls != nil) else { throw HTTPError(.config, "\(url): \(url.tls ? "https needs TLS configured" : "plain http on a TLS client")") }
        // Nothing a peer gave us (a token, a base URL from its register) may split our request.
        for (k, v) in headers where !isCleanHeaderValue(k.utf8) || !isCleanHeaderValue(v.utf8) {
            throw HTTPError(.config, "\(url): header \(k.filter { $0.isLetter || $0 == "-" }) holds a control character; not sent")
        }
        let deadline = monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        let fd = try Self.connect(host: url.host, port: url.port, deadlineNs: deadline)
        let conn = Connection(fd: fd, deadlineNs: deadline)
        if let tls {
            guard let ssl = TLSSeam.newSession(tls.ctx, fd: fd, server: false) else { throw HTTPError(.tls, "TLS: \(TLSSeam.lastError())") }
            conn.ssl = ssl
            try TLSSeam.verifyPeer(ssl, host: url.host)
            do { try conn.handshake(ssl) } catch { throw HTTPError(.tls, "TLS handshake with \(url.host): \(error)") }
        }
        var head = "POST \(url.path) HTTP/1.1\r\nHost: \(url.host):\(url.port)\r\nContent-Type: application/json\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try conn.send(Array(head.utf8) + body)
        while true {
            let more = try conn.fill()
            switch HTTPResponseParser.parse(conn.buffer, maxHead: Self.maxResponseHead, maxBody: Self.maxResponseBody, atEOF: !more) {
            case .failure(let e): throw HTTPError(e.kind, "\(url): \(e)")
            case .success(.complete(let r)): return r
            case .success(.needMore): continue
            }
        }
    }

    static func connect(host: String, port: Int, deadlineNs: UInt64) throws(HTTPError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Sys.sockStream
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &res) == 0, let ai = res else { throw HTTPError(.connect, "cannot resolve \(host)") }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, Sys.sockStream | Sys.sockCloexec | Sys.sockNonblock, 0)
        guard fd >= 0 else { throw HTTPError(.connect, "socket: \(String(cString: strerror(errno)))") }
        let faults = FaultHook.current
        if NetSeam.connect(faults, fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) != 0 && errno != EINPROGRESS {
            let e = String(cString: strerror(errno)); Sys.close(fd)
            throw HTTPError(.connect, "cannot connect to \(host):\(port): \(e)")
        }
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        let now = monotonicNanoseconds()
        let ms = now < deadlineNs ? Int32(clamping: (deadlineNs - now) / 1_000_000) : 0
        guard NetSeam.poll(faults, &p, ms) == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, err == 0 else {
            let e = err != 0 ? String(cString: strerror(err)) : "timed out"
            Sys.close(fd)
            throw HTTPError(.connect, "cannot connect to \(host):\(port): \(e)")
        }
        return fd
    }
}
