import LMCPlatform
import Supervision
import FailSafe
import ArgumentParser
import LMCConfig
import LMCWiring
import ModbusBridge
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The daemon's Unix socket (`/run/lmc/control.sock`): one request line, one answer, then close.
/// Reading (`status`, `status-json`, `alarms`) needs group `lmc` (or `lmc-admin`, or root); changing
/// (`override …`, `reset-lockout`, `test-trip …`) needs group `lmc-admin` or root. The peer's user
/// comes from the kernel (SO_PEERCRED), not from what the client says, and is logged with the command.
///
/// Hostile or stuck local clients (issue 17): each client is served on its own thread, at most
/// ``maxClients`` at once (more are closed at once); a peer that may not even read is answered and closed
/// before anything is read from it; each client has ``clientDeadlineSeconds`` for its whole exchange;
/// refusals are rate-limited in the events ring (``RefusalLimiter``).
final class ControlSocket: Sendable {
    let path: String
    private let fd: Int32
    private let loop = LoopThread()
    static let maxClients = 64
    /// Connections one non-root user may hold at once: a user who hogs the socket locks out only itself.
    static let maxClientsPerUser = 8
    static let clientDeadlineSeconds = 2.0
    private final class Shared: Sendable {
        let active = Atomic<Int>(0)
        let refused = Atomic<Int>(0)
        let perUser = Mutex<[UInt32: Int]>([:])
        let limiter = Mutex(RefusalLimiter())
    }
    private let shared = Shared()

    init(path: String, board: StatusBoard, commands: CommandQueue, events: EventInbox? = nil) throws {
        self.path = path
        unlink(path)
        let fd = socket(AF_UNIX, Sys.sockStream | Sys.sockCloexec, 0)
        self.fd = fd
        guard fd >= 0 else { throw SocketError(message: "socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SocketError(message: "socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0, listen(fd, 128) == 0 else {
            throw SocketError(message: "cannot listen on \(path): \(String(cString: strerror(errno))) (does its directory exist and is it writable?)")
        }
        // rw for the owner and the lmc group; the group check below is the second gate.
        if let g = getgrnam("lmc") { _ = chown(path, getuid(), g.pointee.gr_gid) }
        chmod(path, 0o660)
        let listener = fd
        let loop = self.loop
        let shared = shared
        loop.start {
            while !loop.isStopping {
                var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 100) <= 0 { continue }
                let c = accept(listener, nil, nil)
                if c < 0 { continue }
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                let uid = Peer.uid(of: c)
                let admitted = shared.active.load(ordering: .relaxed) < Self.maxClients && shared.perUser.withLock { m in
                    guard uid == 0 || m[uid, default: 0] < Self.maxClientsPerUser else { return false }
                    m[uid, default: 0] += 1
                    return true
                }
                guard admitted else {
                    shared.refused.add(1, ordering: .relaxed)
                    close(c)
                    continue
                }
                shared.active.add(1, ordering: .relaxed)
                let release: @Sendable () -> Void = {
                    shared.perUser.withLock { m in if uid != 0 { m[uid] = (m[uid] ?? 1) > 1 ? m[uid]! - 1 : nil } }
                    shared.active.subtract(1, ordering: .relaxed)
                }
                let started = Sys.startDetachedThread {
                    defer { close(c); release() }
                    Self.serve(c, board: board, commands: commands, events: events, limiter: shared)
                }
                if !started { close(c); release() }
            }
        }
    }

    /// One client: who it is first, then its request within the deadline, then the answer.
    private static func serve(_ c: Int32, board: StatusBoard, commands: CommandQueue, events: EventInbox?, limiter: Shared) {
        let deadline = monotonicNanoseconds() + UInt64(clientDeadlineSeconds * 1e9)
        _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
        let peer = Peer(socket: c)
        func answer(_ text: String) { writeAll(c, Array(text.utf8), deadlineNs: deadline) }
        func refused(_ what: String) {
            let now = monotonicNanoseconds()
            let (log, suppressed) = limiter.limiter.withLock { $0.admit(uid: peer.uid, nowNs: now) }
            if let suppressed, suppressed > 0 {
                events?.post(.command, "\(suppressed) more refusals from user \(peer.name) (uid \(peer.uid)) were not logged one by one")
            }
            if log {
                FieldController.log("control: \(what)")
                events?.post(.command, what)
            }
        }
        // Not even allowed to read: answered and closed before a byte of its request is read.
        guard peer.may(read: true) else {
            refused("refused a connection from user \(peer.name) (uid \(peer.uid)): not in group lmc")
            answer("error: permission denied: user \(peer.name) is not in group lmc\n")
            return
        }
        guard let request = readLine(c, max: 512, deadlineNs: deadline) else {
            answer("error: no request within \(Int(clientDeadlineSeconds)) s\n")
            return
        }
        switch ControlRequest.parse(request) {
        case .failure(let why):
            answer("error: \(why)\n")
        case .success(let req) where !req.changes:
            if req == .status {
                answer(board.render())
            } else if req == .statusJSON {
                answer(board.json() + "\n")
            } else {
                let alarms = board.current?.alarms ?? []
                answer(alarms.isEmpty ? "no alarms\n" : alarms.map { terminalSafe($0) }.joined(separator: "\n") + "\n")
            }
        case .success(let req):
            let line = terminalSafe(request.split(separator: " ").joined(separator: " "))
            if !peer.may(read: false) {
                refused("refused '\(line)' from user \(peer.name) (uid \(peer.uid)): not in group lmc-admin")
                answer("error: permission denied: user \(peer.name) is not in group lmc-admin\n")
            } else {
                FieldController.log("control: '\(line)' by user \(peer.name) (uid \(peer.uid))")
                answer(commands.submit(req, line: line, user: peer.name) + "\n")
            }
        }
    }

    /// Connections closed at once because ``maxClients`` were being served.
    var refusedConnections: Int { shared.refused.load(ordering: .relaxed) }

    func stop() {
        loop.stop()
        close(fd)
        unlink(path)
        // Clients in flight end at their deadline; they hold only their own descriptors.
    }

    /// Sends one request to the daemon and returns the answer; gives up after `timeoutSeconds` (the
    /// daemon answers a status at once and a command within 3 s).
    static func request(_ line: String, path: String, timeoutSeconds: Double = 10) throws -> String {
        let fd = socket(AF_UNIX, Sys.sockStream, 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else {
            throw SocketError(message: "cannot reach the daemon at \(path): \(String(cString: strerror(errno))) (is lmc running? is the user in group lmc?)")
        }
        let deadline = monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        writeAll(fd, Array((line + "\n").utf8), deadlineNs: deadline)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n > 0 { out += buf[0..<n]; continue }
            if n == 0 { break }
            guard errno == EAGAIN || errno == EINTR, waitReady(fd, Int16(POLLIN), deadlineNs: deadline) else {
                if monotonicNanoseconds() >= deadline {
                    throw SocketError(message: "the daemon at \(path) did not answer within \(Int(timeoutSeconds)) s")
                }
                break
            }
        }
        // Closed without a word: the daemon was at its client limit (or stopping).
        guard !out.isEmpty else { throw SocketError(message: "the daemon at \(path) closed the connection without an answer (busy or stopping); try again") }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Waits in poll() until `fd` is ready or the deadline passes; false on the deadline.
func waitReady(_ fd: Int32, _ events: Int16, deadlineNs: UInt64) -> Bool {
    let now = monotonicNanoseconds()
    guard now < deadlineNs else { return false }
    var p = pollfd(fd: fd, events: events, revents: 0)
    return poll(&p, 1, Int32(clamping: (deadlineNs - now) / 1_000_000 + 1)) > 0
}

/// Writes everything to a non-blocking descriptor, or as much as the deadline allows.
func writeAll(_ fd: Int32, _ bytes: [UInt8], deadlineNs: UInt64) {
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { Sys.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n > 0 { off += n; continue }
        if n < 0 && (errno == EAGAIN || errno == EINTR) && waitReady(fd, Int16(POLLOUT), deadlineNs: deadlineNs) { continue }
        return
    }
}

/// One line (up to `max` bytes or the first newline), or nil if none came before the deadline or EOF.
func readLine(_ fd: Int32, max: Int, deadlineNs: UInt64) -> String? {
    var got: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: max)
    while got.count < max && !got.contains(10) {
        let n = read(fd, &buf, max - got.count)
        if n > 0 { got += buf[0..<n]; continue }
        if n == 0 { break }
        if (errno == EAGAIN || errno == EINTR) && waitReady(fd, Int16(POLLIN), deadlineNs: deadlineNs) { continue }
        return nil
    }
    if got.isEmpty { return nil }
    let line = got.prefix { $0 != 10 }
    return String(decoding: line, as: UTF8.self).trimmingCharacters()
}

/// Text that reached us from a peer (a CPMS's message, a charger's error) made safe for a terminal:
/// control characters (ESC sequences, CR, BEL, C1) become "?".
func terminalSafe(_ s: String) -> String {
    var out = ""
    for ch in s.unicodeScalars {
        let v = ch.value
        out.unicodeScalars.append(v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) ? "?" : ch)
    }
    return out
}

/// Who is on the other end of a Unix socket, from the kernel.
struct Peer {
    var uid: uid_t = 0
    var gid: gid_t = 0
    var name = "?"

    /// The peer's uid alone (uid_t.max if the kernel does not say).
    static func uid(of socket: Int32) -> UInt32 {
        struct Credentials { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }
        var cred = Credentials()
        var len = socklen_t(MemoryLayout<Credentials>.size)
        return getsockopt(socket, SOL_SOCKET, 17, &cred, &len) == 0 ? cred.uid : UInt32.max
    }

    init(socket: Int32) {
        // struct ucred needs _GNU_SOURCE in glibc's headers; its layout is fixed by the kernel ABI.
        struct Credentials { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }
        let soPeerCred: Int32 = 17  // SO_PEERCRED on Linux
        var cred = Credentials()
        var len = socklen_t(MemoryLayout<Credentials>.size)
        if getsockopt(socket, SOL_SOCKET, soPeerCred, &cred, &len) == 0 {
            uid = cred.uid
            gid = cred.gid
        } else {
            uid = uid_t.max
        }
        if let pw = getpwuid(uid) { name = String(cString: pw.pointee.pw_name) } else { name = "uid \(uid)" }
    }

    /// Reading: root, or a member of lmc or lmc-admin. Changing: root, or a member of lmc-admin.
    func may(read: Bool) -> Bool {
        if uid == 0 { return true }
        if isMember("lmc-admin") { return true }
        return read && isMember("lmc")
    }

    private func isMember(_ group: String) -> Bool {
        guard let g = getgrnam(group) else { return false }
        let gid = g.pointee.gr_gid
        if self.gid == gid { return true }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        guard let pw = getpwuid(uid), getgrouplist(pw.pointee.pw_name, self.gid, &groups, &count) >= 0 else { return false }
        return groups.prefix(Int(count)).contains(gid)
    }
}

/// Changing commands, handed from the socket thread to the control loop and answered by it.
final class CommandQueue: Sendable {
    /// The parsed request, and its line as the operator sent it (for the log).
    private struct Item { var id: Int; var request: ControlRequest; var line: String; var user: String; var answer: String? }
    private let items = Mutex<[Item]>([])
    private let counter = Atomic(0)

    /// Blocks the socket thread until the loop has handled the command (at most 3 s).
    func submit(_ request: ControlRequest, line: String, user: String) -> String {
        let id = counter.add(1, ordering: .relaxed).newValue
        items.withLock { $0.append(Item(id: id, request: request, line: line, user: user, answer: nil)) }
        for _ in 0..<300 {
            if let a = items.withLock({ list -> String? in
                guard let i = list.firstIndex(where: { $0.id == id }), let a = list[i].answer else { return nil }
                list.remove(at: i)
                return a
            }) { return a }
            usleep(10_000)
        }
        items.withLock { $0.removeAll { $0.id == id } }
        return "error: the control loop did not answer within 3 s"
    }

    /// Taken by the loop into its snapshot: the commands not yet answered, oldest first.
    func pending() -> [(id: Int, request: ControlRequest, line: String, user: String)] {
        items.withLock { $0.filter { $0.answer == nil }.map { ($0.id, $0.request, $0.line, $0.user) } }
    }

    /// The loop's answer to a command it took.
    func answer(_ id: Int, _ text: String) {
        items.withLock { list in
            if let i = list.firstIndex(where: { $0.id == id }) { list[i].answer = text }
        }
    }

    /// Called by the loop: handles every pending command.
    func drain(_ handle: (ControlRequest, _ line: String, _ user: String) -> String) {
        let pending = items.withLock { $0.filter { $0.answer == nil } }
        for p in pending {
            let a = handle(p.request, p.line, p.user)
            items.withLock { list in
                if let i = list.firstIndex(where: { $0.id == p.id }) { list[i].answer = a }
            }
        }
    }
}


struct SocketError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension StringProtocol {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the controller: meters → headroom → fail-safe → chargers, every control period.",
        discussion: """
        Started by systemd (Type=notify: READY=1 once running, WATCHDOG=1 after each cycle completed on
        time). SIGTERM stops cleanly — the chargers keep the fallback lmc programmed into them. SIGHUP
        reloads the config; an invalid new config is refused and the running one kept, with the reasons
        on stderr (the journal).
        Example: lmc run --config /etc/lmc/lmc.toml
        """
    )

    @Option(help: ArgumentHelp("Config file.", valueName: "file"))
    var config: String = "/etc/lmc/lmc.toml"

    @Option(help: ArgumentHelp("Control socket (default: [box] socket in the config).", valueName: "path"))
    var socket: String?

    func run() throws {
        let text = try readFile(config, what: "config")
        let c: Configuration
        switch Configuration.parse(text) {
        case .failure(let e):
            for i in e.issues { printError("\(config): \(i)") }
            printError("\(config): refusing to start (\(e.issues.count) problem\(e.issues.count == 1 ? "" : "s")); run lmc config check")
            throw ExitCode(2)
        case .success(let x): c = x
        }
        unblockStopSignals()
        signal(SIGTERM) { _ in stopSignal.store(1, ordering: .relaxed) }
        signal(SIGINT) { _ in stopSignal.store(1, ordering: .relaxed) }
        signal(SIGHUP) { _ in reloadSignal.store(1, ordering: .relaxed) }
        signal(SIGPIPE, SIG_IGN)
        let runtime = try Runtime(config: c, path: config)
        let control = try ControlSocket(path: socket ?? c.runtime.socketPath, board: runtime.status, commands: runtime.commands, events: runtime.inbox)
        defer { control.stop() }
        runtime.run()
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the box is doing and why: mode, measurement points, set points, relays, alarms.",
        discussion: "Fits an 80×24 serial console. Example: lmc status"
    )
    @OptionGroup var socket: SocketOption
    @Flag(help: "Print JSON for scripts.")
    var json = false

    func run() throws {
        do { print(try ControlSocket.request(json ? "status-json" : "status", path: socket.socket), terminator: "") } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "lmc status, refreshed every second (Ctrl-C to leave).",
        discussion: "Clears the screen with a plain ANSI sequence; works on a dumb 80×24 serial terminal."
    )
    @OptionGroup var socket: SocketOption
    @Option(help: "Refresh interval in seconds.")
    var interval: Double = 1

    func run() throws {
        unblockStopSignals()
        while true {
            let text = (try? ControlSocket.request("status", path: socket.socket)) ?? "lmc: daemon not reachable at \(socket.socket)\n"
            let screen = Array(("\u{1B}[H\u{1B}[2J" + text).utf8)
            // The terminal went away (serial cable pulled, SSH dropped): leave instead of polling forever.
            if screen.withUnsafeBytes({ Sys.write(1, $0.baseAddress, $0.count) }) < 0 { throw ExitCode(1) }
            usleep(UInt32(max(0.1, interval) * 1_000_000))
        }
    }
}

/// A parent may start us with signals blocked (Foundation's Process does, and a tmux server passes its
/// mask on): unblock the ones that stop or reload us, so SIGTERM, Ctrl-C and a hang-up work.
func unblockStopSignals() {
    var wanted = sigset_t()
    sigemptyset(&wanted)
    for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&wanted, s) }
    pthread_sigmask(SIG_UNBLOCK, &wanted, nil)
}
