import Foundation

/// Paths of the package, its Python venv and the built `lmc`.
public enum Repo {
    /// The package root, found from this file's path.
    public static let root: URL = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return u
    }()

    /// The Python with the pinned peers (make test sets LMC_PYTHON; else .venv/bin/python).
    public static var python: String {
        ProcessInfo.processInfo.environment["LMC_PYTHON"] ?? root.appendingPathComponent(".venv/bin/python").path
    }

    public static func peer(_ name: String) -> String { root.appendingPathComponent("Tests/peers/\(name)").path }

    /// The `lmc` built next to the test bundle.
    public static var lmc: String {
        let bundle = Bundle.main.bundleURL.deletingLastPathComponent()
        for candidate in [bundle.appendingPathComponent("lmc"), bundle.deletingLastPathComponent().appendingPathComponent("debug/lmc"),
                          root.appendingPathComponent(".build/debug/lmc")] where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        return root.appendingPathComponent(".build/debug/lmc").path
    }
}

public struct PeerError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A child process whose stdout is read line by line (for its READY line) and whose stdin, when
/// closed, tells a peer to stop.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSLock()
    private var outLines: [String] = []
    private var partial = ""
    private var errText = ""

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let (exe, args) = try ChildLifetime.bound(executable, arguments)
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = args
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.lock()
            self.partial += String(decoding: d, as: UTF8.self)
            while let nl = self.partial.firstIndex(of: "\n") {
                self.outLines.append(String(self.partial[..<nl]))
                self.partial = String(self.partial[self.partial.index(after: nl)...])
            }
            self.lock.unlock()
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self, !d.isEmpty else { return }
            self.lock.lock()
            self.errText += String(decoding: d, as: UTF8.self)
            self.lock.unlock()
        }
        try ChildLifetime.spawning { try process.run() }
    }

    public var lines: [String] { lock.lock(); defer { lock.unlock() }; return outLines }
    /// The command's name (the process runs it through setpriv).
    public var name: String { (process.arguments?.dropFirst(3).first).map { ($0 as NSString).lastPathComponent } ?? "child" }
    public var stderr: String { lock.lock(); defer { lock.unlock() }; return errText }

    /// Waits for a stdout line starting with `prefix`; returns it.
    public func waitForLine(prefix: String, timeout: TimeInterval = 20) throws -> String {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let l = lines.first(where: { $0.hasPrefix(prefix) }) { return l }
            if !process.isRunning {
                throw PeerError("\(name) exited (\(process.terminationStatus)) before '\(prefix)': \(stderr)")
            }
            usleep(20_000)
        }
        throw PeerError("no '\(prefix)' line within \(timeout) s; stderr: \(stderr)")
    }

    /// Writes one line to the child's stdin.
    public func send(_ line: String) {
        stdinPipe.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    /// Closes stdin, then terminates if still running.
    public func stop() {
        try? stdinPipe.fileHandleForWriting.close()
        let end = Date().addingTimeInterval(2)
        while process.isRunning && Date() < end { usleep(10_000) }
        if process.isRunning { terminate(); return }
        stopReadingAndCloseStdin()
    }

    /// Stops reading and closes its stdin.
    private func stopReadingAndCloseStdin() {
        stdoutPipe.fileHandleForReading.readabilityHandler = nil
        stderrPipe.fileHandleForReading.readabilityHandler = nil
        try? stdinPipe.fileHandleForWriting.close()
    }

    /// SIGTERM now, and wait.
    public func terminate() {
        // Signal and poll: Foundation's waitUntilExit can hang on Linux when the child is gone.
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let end = Date().addingTimeInterval(3)
        while process.isRunning && Date() < end { usleep(5_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        stopReadingAndCloseStdin()
    }

    deinit { if process.isRunning { process.terminate() } }
}

/// pymodbus serving values that Python's struct encoded (Tests/peers/modbus_peer.py).
public final class PyModbusPeer: @unchecked Sendable {
    public let child: ChildProcess
    public let port: Int

    /// A TCP peer on a free loopback port.
    public init(tcpSpec spec: String, units: [Int] = [1]) throws {
        child = try ChildProcess(Repo.python, [Repo.peer("modbus_peer.py"), "--tcp", "0", "--spec", spec] + units.flatMap { ["--unit", String($0)] })
        let ready = try child.waitForLine(prefix: "READY")
        port = Int(ready.split(separator: " ")[1])!
    }

    /// A TCP peer laying out SI `values` (JSON) by an lmc meter profile, encoded by Python's struct.
    public init(profile: String, values: String, jitter: Double = 0, logRequests: Bool = false) throws {
        child = try ChildProcess(Repo.python, [Repo.peer("modbus_peer.py"), "--tcp", "0", "--profile", profile, "--values", values,
                                               "--jitter", String(jitter)] + (logRequests ? ["--log-requests"] : []))
        let ready = try child.waitForLine(prefix: "READY")
        port = Int(ready.split(separator: " ")[1])!
    }

    /// An RTU peer on a serial device (one end of a socat pty pair).
    public init(rtuDevice: String, baud: Int = 9600, parity: String = "N", units: [Int] = [1], spec: String) throws {
        child = try ChildProcess(Repo.python, [Repo.peer("modbus_peer.py"), "--rtu", rtuDevice, "--baud", String(baud),
                                               "--parity", parity, "--spec", spec] + units.flatMap { ["--unit", String($0)] })
        _ = try child.waitForLine(prefix: "READY")
        port = 0
    }

    /// A live meter (profile mode) on a serial device, 8N1.
    public init(rtuDevice: String, baud: Int, profile: String, values: String, jitter: Double = 0) throws {
        child = try ChildProcess(Repo.python, [Repo.peer("modbus_peer.py"), "--rtu", rtuDevice, "--baud", String(baud), "--profile", profile,
                                               "--values", values, "--jitter", String(jitter)])
        _ = try child.waitForLine(prefix: "READY")
        port = 0
    }

    /// The requests the peer answered (with `logRequests`): unit, function, address, count.
    public var requests: [(unit: Int, function: Int, address: Int, count: Int)] {
        child.lines.filter { $0.hasPrefix("READ ") }.map { line in
            var f: [String: Int] = [:]
            for part in line.split(separator: " ").dropFirst(2) {
                let kv = part.split(separator: "=")
                if kv.count == 2 { f[String(kv[0])] = Int(kv[1]) }
            }
            return (f["unit"] ?? -1, f["fc"] ?? -1, f["addr"] ?? -1, f["count"] ?? -1)
        }
    }

    /// Live meter (profile mode): new values, or silence on/off.
    public func send(_ line: String) { child.send(line) }

    public func stop() { child.stop() }
    deinit { child.stop() }
}

/// A pymodbus charger that behaves like the real ones (Tests/peers/charger_peer.py).
public final class ChargerPeer: @unchecked Sendable {
    public let child: ChildProcess
    public let port: Int

    public init(profile: String, validity: Double, fallbackA: Double, refuseFC6OnLimit: Bool = false, clampA: Double? = nil) throws {
        var args = [Repo.peer("charger_peer.py"), "--profile", profile, "--validity", String(validity), "--fallback-a", String(fallbackA)]
        if refuseFC6OnLimit { args.append("--refuse-fc6-on-limit") }
        if let clampA { args += ["--clamp-a", String(clampA)] }
        child = try ChildProcess(Repo.python, args)
        port = Int(try child.waitForLine(prefix: "READY").split(separator: " ")[1])!
    }

    /// Every write the charger saw: (function, address, values).
    public var writes: [(function: Int, address: Int, values: [Int])] {
        child.lines.filter { $0.hasPrefix("WRITE ") }.map { line in
            let parts = line.split(separator: " ")
            let fc = Int(parts[2].dropFirst(3))!
            let addr = Int(parts[3].dropFirst(5))!
            let values = line[line.range(of: "values=[")!.upperBound...].dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            return (fc, addr, values)
        }
    }

    /// Every write so far, once one to `address` has been seen (stdout is read asynchronously: the
    /// log can trail the Modbus reply by a moment).
    public func writes(waitingFor address: Int, timeout: TimeInterval = 3) -> [(function: Int, address: Int, values: [Int])] {
        writes(until: { w in w.contains { $0.address == address } }, timeout: timeout)
    }

    /// Every write so far, once `condition` holds for them (or the timeout passes).
    public func writes(until condition: ([(function: Int, address: Int, values: [Int])]) -> Bool,
                       timeout: TimeInterval = 3) -> [(function: Int, address: Int, values: [Int])] {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let w = writes
            if condition(w) { return w }
            usleep(10_000)
        }
        return writes
    }

    /// The charger's state now: limit, safe current, timeout, applied current.
    public func state() throws -> [String: Any] {
        let before = child.lines.filter { $0.hasPrefix("STATE ") }.count
        child.send("state")
        let end = Date().addingTimeInterval(5)
        while Date() < end {
            let states = child.lines.filter { $0.hasPrefix("STATE ") }
            if states.count > before {
                return try jsonObject(states.last!.dropFirst(6))
            }
            usleep(10_000)
        }
        throw PeerError("charger peer did not report its state")
    }

    /// Forgets what was programmed without dropping connections (an RTU charger's reboot).
    public func forget() {
        let before = child.lines.filter { $0 == "FORGOTTEN" }.count
        child.send("forget")
        let end = Date().addingTimeInterval(5)
        while child.lines.filter({ $0 == "FORGOTTEN" }).count == before && Date() < end { usleep(10_000) }
    }

    public func reboot() throws {
        let before = child.lines.filter { $0 == "REBOOTED" }.count
        child.send("reboot")
        let end = Date().addingTimeInterval(5)
        while child.lines.filter({ $0 == "REBOOTED" }).count == before && Date() < end { usleep(10_000) }
    }

    public func stop() { child.stop() }
    deinit { child.stop() }
}

/// Two linked pseudo-terminals from socat: what one end writes, the other reads, with real tty
/// framing — an RS-485 bus in a box.
public final class PtyPair: @unchecked Sendable {
    public let a: String
    public let b: String
    private let child: ChildProcess
    /// socat's process id.
    public var pid: pid_t { child.process.processIdentifier }

    public convenience init() throws {
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try self.init(a: "/tmp/lmc-pty-\(tag)-a", b: "/tmp/lmc-pty-\(tag)-b")
    }

    /// A pair whose ends are symlinks at `a` and `b` (re-creating one is an adapter plugged back in).
    public init(a: String, b: String) throws {
        self.a = a
        self.b = b
        child = try ChildProcess("/usr/bin/socat", ["-d", "-d", "pty,raw,echo=0,link=\(a)", "pty,raw,echo=0,link=\(b)"])
        let end = Date().addingTimeInterval(10)
        while Date() < end {
            if FileManager.default.fileExists(atPath: a) && FileManager.default.fileExists(atPath: b) { return }
            usleep(20_000)
        }
        throw PeerError("socat did not create \(a) and \(b): \(child.stderr)")
    }

    public func close() {
        child.terminate()
        // socat removes its links on exit; wait so the paths can be reused at once.
        let end = Date().addingTimeInterval(2)
        while (FileManager.default.fileExists(atPath: a) || FileManager.default.fileExists(atPath: b)) && Date() < end { usleep(10_000) }
    }
    deinit { child.terminate() }
}

/// Runs a command to completion; returns status, stdout and stderr.
@discardableResult
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                timeout: TimeInterval = 60) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    let (exe, args) = try ChildLifetime.bound(executable, arguments)
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try ChildLifetime.spawning { try p.run() }
    let outData = LockedData(), errData = LockedData()
    let group = DispatchGroup()
    for (pipe, box) in [(out, outData), (err, errData)] {
        group.enter()
        DispatchQueue.global().async {
            box.set(pipe.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
    }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        _ = Glibc.kill(p.processIdentifier, SIGKILL)
        throw PeerError("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    // Our ends of the pipes now, not when Foundation lets go of the Process: left to it, they piled up
    // past 1024 descriptors in a test run, where libmodbus's select() aborts the test process (FD_SETSIZE).
    try? out.fileHandleForReading.close()
    try? err.fileHandleForReading.close()
    // Bounded too: a child that leaves a daemon behind holding Foundation's exit-watch socket
    // would otherwise hang the whole test run (a tmux server did, in CI).
    let end = Date().addingTimeInterval(10)
    while p.isRunning {
        if Date() > end {
            throw PeerError("\(executable) \(arguments.joined(separator: " ")) closed its output but did not exit within 10 s")
        }
        usleep(5_000)
    }
    return (p.terminationStatus, String(decoding: outData.get(), as: UTF8.self), String(decoding: errData.get(), as: UTF8.self))
}

/// Runs a command that leaves a daemon behind (`tmux new-session -d` starts a tmux server): spawned
/// with every descriptor above stderr closed, so the daemon holds none of ours, and with output to
/// /dev/null. Returns the exit status of the command itself.
@discardableResult
public func runDetached(_ executable: String, _ arguments: [String], timeout: TimeInterval = 10) throws -> Int32 {
    let child = try spawn(executable, arguments, stdoutFD: nil, quietStderr: true)
    let end = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while waitpid(child, &status, WNOHANG) == 0 {
        if Date() > end {
            _ = Glibc.kill(child, SIGKILL)
            _ = waitpid(child, &status, 0)
            throw PeerError("\(executable) \(arguments.joined(separator: " ")) did not exit within \(timeout) s")
        }
        usleep(5_000)
    }
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// posix_spawn as the tests start children that must not hold the runner's descriptors (a daemonising
/// tmux did) nor inherit a blocked signal mask (Dispatch's workers block most signals; a tmux server
/// started so could not be stopped): stdin /dev/null, stdout to `stdoutFD` or /dev/null, stderr to
/// /dev/null or inherited, every other descriptor closed, no signal blocked.
private func spawn(_ executable: String, _ arguments: [String], stdoutFD: Int32?, quietStderr: Bool) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let stdoutFD { posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1) } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    if quietStderr { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
    try closeFromThree(&actions)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attr, &none)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    let (exe, args) = try ChildLifetime.bound(executable, arguments)
    let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
    defer { for a in argv { free(a) } }
    var child: pid_t = 0
    let rc = ChildLifetime.spawning { posix_spawn(&child, exe, &actions, &attr, argv, environ) }
    guard rc == 0 else { throw PeerError("posix_spawn \(executable) failed: \(String(cString: strerror(rc)))") }
    return child
}

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+), which Swift's Glibc module does not export.
private func closeFromThree(_ actions: inout posix_spawn_file_actions_t) throws {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
        throw PeerError("this libc has no posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later needed)")
    }
    _ = unsafeBitCast(sym, to: CloseFrom.self)(&actions, 3)
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// A switch a test flips while a server's filter reads it from its own thread.
public final class DropSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public var on: Bool {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

/// A child started with posix_spawn, not Foundation's Process: for tests that start and SIGKILL
/// hundreds of children, where Foundation's child bookkeeping is not robust. Its stdout is a pipe read
/// on demand; `kill` sends SIGKILL and reaps it.
public final class SpawnedChild {
    public let pid: pid_t
    private let readFD: Int32
    private var buffer = ""

    public init(_ executable: String, _ arguments: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PeerError("pipe failed") }
        defer { close(fds[1]) }
        do { pid = try spawn(executable, arguments, stdoutFD: fds[1], quietStderr: false) } catch {
            close(fds[0])
            throw error
        }
        readFD = fds[0]
        _ = fcntl(readFD, F_SETFL, fcntl(readFD, F_GETFL) | O_NONBLOCK)
    }

    /// Everything the child has written so far, as lines.
    public func lines() -> [String] {
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(readFD, &buf, buf.count)
            if n <= 0 { break }
            buffer += String(decoding: buf[0..<n], as: UTF8.self)
        }
        return buffer.split(separator: "\n").map(String.init)
    }

    /// Waits for a line starting with `prefix`.
    public func waitForLine(prefix: String, timeout: TimeInterval = 10) throws -> String {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let l = lines().first(where: { $0.hasPrefix(prefix) }) { return l }
            usleep(2_000)
        }
        throw PeerError("no '\(prefix)' line within \(timeout) s")
    }

    /// SIGKILL, reap, and read what it wrote before dying.
    public func kill() -> [String] {
        _ = Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        let l = lines()
        close(readFD)
        return l
    }
}

/// The OSCP Flexibility Provider peer (Tests/peers/oscp_fp_peer.py): validates every body lmc sends
/// against the OSCP 2.0 schemas and reports each exchange as a JSON line.
public final class OSCPPeer: @unchecked Sendable {
    public let child: ChildProcess
    public let port: Int
    public let fpToken: String

    public init(initialToken: String, requireHeartbeatS: Int = 2, sendHeartbeatS: Double = 0.5, ackPath: String = "handshake_acknowledgment",
                tls: (cert: String, key: String, ca: String)? = nil) throws {
        var args = [Repo.peer("oscp_fp_peer.py"), "--initial-token", initialToken, "--require-heartbeat-s", String(requireHeartbeatS),
                    "--send-heartbeat-s", String(sendHeartbeatS), "--ack-path", ackPath]
        if let tls { args += ["--tls-cert", tls.cert, "--tls-key", tls.key, "--cafile", tls.ca] }
        child = try ChildProcess(Repo.python, args)
        let first = try child.waitForLine(prefix: "{\"listening\"")
        let o = try jsonObject(first)
        port = (o["listening"] as! NSNumber).intValue
        fpToken = o["fp_token"] as! String
    }

    /// Every JSON event the peer printed.
    public var events: [[String: Any]] {
        child.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
    /// Requests lmc made to the FP, optionally of one endpoint.
    public func received(_ path: String? = nil) -> [[String: Any]] {
        events.filter { $0["event"] as? String == "message" && (path == nil || $0["path"] as? String == path) }
    }
    /// Requests the FP made to lmc, with lmc's status.
    public func sent(_ path: String? = nil) -> [[String: Any]] {
        events.filter { $0["event"] as? String == "sent" && (path == nil || $0["path"] as? String == path) }
    }
    public func send(_ line: String) { child.send(line) }
    public func stop() { child.stop() }
}

/// A JSON object from a child's output; anything else is a thrown error naming the text (a test fails
/// cleanly instead of a forced cast trapping the whole test process).
public func jsonObject(_ text: some StringProtocol) throws -> [String: Any] {
    guard let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
        throw PeerError("not a JSON object: \(text.prefix(500))")
    }
    return o
}

/// Every child a test starts dies with the test process, however that process ends — a failed
/// `#require` is an ordinary end, but a trap (a failed precondition, a forced unwrap) or a SIGKILL from
/// CI's timeout is not, and then nothing in this process runs to stop its children. So the kernel does
/// it: each child is started through util-linux's `setpriv --pdeathsig KILL`, which sets
/// PR_SET_PDEATHSIG and then execs the command (same pid, so tests signal and reap it as before).
///
/// Linux sends that signal when the *thread* that started the child ends, not the process; Swift
/// Testing and Dispatch run tests on pool threads that come and go. So every spawn happens on one
/// thread that lives as long as the process (`spawning`), which also has no signal blocked: children
/// inherit the spawning thread's mask, and one started from a Dispatch worker could not be stopped
/// with SIGTERM.
///
/// Not covered: a daemon that forks away from its parent (the tmux server of the console test) —
/// PR_SET_PDEATHSIG is not inherited across fork. `make test` ends with scripts/check-leftovers.sh,
/// which fails the run if any process started from this tree outlived the suite.
public enum ChildLifetime {
    public static let setpriv = "/usr/bin/setpriv"

    /// The command line that runs `executable` bound to this process's life.
    public static func bound(_ executable: String, _ arguments: [String]) throws -> (String, [String]) {
        guard access(executable, X_OK) == 0 else {
            throw PeerError("cannot run \(executable): \(String(cString: strerror(errno)))")
        }
        guard access(setpriv, X_OK) == 0 else {
            throw PeerError("\(setpriv) is missing (Debian: util-linux); the tests need it so their children die with them")
        }
        return (setpriv, ["--pdeathsig", "KILL", "--", executable] + arguments)
    }

    /// Runs `body` (which starts a child) on the spawner thread and returns its result.
    public static func spawning<T>(_ body: () throws -> T) rethrows -> T {
        try SpawnerThread.instance.run(body)
    }
}

/// One thread, alive until the process exits, with no signal blocked, that runs spawn requests.
private final class SpawnerThread: @unchecked Sendable {
    static let instance = SpawnerThread()
    private let condition = NSCondition()
    private struct Job { var body: () -> Void; var done: DispatchSemaphore }
    private var jobs: [Job] = []
    private var thread: pthread_t?

    private init() {
        let started = DispatchSemaphore(value: 0)
        let t = Thread { [self] in
            var none = sigset_t()
            sigemptyset(&none)
            pthread_sigmask(SIG_SETMASK, &none, nil)
            condition.lock()
            thread = pthread_self()
            condition.unlock()
            started.signal()
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                var job: Job? = jobs.removeFirst()
                condition.unlock()
                let done = job!.done
                job!.body()
                job = nil   // released before the caller returns: its closure must not outlive the call
                done.signal()
            }
        }
        t.name = "lmc-test-spawner"
        t.start()
        started.wait()
    }

    func run<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        let onSpawner = thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false
        condition.unlock()
        if onSpawner { return try body() }
        return try withoutActuallyEscaping(body) { body in
            let box = ResultBox<T>()
            let done = DispatchSemaphore(value: 0)
            condition.lock()
            jobs.append(Job(body: { do { box.result = .success(try body()) } catch { box.result = .failure(error) } }, done: done))
            condition.signal()
            condition.unlock()
            done.wait()
            return try box.get()
        }
    }
}

private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
    /// rethrows-compatible: only a body that throws can have stored a failure.
    func get() throws -> T { try result!.get() }
}

/// The OSCP tokens as lmc takes them: a credentials file readable by root only (lmc.toml may not hold
/// them). Returns its path, for `credentials_file = "…"`; the same tokens give the same file.
public func oscpCredentialsFile(token: String, fpToken: String) throws -> String {
    var h: UInt64 = 1469598103934665603
    for b in (token + "\n" + fpToken).utf8 { h = (h ^ UInt64(b)) &* 1099511628211 }
    let path = "/tmp/lmc-oscp-credentials-\(getpid())-\(String(h, radix: 16))"
    let text = "token = \"\(token)\"\nfp_token = \"\(fpToken)\"\n"
    if (try? String(contentsOfFile: path, encoding: .utf8)) != text {
        unlink(path)
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw PeerError("cannot write \(path)")
        }
    }
    return path
}
