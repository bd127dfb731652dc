import Foundation
import LMCTestSupport
import Testing

/// Issue 17 item 8, against a real OpenSSH sshd: the DNO's `lmc-logs` account as the package ships it.
///
/// Each test starts a private `sshd -D` on a free loopback port with a temporary host key and the
/// package's own drop-in (systemd/sshd-lmc-logs.conf), changed in two paths only: the forced command runs
/// this build's `lmc` on a test ring directory, and the key file is the test's. The account is the
/// package's too: name `lmc-logs` and the shell systemd/lmc.sysusers gives it.
///
/// The box's user database is left alone: sshd runs in a private mount namespace (`unshare --mount`)
/// in which /etc/passwd and /etc/shadow are the system's with `lmc-logs` replaced by the test's entry,
/// and the test directory is bound at /mnt. That is also where the key file lives, so StrictModes
/// checks it as on a box: root-owned, 0644, every directory above it root-owned and not writable by
/// others (a mkdtemp directory under /tmp is refused by StrictModes because /tmp is 1777).
/// sshd is started through setpriv --pdeathsig like every child of the tests: it dies with the test.
@Suite(.serialized, .enabled(if: getuid() == 0, "runs sshd, which needs root"))
struct SSHLogAccount {
    /// A private sshd with the package's lmc-logs drop-in.
    final class PrivateSSHD {
        let dir: String
        let ring: String
        let port: Int
        let sshd: ChildProcess
        var dnoKey: String { dir + "/dno_key" }
        var otherKey: String { dir + "/other_key" }
        var config: String { dir + "/sshd_config" }

        init(keyFileMode: mode_t = 0o644) throws {
            guard access("/usr/sbin/sshd", X_OK) == 0, access("/usr/bin/ssh", X_OK) == 0 else {
                throw PeerError("/usr/sbin/sshd or /usr/bin/ssh is missing: make deps installs openssh-server and openssh-client")
            }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: "/mnt", isDirectory: &isDir), isDir.boolValue else {
                throw PeerError("/mnt is missing: the test binds its directory there in sshd's private mount namespace")
            }
            var template = Array("/tmp/lmc-sshd-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw PeerError("mkdtemp: \(errno)") }
            dir = String(cString: made)
            chmod(dir, 0o755)
            ring = dir + "/ring"
            try FileManager.default.createDirectory(atPath: ring, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
            try FileManager.default.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
            // A samples ring with 10 records, readable by the test's lmc-logs.
            let w = try run(Repo.lmc, ["_ring-test-writer", "--path", "\(ring)/samples.ring", "--count", "10", "--capacity", "64"])
            guard w.status == 0 else { throw PeerError("ring writer: \(w.err)") }
            chmod("\(ring)/samples.ring", 0o644)

            for key in ["host_key", "dno_key", "other_key"] {
                let k = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", "\(dir)/\(key)"])
                guard k.status == 0 else { throw PeerError("ssh-keygen: \(k.err)") }
            }
            // The DNO's key as docs/ssh.md says to install it.
            let pub = try String(contentsOfFile: dir + "/dno_key.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let keyFile = dir + "/etc/dno_authorized_keys"
            try "restrict \(pub)\n".write(toFile: keyFile, atomically: false, encoding: .utf8)
            chmod(keyFile, keyFileMode)

            // The package's drop-in: only the forced command's binary and ring directory, and the key
            // file's directory, are the test's. If the drop-in ever names other paths, this fails here.
            let shipped = try String(contentsOfFile: Repo.root.appendingPathComponent("systemd/sshd-lmc-logs.conf").path, encoding: .utf8)
            for path in ["AuthorizedKeysFile /etc/lmc/dno_authorized_keys", "ForceCommand /usr/bin/lmc log ssh-command\n"] where !shipped.contains(path) {
                throw PeerError("systemd/sshd-lmc-logs.conf no longer says '\(path)': update this test with it")
            }
            let dropIn = shipped
                .replacingOccurrences(of: "AuthorizedKeysFile /etc/lmc/dno_authorized_keys", with: "AuthorizedKeysFile /mnt/etc/dno_authorized_keys")
                .replacingOccurrences(of: "ForceCommand /usr/bin/lmc log ssh-command\n", with: "ForceCommand \(Repo.lmc) log ssh-command --dir \(ring)\n")
            try dropIn.write(toFile: dir + "/lmc-logs.conf", atomically: false, encoding: .utf8)

            // The account: the package's name and shell (systemd/lmc.sysusers), a test uid, home /mnt.
            let sysusers = try String(contentsOfFile: Repo.root.appendingPathComponent("systemd/lmc.sysusers").path, encoding: .utf8)
            guard let line = sysusers.split(separator: "\n").first(where: { $0.hasPrefix("u lmc-logs ") }),
                  let shell = line.split(separator: " ").last.map(String.init) else {
                throw PeerError("systemd/lmc.sysusers has no 'u lmc-logs' line")
            }
            var uid: uid_t = 64_123
            while getpwuid(uid) != nil { uid += 1 }
            // The forced command runs this build's lmc as the account. A checkout other users cannot
            // read (a clone under /root) would make every login fail for that reason alone: then the
            // test account is uid 0 under the name lmc-logs (sshd's checks are by name and key file).
            let probe = try run(ChildLifetime.setpriv, ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", Repo.lmc, "--version"])
            if probe.status != 0 { uid = 0 }
            let passwd = try String(contentsOfFile: "/etc/passwd", encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("lmc-logs:") }
                .map(String.init) + ["lmc-logs:x:\(uid):\(uid):LMC log export (test):/mnt:\(shell)"]
            try (passwd.joined(separator: "\n") + "\n").write(toFile: dir + "/passwd", atomically: false, encoding: .utf8)
            chmod(dir + "/passwd", 0o644)
            // Not locked ('*'), as sysusers leaves it; UsePAM is off here so the shadow entry is all sshd reads.
            FileManager.default.createFile(atPath: dir + "/shadow", contents: Data("lmc-logs:*:20000:0:99999:7:::\n".utf8), attributes: [.posixPermissions: 0o600])

            port = try Self.freePort()
            // Debian's sshd_config starts with the Include, so a Match block there ends at its file's end.
            let main = """
                Include \(dir)/lmc-logs.conf
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(dir)/host_key
                PidFile none
                UsePAM no
                StrictModes yes
                KbdInteractiveAuthentication no
                LogLevel VERBOSE
                Subsystem sftp /usr/lib/openssh/sftp-server

                """
            let config = dir + "/sshd_config"
            try main.write(toFile: config, atomically: false, encoding: .utf8)
            // sshd's privilege separation directory (Debian's unit creates it).
            if access("/run/sshd", F_OK) != 0 { mkdir("/run/sshd", 0o755) }
            let check = try run("/usr/sbin/sshd", ["-t", "-f", config])
            guard check.status == 0 else { throw PeerError("sshd -t refuses the drop-in: \(check.err)") }

            // sh stays as sshd's parent (no exec): sshd closes every inherited descriptor at start, and
            // Foundation's Process takes that of its exit-watch socket for an exit, then blocks its one
            // monitoring thread in waitpid — no other child's exit would be seen. sshd gets its own
            // --pdeathsig, so it dies with sh, which dies with the test.
            sshd = try ChildProcess("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c",
                "mount --bind \"$0\" /mnt && mount --bind \"$0/passwd\" /etc/passwd && mount --bind \"$0/shadow\" /etc/shadow && "
                + "\(ChildLifetime.setpriv) --pdeathsig KILL -- /usr/sbin/sshd -D -e -f \"$0/sshd_config\"",
                dir])
            let end = Date().addingTimeInterval(10)
            while !sshd.stderr.contains("Server listening on 127.0.0.1 port \(port)") {
                guard sshd.process.isRunning, Date() < end else {
                    let err = sshd.stderr
                    sshd.terminate()
                    try? FileManager.default.removeItem(atPath: dir)
                    throw PeerError("sshd did not start: \(err)")
                }
                usleep(20_000)
            }
        }

        static func freePort() throws -> Int {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(s) }
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, "127.0.0.1", &a.sin_addr)
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &a) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) == 0 && getsockname(s, $0, &len) == 0 }
            }
            guard ok else { throw PeerError("no free port: \(errno)") }
            return Int(UInt16(bigEndian: a.sin_port))
        }

        /// The ssh client's common options: no config, no known hosts, batch mode, this key only.
        func sshArgs(key: String, _ extra: [String] = []) -> [String] {
            ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-i", key, "-p", String(port)] + extra
        }

        /// `ssh lmc-logs@127.0.0.1 <command>` with `key`.
        func ssh(_ command: String?, key: String? = nil, _ extra: [String] = []) throws -> (status: Int32, out: String, err: String) {
            try run("/usr/bin/ssh", sshArgs(key: key ?? dnoKey, extra) + ["lmc-logs@127.0.0.1"] + (command.map { [$0] } ?? []), timeout: 20)
        }

        func stop() {
            sshd.terminate()
            try? FileManager.default.removeItem(atPath: dir)
        }
        deinit { stop() }
    }

    @Test func theDNOKeyRunsTheLogCommands() throws {
        let d = try PrivateSSHD()
        defer { d.stop() }
        let info = try d.ssh("log info")
        #expect(info.status == 0, "\(info.err)\nsshd: \(d.sshd.stderr)")
        #expect(info.out.contains("samples: ") && info.out.contains("holds 10"), "\(info.out)")
        let json = try d.ssh("log info --json")
        #expect(json.status == 0 && json.out.hasPrefix("{"), "\(json.out) \(json.err)")
        #expect(d.sshd.stderr.contains("Accepted publickey for lmc-logs"))
    }

    @Test func everythingElseIsRefused() throws {
        let d = try PrivateSSHD()
        defer { d.stop() }
        let refused: [(command: String?, why: String)] = [
            ("sh", "only 'log …' commands are allowed"),
            ("cat /etc/passwd", "character '/' is not allowed"),
            ("cat passwd", "only 'log …' commands are allowed"),
            ("log info; id", "character ';' is not allowed"),
            ("log export --ring samples --dir /etc", "character '/' is not allowed"),
            (nil, "no command given"),
        ]
        for (command, why) in refused {
            let r = try d.ssh(command)
            #expect(r.status == 1, "\(command ?? "(none)"): \(r.out) \(r.err)")
            #expect(r.err.contains("refused: \(why)"), "\(command ?? "(none)"): \(r.err)")
            #expect(!r.out.contains("root:x:0:0") && !r.out.contains("uid="), "\(r.out)")
        }
        // The sftp subsystem (and so scp) gets the forced command too, which refuses it (exit 1; sshd
        // sends a subsystem's stderr nowhere). sftp-server itself would have exited 0 on our empty stdin.
        let sftp = try d.ssh("sftp", ["-s"])
        #expect(sftp.status == 1 && sftp.out.isEmpty, "\(sftp.status) \(sftp.out) \(sftp.err)")
        let scp = try run("/usr/bin/scp", ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                           "-o", "IdentitiesOnly=yes", "-i", d.dnoKey, "-P", String(d.port), "lmc-logs@127.0.0.1:/etc/passwd", d.dir + "/stolen"], timeout: 20)
        #expect(scp.status != 0 && access(d.dir + "/stolen", F_OK) != 0, "scp: \(scp.status) \(scp.err)")
    }

    @Test func aKeyNotInTheFileIsRefused() throws {
        let d = try PrivateSSHD()
        defer { d.stop() }
        let r = try d.ssh("log info", key: d.otherKey)
        #expect(r.status == 255 && r.err.contains("Permission denied (publickey)"), "\(r.status) \(r.err)")
        #expect(!r.out.contains("samples"))
        // No password either, even if one were set.
        let pw = try d.ssh("log info", key: d.otherKey, ["-o", "PreferredAuthentications=password,keyboard-interactive"])
        #expect(pw.status == 255 && pw.err.contains("Permission denied"), "\(pw.err)")
    }

    /// StrictModes: a key file others may write is not used — the reason the keys are in a root-owned file.
    @Test func aKeyFileOthersMayWriteIsRefused() throws {
        let d = try PrivateSSHD(keyFileMode: 0o666)
        defer { d.stop() }
        let r = try d.ssh("log info")
        #expect(r.status == 255 && r.err.contains("Permission denied (publickey)"), "\(r.status) \(r.err)")
        #expect(d.sshd.stderr.contains("bad ownership or modes for file /mnt/etc/dno_authorized_keys"), "\(d.sshd.stderr)")
    }

    @Test func aPTYRequestGetsNoPTY() throws {
        let d = try PrivateSSHD()
        defer { d.stop() }
        let r = try d.ssh("log info", ["-tt"])
        #expect(r.err.contains("PTY allocation request failed"), "\(r.status) \(r.err)")
    }

    @Test func noForwardingOfAnyKind() throws {
        let d = try PrivateSSHD()
        defer { d.stop() }
        // stdio forwarding to sshd's own port: an allowed forward would print its SSH banner.
        let w = try d.ssh(nil, ["-W", "127.0.0.1:\(d.port)"])
        #expect(w.status == 255 && w.err.contains("stdio forwarding failed") && !w.out.contains("SSH-2.0"), "\(w.status) \(w.out) \(w.err)")
        // A remote forward: with ExitOnForwardFailure the client leaves at once when it is refused
        // (allowed, -N would wait for the 20 s timeout).
        let r = try d.ssh(nil, ["-N", "-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:\(try PrivateSSHD.freePort()):127.0.0.1:\(d.port)"])
        #expect(r.status == 255 && r.err.contains("remote port forwarding failed"), "\(r.status) \(r.err)")
        // A local forward: the client listens; a connection through it is refused by sshd (allowed, it
        // would carry sshd's banner).
        let local = try PrivateSSHD.freePort()
        let l = try ChildProcess("/usr/bin/ssh", d.sshArgs(key: d.dnoKey, ["-N", "-L", "127.0.0.1:\(local):127.0.0.1:\(d.port)", "lmc-logs@127.0.0.1"]))
        defer { l.terminate() }
        var c: RawTCP?
        let end = Date().addingTimeInterval(10)
        while c == nil, Date() < end, l.process.isRunning {
            c = try? RawTCP(port: local)
            if c == nil { usleep(50_000) }
        }
        let conn = try #require(c, "ssh -L never listened: \(l.stderr)")
        let got = conn.receive()
        #expect(!String(decoding: got, as: UTF8.self).contains("SSH-2.0"), "the forward carried sshd's banner")
        #expect(conn.closedByPeer(within: 3) || got.isEmpty)
        let refusedEnd = Date().addingTimeInterval(3)
        while !d.sshd.stderr.contains("refused local port forward"), Date() < refusedEnd { usleep(20_000) }
        #expect(d.sshd.stderr.contains("refused local port forward: originator 127.0.0.1"), "\(d.sshd.stderr)")
    }

    /// What sshd itself says it applies to lmc-logs: agent, X11, TCP and socket forwarding, tunnels,
    /// a PTY, ~/.ssh/rc and passwords all off; the keys only from the root-owned file.
    @Test func sshdAppliesTheDropInToLmcLogs() throws {
        let d = try PrivateSSHD()
        defer { d.stop() }
        let t = try run("/usr/sbin/sshd", ["-T", "-f", d.config, "-C", "user=lmc-logs,host=dno,addr=127.0.0.1"])
        #expect(t.status == 0, "\(t.err)")
        let lines = Set(t.out.split(separator: "\n").map(String.init))
        for want in ["disableforwarding yes", "permittty no", "permittunnel no", "permituserrc no", "x11forwarding no",
                     "allowagentforwarding no", "allowtcpforwarding no", "allowstreamlocalforwarding no", "passwordauthentication no",
                     "kbdinteractiveauthentication no", "authenticationmethods publickey", "authorizedkeysfile /mnt/etc/dno_authorized_keys",
                     "forcecommand \(Repo.lmc) log ssh-command --dir \(d.ring)"] {
            #expect(lines.contains(want), "sshd -T for lmc-logs lacks '\(want)'")
        }
        // Another user is not touched by the Match block.
        let other = try run("/usr/sbin/sshd", ["-T", "-f", d.config, "-C", "user=engineer,host=dno,addr=127.0.0.1"])
        #expect(!other.out.contains("forcecommand \(Repo.lmc)"))
    }
}
