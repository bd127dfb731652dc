import LMCPlatform
import Supervision
import FailSafe
import ArgumentParser
import LMCConfig
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
final class ControlSocket: Sendable {
    let path: String
    private let fd: Int32
    private let loop = LoopThread()

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
        guard rc == 0, listen(fd, 8) == 0 else {
            throw SocketError(message: "cannot listen on \(path): \(String(cString: strerror(errno))) (does its directory exist and is it writable?)")
        }
        // rw for the owner and the lmc group; the group check below is the second gate.
        if let g = getgrnam("lmc") { _ = chown(path, getuid(), g.pointee.gr_gid) }
        chmod(path, 0o660)
        let listener = fd
        let loop = self.loop
        loop.start {
            while !loop.isStopping {
                var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 100) <= 0 { continue }
                let c = accept(listener, nil, nil)
                if c < 0 { continue }
                var tv = timeval(tv_sec: 1, tv_usec: 0)
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var buf = [UInt8](repeating: 0, count: 512)
                let n = read(c, &buf, 512)
                let request = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters() : ""
                let peer = Peer(socket: c)
                let answer: String
                switch ControlRequest.parse(request) {
                case .failure(let why):
                    answer = "error: \(why)\n"
                case .success(let req) where !req.changes:
                    if !peer.may(read: true) {
                        answer = "error: permission denied: user \(peer.name) is not in group lmc\n"
                    } else if req == .status {
                        answer = board.render()
                    } else if req == .statusJSON {
                        answer = board.json() + "\n"
                    } else {
                        let alarms = board.current?.alarms ?? []
                        answer = alarms.isEmpty ? "no alarms\n" : alarms.joined(separator: "\n") + "\n"
                    }
                case .success(let req):
                    if !peer.may(read: false) {
                        log("control: refused '\(request)' from user \(peer.name) (uid \(peer.uid)): not in group lmc-admin")
                        events?.post(.command, "refused '\(request)' from user \(peer.name) (uid \(peer.uid)): not in group lmc-admin")
                        answer = "error: permission denied: user \(peer.name) is not in group lmc-admin\n"
                    } else {
                        log("control: '\(request)' by user \(peer.name) (uid \(peer.uid))")
                        answer = commands.submit(req, line: request.split(separator: " ").joined(separator: " "), user: peer.name) + "\n"
                    }
                }
                var a = answer
                a.withUTF8 { b in _ = write(c, b.baseAddress, b.count) }
                close(c)
            }
        }
    }

    func stop() {
        loop.stop()
        close(fd)
        unlink(path)
    }

    /// Sends one request to the daemon and returns the answer.
    static func request(_ line: String, path: String) throws -> String {
        let fd = socket(AF_UNIX, Sys.sockStream, 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else {
            throw SocketError(message: "cannot reach the daemon at \(path): \(String(cString: strerror(errno))) (is lmc running? is the user in group lmc?)")
        }
        var l = line + "\n"
        l.withUTF8 { b in _ = write(fd, b.baseAddress, b.count) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Who is on the other end of a Unix socket, from the kernel.
struct Peer {
    var uid: uid_t = 0
    var gid: gid_t = 0
    var name = "?"

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
