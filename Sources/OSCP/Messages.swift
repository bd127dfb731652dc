import FoundationEssentials
import HTTPTransport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// OSCP 2.0 messages as they are on the wire: property names are the JSON field names of the OCA
/// specification (snake_case), enums travel as their strings and are checked by `validate()`, times
/// are RFC 3339 strings. docs/oscp.md lists every field with its source.
public enum OSCPWire {
    public static let version = "2.0"

    public enum Enums {
        public static let phase = ["UNKNOWN", "ONE", "TWO", "THREE", "ALL"]
        public static let forecastUnit = ["A", "W", "KW", "WH", "KWH"]
        public static let forecastType = ["CONSUMPTION", "GENERATION", "FALLBACK_CONSUMPTION", "FALLBACK_GENERATION", "OPTIMUM"]
        public static let measurementConfiguration = ["CONTINUOUS", "INTERMITTENT"]
        public static let energyUnit = ["WH", "KWH"]
        public static let energyType = ["FLEXIBLE", "NONFLEXIBLE", "TOTAL"]
        public static let direction = ["NET", "IMPORT", "EXPORT"]
    }

    public struct VersionURL: Codable, Sendable, Equatable {
        public var version: String
        public var base_url: String
        public init(version: String, base_url: String) { self.version = version; self.base_url = base_url }
    }

    public struct Register: Codable, Sendable, Equatable {
        public var token: String
        public var version_url: [VersionURL]
        public init(token: String, version_url: [VersionURL]) { self.token = token; self.version_url = version_url }
    }

    public struct RequiredBehaviour: Codable, Sendable, Equatable {
        public var heartbeat_interval: Int?
        public var measurement_configuration: [String]?
        public init(heartbeat_interval: Int?, measurement_configuration: [String]?) {
            self.heartbeat_interval = heartbeat_interval; self.measurement_configuration = measurement_configuration
        }
    }

    public struct Handshake: Codable, Sendable, Equatable {
        public var required_behaviour: RequiredBehaviour
        public init(required_behaviour: RequiredBehaviour) { self.required_behaviour = required_behaviour }
    }

    public struct HandshakeAcknowledgement: Codable, Sendable, Equatable {
        public var required_behaviour: RequiredBehaviour?
    }

    public struct Heartbeat: Codable, Sendable, Equatable {
        public var offline_mode_at: String
        public init(offline_mode_at: String) { self.offline_mode_at = offline_mode_at }
    }

    public struct ForecastedBlock: Codable, Sendable, Equatable {
        public var capacity: Double
        public var phase: String
        public var unit: String
        public var start_time: String
        public var end_time: String
        public init(capacity: Double, phase: String, unit: String, start_time: String, end_time: String) {
            self.capacity = capacity; self.phase = phase; self.unit = unit; self.start_time = start_time; self.end_time = end_time
        }
    }

    public struct UpdateGroupCapacityForecast: Codable, Sendable, Equatable {
        public var group_id: String
        public var type: String
        public var forecasted_blocks: [ForecastedBlock]
        public init(group_id: String, type: String, forecasted_blocks: [ForecastedBlock]) {
            self.group_id = group_id; self.type = type; self.forecasted_blocks = forecasted_blocks
        }
    }

    public struct GroupCapacityComplianceError: Codable, Sendable, Equatable {
        public var message: String
        public var forecasted_blocks: [ForecastedBlock]?
    }

    public struct EnergyMeasurement: Codable, Sendable, Equatable {
        public var value: Double
        public var phase: String
        public var unit: String
        public var energy_type: String?
        public var direction: String
        public var measure_time: String
        public var initial_measure_time: String?
    }

    public struct UpdateGroupMeasurements: Codable, Sendable, Equatable {
        public var group_id: String
        public var measurements: [EnergyMeasurement]
    }

    // MARK: validation

    static func check(_ value: String, in allowed: [String], _ field: String, _ errors: inout [String]) {
        if !allowed.contains(value) { errors.append("\(field): '\(value)' is not one of \(allowed.joined(separator: ", "))") }
    }
    static func checkTime(_ value: String, _ field: String, _ errors: inout [String]) {
        if RFC3339.parse(value) == nil { errors.append("\(field): '\(value)' is not an RFC 3339 time (2026-11-23T18:00:00Z)") }
    }

    static func validate(_ b: ForecastedBlock, _ at: String, _ e: inout [String]) {
        check(b.phase, in: Enums.phase, "\(at).phase", &e)
        check(b.unit, in: Enums.forecastUnit, "\(at).unit", &e)
        checkTime(b.start_time, "\(at).start_time", &e)
        checkTime(b.end_time, "\(at).end_time", &e)
        if !b.capacity.isFinite { e.append("\(at).capacity: not a number") }
        if let s = RFC3339.parse(b.start_time), let t = RFC3339.parse(b.end_time), t <= s { e.append("\(at).end_time: not after start_time") }
    }
}

extension OSCPWire.Register {
    public func validate() -> [String] {
        var e: [String] = []
        if token.isEmpty { e.append("token: empty") }
        if version_url.isEmpty { e.append("version_url: empty (at least one version and base URL)") }
        for (i, v) in version_url.enumerated() where HTTPURL(v.base_url) == nil {
            e.append("version_url[\(i)].base_url: '\(v.base_url)' is not an http(s) URL")
        }
        return e
    }
}

extension OSCPWire.RequiredBehaviour {
    func validate(_ at: String) -> [String] {
        var e: [String] = []
        if let h = heartbeat_interval, h < 1 { e.append("\(at).heartbeat_interval: \(h) must be 1 or more") }
        for (i, m) in (measurement_configuration ?? []).enumerated() {
            OSCPWire.check(m, in: OSCPWire.Enums.measurementConfiguration, "\(at).measurement_configuration[\(i)]", &e)
        }
        return e
    }
}

extension OSCPWire.Handshake {
    public func validate() -> [String] { required_behaviour.validate("required_behaviour") }
}

extension OSCPWire.HandshakeAcknowledgement {
    public func validate() -> [String] { required_behaviour?.validate("required_behaviour") ?? [] }
}

extension OSCPWire.Heartbeat {
    public func validate() -> [String] {
        var e: [String] = []
        OSCPWire.checkTime(offline_mode_at, "offline_mode_at", &e)
        return e
    }
}

extension OSCPWire.UpdateGroupCapacityForecast {
    public func validate() -> [String] {
        var e: [String] = []
        if group_id.isEmpty { e.append("group_id: empty") }
        OSCPWire.check(type, in: OSCPWire.Enums.forecastType, "type", &e)
        for (i, b) in forecasted_blocks.enumerated() { OSCPWire.validate(b, "forecasted_blocks[\(i)]", &e) }
        return e
    }
}

extension OSCPWire.GroupCapacityComplianceError {
    public func validate() -> [String] {
        var e: [String] = []
        for (i, b) in (forecasted_blocks ?? []).enumerated() { OSCPWire.validate(b, "forecasted_blocks[\(i)]", &e) }
        return e
    }
}

extension OSCPWire.UpdateGroupMeasurements {
    public func validate() -> [String] {
        var e: [String] = []
        if group_id.isEmpty { e.append("group_id: empty") }
        for (i, m) in measurements.enumerated() {
            let at = "measurements[\(i)]"
            OSCPWire.check(m.phase, in: OSCPWire.Enums.phase, "\(at).phase", &e)
            OSCPWire.check(m.unit, in: OSCPWire.Enums.energyUnit, "\(at).unit", &e)
            if let t = m.energy_type { OSCPWire.check(t, in: OSCPWire.Enums.energyType, "\(at).energy_type", &e) }
            OSCPWire.check(m.direction, in: OSCPWire.Enums.direction, "\(at).direction", &e)
            OSCPWire.checkTime(m.measure_time, "\(at).measure_time", &e)
            if let t = m.initial_measure_time { OSCPWire.checkTime(t, "\(at).initial_measure_time", &e) }
            if !m.value.isFinite { e.append("\(at).value: not a number") }
        }
        return e
    }
}

/// Decodes a body into a message type; errors name the field (JSON path) and what is wrong.
public func decodeOSCP<T: Decodable>(_ type: T.Type, from body: [UInt8]) -> Result<T, OSCPBodyError> {
    do {
        return .success(try JSONDecoder().decode(T.self, from: Data(body)))
    } catch let DecodingError.keyNotFound(key, ctx) {
        return .failure(.init(path(ctx.codingPath + [key]) + ": required field missing"))
    } catch let DecodingError.typeMismatch(t, ctx) {
        return .failure(.init(path(ctx.codingPath) + ": expected \(jsonType(t))"))
    } catch let DecodingError.valueNotFound(t, ctx) {
        return .failure(.init(path(ctx.codingPath) + ": null where \(jsonType(t)) is required"))
    } catch let DecodingError.dataCorrupted(ctx) {
        return .failure(.init(ctx.codingPath.isEmpty ? "body: not valid JSON" : path(ctx.codingPath) + ": \(ctx.debugDescription)"))
    } catch {
        return .failure(.init("body: \(error)"))
    }
}

public struct OSCPBodyError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

private func path(_ keys: [any CodingKey]) -> String {
    var s = ""
    for k in keys {
        if let i = k.intValue { s += "[\(i)]" } else { s += (s.isEmpty ? "" : ".") + k.stringValue }
    }
    return s.isEmpty ? "body" : s
}

private func jsonType(_ t: Any.Type) -> String {
    switch t {
    case is String.Type: "a string"
    case is Int.Type: "an integer"
    case is Double.Type: "a number"
    case is Bool.Type: "true or false"
    default: "an object or array"
    }
}

public func encodeOSCP<T: Encodable>(_ value: T) -> [UInt8] {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return Array((try? e.encode(value)) ?? Data())
}

/// RFC 3339 times: parsed to Unix seconds; written in UTC with milliseconds.
public enum RFC3339 {
    public static func parse(_ s: String) -> Double? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= b.count else { return nil }
            var v = 0
            for i in from..<(from + n) { guard (48...57).contains(b[i]) else { return nil }; v = v * 10 + Int(b[i] - 48) }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), b[4] == 45, let mo = num(5, 2), b[7] == 45, let d = num(8, 2),
              b[10] == 84 || b[10] == 116 || b[10] == 32, let h = num(11, 2), b[13] == 58, let mi = num(14, 2), b[16] == 58, let sec = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count, b[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, (48...57).contains(b[i]) { frac += Double(b[i] - 48) * scale; scale /= 10; i += 1 }
            guard i > start else { return nil }
        }
        guard i < b.count else { return nil }
        var offset = 0
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == 58, let om = num(i + 4, 2) {
            offset = (oh * 3600 + om * 60) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        var t = tm()
        t.tm_year = Int32(y - 1900); t.tm_mon = Int32(mo - 1); t.tm_mday = Int32(d)
        t.tm_hour = Int32(h); t.tm_min = Int32(mi); t.tm_sec = Int32(sec)
        return Double(timegm(&t) - offset) + frac
    }

    public static func format(_ seconds: Double) -> String {
        var t = time_t(seconds.rounded(.down))
        var v = tm()
        gmtime_r(&t, &v)
        func p(_ x: Int32, _ w: Int = 2) -> String { let s = String(x); return String(repeating: "0", count: max(0, w - s.count)) + s }
        let ms = Int32(((seconds - seconds.rounded(.down)) * 1000).rounded(.down))
        return "\(p(v.tm_year + 1900, 4))-\(p(v.tm_mon + 1))-\(p(v.tm_mday))T\(p(v.tm_hour)):\(p(v.tm_min)):\(p(v.tm_sec)).\(p(ms, 3))Z"
    }
}
