import Testing
@testable import HTTPTransport
@testable import OSCP

@Suite struct OSCPMessageTests {
    @Test func rfc3339ParsesOffsetsAndFractionsAndRefusesTheRest() {
        #expect(RFC3339.parse("2026-11-23T18:00:00Z") == 1_795_456_800)
        #expect(RFC3339.parse("2026-11-23T19:00:00+01:00") == 1_795_456_800)
        #expect(RFC3339.parse("2026-11-23T18:00:00.250Z") == 1_795_456_800.25)
        for bad in ["2026-11-23", "2026-11-23T18:00:00", "2026-13-01T00:00:00Z", "tomorrow", "2026-11-23T18:00:00+0100", ""] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
        #expect(RFC3339.format(1_795_456_800.25) == "2026-11-23T18:00:00.250Z")
        #expect(RFC3339.parse(RFC3339.format(1_795_456_801.5)) == 1_795_456_801.5)
    }

    @Test func decodingErrorsNameTheField() {
        func problem<T: Decodable>(_ t: T.Type, _ json: String, _ validate: (T) -> [String]) -> String {
            switch decodeOSCP(t, from: Array(json.utf8)) {
            case .failure(let e): return e.description
            case .success(let m): return validate(m).joined(separator: "; ")
            }
        }
        #expect(problem(OSCPWire.Heartbeat.self, "{}", { $0.validate() }) == "offline_mode_at: required field missing")
        #expect(problem(OSCPWire.Heartbeat.self, #"{"offline_mode_at": 5}"#, { $0.validate() }) == "offline_mode_at: expected a string")
        #expect(problem(OSCPWire.UpdateGroupCapacityForecast.self,
                        #"{"group_id": "g", "type": "MAXIMUM", "forecasted_blocks": [{"capacity": 1, "phase": "ALL", "unit": "MW", "start_time": "2026-11-23T18:00:00Z", "end_time": "2026-11-23T17:00:00Z"}]}"#,
                        { $0.validate() })
                == "type: 'MAXIMUM' is not one of CONSUMPTION, GENERATION, FALLBACK_CONSUMPTION, FALLBACK_GENERATION, OPTIMUM; forecasted_blocks[0].unit: 'MW' is not one of A, W, KW, WH, KWH; forecasted_blocks[0].end_time: not after start_time")
        #expect(problem(OSCPWire.Handshake.self, #"{"required_behaviour": {"heartbeat_interval": 0, "measurement_configuration": ["SOMETIMES"]}}"#, { $0.validate() })
                == "required_behaviour.heartbeat_interval: 0 must be 1 or more; required_behaviour.measurement_configuration[0]: 'SOMETIMES' is not one of CONTINUOUS, INTERMITTENT")
        #expect(problem(OSCPWire.Register.self, #"{"token": "t", "version_url": [{"version": "2.0", "base_url": "ftp://x"}]}"#, { $0.validate() })
                == "version_url[0].base_url: 'ftp://x' is not an http(s) URL")
        #expect(problem(OSCPWire.Register.self, "[1, 2", { $0.validate() }) == "body: not valid JSON")
    }

    @Test func theFallbackFollowsTheTCCProfileMergedWhereEqual() {
        // A flat firm value: one block of 24 h.
        let flat = OSCPCapacityProvider.fallbackBlocks([150_000], from: 1_795_456_800)
        #expect(flat.count == 1 && flat[0].capacity == 150 && flat[0].end_time == "2026-11-24T18:00:00.000Z")
        // 48 half-hours, two values: blocks merge; the 24 h are covered without gaps.
        let profile = (0..<48).map { $0 < 34 ? 150_000.0 : 120_000.0 }
        let blocks = OSCPCapacityProvider.fallbackBlocks(profile, from: 1_795_456_800)
        #expect(blocks.count <= 4 && Set(blocks.map(\.capacity)) == [150, 120])
        for (a, b) in zip(blocks, blocks.dropFirst()) { #expect(a.end_time == b.start_time) }
        #expect(blocks.first?.start_time == "2026-11-23T18:00:00.000Z" && blocks.last?.end_time == "2026-11-24T18:00:00.000Z")
    }

    @Test func configRefusesPlainHTTPOffLoopbackAndShortTokens() {
        var c = OSCPConfig(ourBaseURL: "http://127.0.0.1:8090/oscp/cp/2.0", fpBaseURL: "http://cpms.example:9000/oscp/fp/2.0",
                           fpInitialToken: "x", ourToken: "short", groups: ["hub": "g"])
        let problems = c.validate()
        #expect(problems.contains("oscp.fp_base_url is plain http to cpms.example: use https, or allow_plain_http = true"))
        #expect(problems.contains("oscp.token: at least 16 characters (it authenticates the CPMS)"))
        c.allowPlainHTTP = true
        c.ourToken = "0123456789abcdef"
        #expect(c.validate().isEmpty)
        c.listenHost = "0.0.0.0"
        c.allowPlainHTTP = false
        c.fpBaseURL = "https://cpms.example/oscp/fp/2.0"
        #expect(c.validate() == ["oscp.listen = \"0.0.0.0\" without TLS: set tls_certificate and tls_key, or allow_plain_http = true"])
    }

    @Test func urlsParse() {
        #expect(HTTPURL("https://cpms.example/oscp/fp/2.0") == HTTPURL("https://cpms.example:443/oscp/fp/2.0"))
        #expect(HTTPURL("http://127.0.0.1:9000")?.path == "/")
        #expect(HTTPURL("http://127.0.0.1:9000/a/")!.appending("/heartbeat").path == "/a/heartbeat")
        #expect(HTTPURL("ftp://x") == nil && HTTPURL("http://:80/") == nil && HTTPURL("http://h:99999/") == nil)
    }
}
