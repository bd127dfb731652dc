import FailSafe
import Headroom

/// What the console shows (`lmc status`, `lmc watch`): the cycle's picture, handed over whole.
public struct StatusView: Sendable {
    public struct MP: Sendable {
        public var id: String
        public var kind: MeasurementPointConfig.Kind
        public var value: Double?
        public var state: String
        public var reason: String
        public var limit: Double
        public var meter: String
    }
    public struct Site: Sendable {
        public var id: String
        public var setPointW: Double
        public var requestedW: Double
        public var boundBy: String
        public var reason: String
        public var importW: Double?
        public var chargerA: Double?
        public var appliedA: Double?
        public var relayError: String?
        public var oscp: String? = nil
        /// What the charger or CPMS is sent, in its own unit ("250 A").
        public var sent: String? = nil
    }
    public var mode: Mode
    public var reason: String
    public var cycles: Int
    public var overruns: Int
    public var mps: [MP]
    public var sites: [Site]
    public var alarms: [String]
}

/// The upstream Modbus map's values for one cycle (docs/modbus-map.md); the shell copies it to the server.
public struct UpstreamView: Sendable, Equatable {
    public struct MP: Sendable, Equatable {
        public var value: Double?
        public var quality: UInt16
        public var state: UInt16
        public var limitW: Double?
        /// No believable value this cycle (the supervisor's blind test for this MP's meters).
        public var blind: Bool = false
    }
    public struct Site: Sendable, Equatable {
        public var setPointW: Double
        public var boundBy: UInt16
        public var pocImportW: Double?
        public var relayOK: Bool
        public var appliedA: Double?
        /// The charger relay or the OSCP relay is failing; nil when the site has neither this cycle.
        public var deaf: Bool? = nil
        /// The breaker's auxiliary contact: closed or open; nil when unknown (not read, not wired, no breaker).
        public var breakerClosed: Bool? = nil
    }
    public var mode: UInt16
    public var alarmBits: UInt32
    public var cycles: UInt32
    public var overruns: UInt32
    public var trips: UInt32
    public var mps: [MP]
    public var sites: [Site]

    /// Mode codes of the map, in order.
    public static let modes: [Mode] = [.normal, .degraded, .startup, .failsafe, .nonResponse, .tripped, .lockout]
    /// Alarm bits 0…4; bit 5 blind, bit 6 deaf.
    public static let alarmCodes = ["METER_LOST", "RELAY_FAILING", "TRIP_FAILED", "LOCKOUT", "CLOSE_FAILED"]
    public static let states: [MPState] = [.holding, .riding, .regulating, .releasing, .blind]
    /// Bound-by codes; 9 is the fail-safe holding the site below its headroom.
    public static let sources = ["ceiling", "mp", "tcc", "dsc", "schedule", "override", "remote", "floor", "ramp", "fail-safe"]
}
