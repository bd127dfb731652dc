import Foundation
import Testing
import TOMLReader
@testable import LMCConfig
import LMCWiring

/// Issue 17: the network-facing sections default to what is safe on a hostile LAN.
@Suite struct NetworkConfigTests {
    func base() -> String { (try? exampleConfigText()) ?? "" }

    @Test func theUpstreamServerListensOnLoopbackOnAnUnprivilegedPortUnlessTold() throws {
        let c = try Configuration.parse(base() + "\n[upstream]\nallowed_writers = [\"10.20.0.5\"]\n").get()
        let u = try #require(c.runtime.upstream)
        #expect(u.listen == "127.0.0.1" && u.port == 1502)
        #expect(u.limits == .init(maxClients: 16, idleTimeoutMilliseconds: 60_000, frameDeadlineMilliseconds: 1000, sendDeadlineMilliseconds: 2000,
                                  maxClientsPerAddress: 4))
        let named = try Configuration.parse(base() + """

            [upstream]
            listen = "10.20.0.9"
            port = 502
            max_clients = 4
            idle_timeout_s = 30
            frame_deadline_ms = 500
            send_deadline_ms = 1000
            max_clients_per_address = 2
            """).get().runtime.upstream
        #expect(named?.listen == "10.20.0.9" && named?.port == 502)
        #expect(named?.limits == .init(maxClients: 4, idleTimeoutMilliseconds: 30_000, frameDeadlineMilliseconds: 500, sendDeadlineMilliseconds: 1000,
                                       maxClientsPerAddress: 2))
    }

    @Test func aHostNameOrAnUnboundedLimitIsRefused() {
        for (extra, key) in [("listen = \"scada.example\"", "upstream.listen"), ("max_clients = 0", "max_clients"),
                             ("frame_deadline_ms = 600000", "frame_deadline_ms")] {
            guard case .failure(let e) = Configuration.parse(base() + "\n[upstream]\n\(extra)\n") else { Issue.record("accepted \(extra)"); continue }
            #expect(e.issues.contains { $0.description.contains(key) }, "\(e.issues)")
        }
    }
}

@Suite struct OSCPConfigTests {
    func site() -> String { ((try? exampleConfigText()) ?? "").replacingOccurrences(of: "[[site]]\nid = \"hub\"", with: "[[site]]\nid = \"hub\"\noscp_group = \"g\"") }
    let oscp = """

        [oscp]
        our_base_url = "http://127.0.0.1:8090/oscp/cp/2.0"
        fp_base_url = "http://127.0.0.1:9000/oscp/fp/2.0"
        """

    @Test func emptyStringsAreRefusedNotSkipped() throws {
        let text = site() + oscp + "\ncredentials_file = \"\"\n"
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("an [oscp] with an empty credentials_file was accepted"); return }
        #expect(e.issues.contains { $0.description.contains("oscp.credentials_file: is empty") }, "\(e.issues)")
        let credentials = "/tmp/lmc-cred-empty-\(getpid())"
        defer { unlink(credentials) }
        FileManager.default.createFile(atPath: credentials, contents: Data("token = \"0123456789abcdef\"\nfp_token = \"a\"\n".utf8), attributes: [.posixPermissions: 0o600])
        guard case .failure(let e2) = Configuration.parse(site() + "\n[oscp]\nour_base_url = \"\"\nfp_base_url = \"\"\ncredentials_file = \"\(credentials)\"\n") else {
            Issue.record("empty URLs accepted"); return
        }
        #expect(e2.issues.contains { $0.description.contains("oscp.fp_base_url") }, "\(e2.issues)")
    }

    /// Issue 17 item 6: lmc.toml is group-readable (group lmc, the console's readers), so a token there
    /// is readable by every console user. Before: accepted. Now a config error naming the key and the fix.
    @Test func inlineTokensAreAConfigErrorThatSaysWhereTheyGo() {
        let text = site() + oscp + "\nfp_token = \"initial-fp-token\"\ntoken = \"0123456789abcdefXYZ\"\n"
        guard case .failure(let e) = Configuration.parse(text) else { Issue.record("inline OSCP tokens were accepted"); return }
        for key in ["token", "fp_token"] {
            let issue = e.issues.first { $0.description.contains("oscp.\(key) ") || $0.description.contains("oscp.\(key):") }
            #expect(issue != nil, "\(key) is named: \(e.issues)")
            let text = issue?.description ?? ""
            #expect(text.contains("group lmc can read") && text.contains("credentials_file") && text.contains("chmod 600"), "\(text)")
        }
        #expect(!e.issues.contains { $0.description.contains("initial-fp-token") || $0.description.contains("0123456789abcdefXYZ") }, "the error never repeats a token")
        // Without a credentials file there is no token at all: said once, with the fix.
        guard case .failure(let none) = Configuration.parse(site() + oscp) else { Issue.record("an [oscp] without tokens was accepted"); return }
        #expect(none.issues.contains { $0.description.contains("oscp.credentials_file") && $0.description.contains("is required") }, "\(none.issues)")
    }

    @Test func tokensComeFromAPrivateCredentialsFile() throws {
        let path = "/tmp/lmc-cred-\(getpid())"
        defer { unlink(path) }
        try "token = \"0123456789abcdefXYZ\"\nfp_token = \"initial\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        guard case .failure(let e) = Configuration.parse(site() + oscp + "\ncredentials_file = \"\(path)\"\n") else { Issue.record("a world-readable credentials file was accepted"); return }
        #expect(e.issues.contains { $0.description.contains("readable by group or others") }, "\(e.issues)")
        chmod(path, 0o600)
        let c = try Configuration.parse(site() + oscp + "\ncredentials_file = \"\(path)\"\n").get()
        #expect(c.runtime.oscp?.ourToken == "0123456789abcdefXYZ" && c.runtime.oscp?.fpInitialToken == "initial")
        guard case .failure(let both) = Configuration.parse(site() + oscp + "\ncredentials_file = \"\(path)\"\ntoken = \"0123456789abcdefXYZ\"\n") else {
            Issue.record("a token both inline and in the credentials file was accepted"); return
        }
        #expect(both.issues.contains { $0.description.contains("oscp.token: a token in lmc.toml is not accepted") }, "\(both.issues)")
    }

    @Test func tomlNestingIsBounded() {
        let deep = "x = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: TOMLError.self) { _ = try TOML.parse(deep) }
        let dotted = (0..<1000).map { "k\($0)" }.joined(separator: ".") + " = 1"
        #expect(throws: TOMLError.self) { _ = try TOML.parse(dotted) }
        #expect((try? TOML.parse("x = [[1, 2], [3]]")) != nil)
    }
}
