import TOMLReader

/// Every key of lmc.toml. Keep docs/config.md in step (the tests check key names and defaults).
public enum ConfigKeys {
    public static let all: [ConfigKey] = declarations()
    /// What a `Section` of lmc.toml reads against.
    public static let schema = KeySchema(all)

    /// The declaration of `name` in `table` ("limit_kva" finds "limit_U").
    public static func find(table: String, name: String) -> ConfigKey? { schema.find(table: table, name: name) }

    /// The keys declared for one table.
    public static func keys(in table: String) -> [ConfigKey] { schema.keys(in: table) }

    /// `[dnp3]`'s point groups (`class_NAME`, `deadband_NAME`): the groups of the DNP3 point map
    /// (`PointGroup` in Sources/DNP3/Points.swift, whose defaults a test checks against these).
    public struct DNP3PointGroup: Sendable {
        public var name: String
        public var points: String
        public var defaultClass: Int
        /// The deadband's default (nil value: it depends on the point, `text` says how) and unit.
        public var deadband: (value: Double?, text: String)?
        public var unit: String
        /// `deadband_NAME` with the unit's suffix where it has one of its own (`_w`, `_wh`); an MP's
        /// value is in the MP's unit (VA, A or V), so `deadband_mp_value` has none.
        public var deadbandKey: String {
            "deadband_\(name)" + (unit == "W" ? "_w" : unit == "Wh" ? "_wh" : "")
        }
    }
    public static let dnp3PointGroups: [DNP3PointGroup] = [
        .init(name: "alarms", points: "`alarm.*` (binary)", defaultClass: 1, deadband: nil, unit: ""),
        .init(name: "modes", points: "`mode.*` (binary) and `mode` (analog)", defaultClass: 1, deadband: nil, unit: ""),
        .init(name: "status", points: "`site[j].relay_ok`, `site[j].breaker_closed`, `mp[i].blind`, `site[j].deaf` (binary)", defaultClass: 1, deadband: nil, unit: ""),
        .init(name: "mp_value", points: "`mp[i].value`", defaultClass: 2, deadband: (nil, "by the MP's unit: `1000` VA, `5` A, `2` V"), unit: "the MP's"),
        .init(name: "mp_limit", points: "`mp[i].limit`", defaultClass: 1, deadband: (100, ""), unit: "W"),
        .init(name: "codes", points: "`mp[i].state`, `site[j].bound_by`", defaultClass: 1, deadband: nil, unit: ""),
        .init(name: "site_set_point", points: "`site[j].set_point`", defaultClass: 2, deadband: (500, ""), unit: "W"),
        .init(name: "site_import", points: "`site[j].import`", defaultClass: 2, deadband: (1000, ""), unit: "W"),
        .init(name: "halfhour", points: "`mp[i].halfhour_*`, `site[j].halfhour_*`", defaultClass: 3, deadband: nil, unit: ""),
        .init(name: "trips", points: "`trips` (counter)", defaultClass: 1, deadband: nil, unit: ""),
        .init(name: "overruns", points: "`overruns` (counter)", defaultClass: 3, deadband: nil, unit: ""),
        .init(name: "energy", points: "`site[j].energy_*` (counters)", defaultClass: 3, deadband: (0, ""), unit: "Wh"),
    ]
}

private func declarations() -> [ConfigKey] {
    var out: [ConfigKey] = []
    var table = ""
    func key(_ name: String, _ type: ConfigKey.ValueType, _ d: ConfigKey.Default, unit: String = "", min: Double? = nil, max: Double? = nil,
             positive: Bool = false, _ doc: String) {
        out.append(ConfigKey(table: table, name: name, type: type, unit: unit, min: min, max: max, positive: positive, defaultValue: d, doc: doc))
    }
    func endpoint() {
        key("rtu", .string, .contextual("one of `rtu`, `tcp` required"), "serial device, `\"/dev/ttyS1\"`")
        key("tcp", .string, .contextual("one of `rtu`, `tcp` required"), "`\"HOST:PORT\"`")
        key("baud", .number, .number(9600), unit: "Bd", positive: true, "RTU baud rate (8 data bits, 1 stop bit)")
        key("parity", .choice(["N", "E", "O"]), .string("N"), "RTU parity")
    }

    table = ""
    key("control", .table, .none, "the control section")
    key("box", .table, .none, "this box")
    key("failsafe", .table, .none, "the fail-safe supervisor")
    key("log", .table, .none, "the ring log")
    key("upstream", .table, .none, "the Modbus TCP server for SCADA / DERMS")
    key("oscp", .table, .none, "OSCP 2.0 to the CPMS")
    key("dnp3", .table, .none, "the DNP3 outstation for the DNO's historian and control room")
    key("bus", .tables, .none, "RS-485 lines and Modbus TCP devices")
    key("meter", .tables, .none, "meters")
    key("pulse_meter", .tables, .none, "S0 pulse outputs wired to GPIO inputs: a site's PoC import")
    key("measurement_point", .tables, .required, "measured quantities at the constraint")
    key("site", .tables, .required, "EV charging sites behind the constraint")

    table = "control"
    key("mode", .choice(ConfigFile.Mode.allCases.map(\.rawValue)), .string("direct"),
        "direct: reductions from the site's metered import; incremental: from the current set point")
    key("period_ms", .number, .number(100), unit: "ms", min: 10, max: 10_000, "control period")
    key("tcc_timezone", .string, .string("Europe/London"), "the zone the TCC half hours and schedule windows are written in")
    key("require_synchronised_clock", .bool, .bool(true), "pick a half hour only while the kernel reports the wall clock synchronised")

    table = "box"
    key("id", .string, .string("lmc"), "this box's name; also seeds its start-up delay")
    key("socket", .string, .string("/run/lmc/control.sock"), "the control socket `lmc status` talks to")
    key("hardware_watchdog", .string, .none, "a hardware watchdog device lmc run pets from on-time cycles")

    table = "failsafe"
    key("blind_time_s", .number, .number(1), unit: "s", min: 0.05, max: 60, "no good constraint sample for this long: safe set point")
    key("good_samples", .number, .number(10), min: 1, max: 10_000, "consecutive good samples to leave start-up or fail-safe")
    key("startup_delay_min_s", .number, .number(0), unit: "s", min: 0, "the window of the per-box start-up delay: from")
    key("startup_delay_max_s", .number, .number(60), unit: "s", min: 0, "the window of the per-box start-up delay: to")
    key("recovery_ramp_kw_per_s", .number, .number(2), unit: "kW/s", positive: true, "ramp from the safe set point after recovering")
    key("upstream_heartbeat_timeout_s", .number, .none, unit: "s", positive: true,
        "centrally managed: safe set point when the upstream heartbeat is older")
    key("non_response_tolerance_kw", .number, .number(10), unit: "kW", min: 0, "PoC import above set point + this…")
    key("response_time_s", .number, .number(30), unit: "s", min: 0, "…for this long: trip")
    key("breaker_confirm_s", .number, .number(1), unit: "s", positive: true, "the auxiliary contact must confirm within this")
    // No default: a breaker re-closes by itself only when the engineer says after how long.
    key("auto_close_delay_s", .number, .none, unit: "s", min: 0, "re-close automatically this long after a trip (none: closing is manual)")
    key("max_trips", .number, .number(3), min: 1, max: 100, "this many trips in `trip_window_s`: LOCKOUT")
    key("trip_window_s", .number, .number(3600), unit: "s", positive: true, "the window `max_trips` counts in")
    key("relay_alarm_after_s", .number, .number(5), unit: "s", min: 0, "alarm when a relay has failed this long")

    table = "bus"
    key("id", .string, .required, "named by meters")
    endpoint()
    key("timeout_ms", .number, .number(200), unit: "ms", min: 10, max: 10_000, "response timeout")

    table = "meter"
    key("id", .string, .required, "named by measurement points and sites")
    key("bus", .string, .required, "a `[[bus]]` id")
    key("unit", .number, .number(1), min: 0, max: 255, "Modbus unit id")
    key("profile", .string, .required, "a file in `hw/meters` (see hw/README.md), or a path")
    key("poll_ms", .number, .number(100), unit: "ms", min: 10, max: 60_000, "poll period")
    key("ct_rating_a", .number, .none, unit: "A", positive: true, "plausibility: a current above twice this is bad; so is a total power above what the CTs can carry")
    key("nominal_v", .number, .number(230), unit: "V", positive: true, "plausibility, and apparent power on CT-only meters")
    key("frozen_after_s", .number, .number(1), unit: "s", min: 0.01, max: 600, "bit-identical readings under load for this long, from the first poll of the run: frozen")
    key("frozen_polls", .number, .none, min: 2, max: 10_000, "deprecated: read as `frozen_after_s` = (n − 1) × `poll_ms`, with a warning; write `frozen_after_s`")

    table = "pulse_meter"
    key("id", .string, .required, "named by a site's `poc_meter`")
    key("chip", .string, .string("gpiochip0"), "GPIO chip: path, name, label or number")
    key("line", .number, .required, min: 0, max: 1023, "the input the S0 output is wired to (pulled up)")
    key("active_low", .bool, .bool(false), "a pulse pulls the line low (an open-collector S0 output to ground)")
    key("impulses_per_kwh", .number, .required, positive: true, "the meter's pulse constant, printed on it")
    key("minimum_load_w", .number, .none, unit: "W", positive: true,
        "the least the circuit ever draws: a silence longer than 1.5 pulses at this load is a broken wire")
    key("window_s", .number, .number(60), unit: "s", min: 1, max: 3600, "pulses older than this no longer count in the average")

    table = "measurement_point"
    key("id", .string, .required, "name shown on the console and in the log")
    key("kind", .choice(ConfigFile.Kind.allCases.map(\.rawValue)), .required, "what is measured")
    key("meter", .string, .none, "the `[[meter]]` that measures it")
    key("redundant_meter", .string, .none, "a second `[[meter]]` measuring the same thing (a redundant pair)")
    key("sensitivity_per_kw", .number, .required, "change of the value per kW of site import, with sign")
    key("regulate_margin_U", .number, .number(0), min: 0, "regulation brings the value back to limit − margin (upper) or + margin (lower)")
    key("ride_through_s", .number, .number(2), unit: "s", min: 0, "excursions beyond the limit shorter than this are ignored")
    key("regulate_interval_s", .number, .number(10), unit: "s", min: 0, "repeat reductions this often while still beyond the limit")
    key("release_interval_s", .number, .number(60), unit: "s", min: 0, "release steps at most this often")
    key("ramp_kw", .number, .none, unit: "kW", positive: true, "largest release step")
    key("filter_s", .number, .number(5), unit: "s", min: 0, "time constant of the filter the regulate/release decisions see")
    key("lowest_believable_U", .number, .none, min: 0, "a value below this is not believed")
    key("upper", .table, .none, "upper limit set")
    key("lower", .table, .none, "lower limit set")

    for side in ["upper", "lower"] {
        table = "measurement_point.\(side)"
        key("limit_U", .number, .required, "regulate beyond this")
        key("release_zone_U", .number, .required, "keep releasing while inside this")
        key("release_trigger_U", .number, .required, "start releasing inside this")
        key("trip_U", .number, .none, "request a trip when beyond this…")
        key("trip_delay_s", .number, .number(10), unit: "s", min: 0, "…for this long")
    }

    table = "site"
    key("id", .string, .required, "site name")
    key("firm_kw", .number, .required, unit: "kW", min: 0, "firm capacity: the set point never goes below it here")
    key("rated_kw", .number, .required, unit: "kW", positive: true, "rated capacity: the ceiling")
    key("setpoint_unit", .choice(["kw", "kva", "a"]), .contextual("`\"a\"` with a `[site.charger]`, else `\"kw\"`"),
        "unit of what takes the set point (`a`: per phase)")
    key("power_factor", .number, .number(1), min: 0.1, max: 1, "for kVA and A")
    key("phases", .number, .number(3), min: 1, max: 3, "for A")
    key("phase_voltage_v", .number, .number(230), unit: "V", positive: true, "for A")
    key("quantum", .number, .contextual("`1` for A, else `0`"), min: 0, "set point steps, in `setpoint_unit`")
    key("hysteresis", .number, .number(0.5), min: 0, max: 1, "fraction of a quantum an increase must clear")
    key("ramp_up_kw_per_s", .number, .number(2), unit: "kW/s", positive: true, "increases at most this fast")
    key("dsc_kw", .number, .none, unit: "kW", positive: true, "declared supply capacity")
    key("tcc_kw", .numbers(count: 48), .none, unit: "kW", "timed capacity connection: the limit for each half hour from 00:00")
    key("poc_meter", .string, .none, "the site's PoC `[[meter]]` or `[[pulse_meter]]`")
    key("oscp_group", .string, .none, "the site takes part in OSCP as this group")
    key("schedule", .tables, .none, "dispatch windows")
    key("breaker", .table, .none, "the site breaker")
    key("charger", .table, .none, "the site's hub chargepoint over Modbus")

    table = "site.schedule"
    key("name", .string, .string("window"), "shown as `schedule:NAME`")
    key("from", .string, .required, "start, local time \"HH:MM\"")
    key("to", .string, .required, "end, local time \"HH:MM\"; a window may wrap midnight")
    key("limit_kw", .number, .required, unit: "kW", min: 0, "limit inside the window")

    table = "site.breaker"
    key("chip", .string, .string("gpiochip0"), "GPIO chip: path, name, label or number")
    key("trip_line", .number, .required, min: 0, max: 1023, "output to the trip coil relay")
    key("close_line", .number, .none, min: 0, max: 1023, "output to the close coil relay")
    key("aux_line", .number, .none, min: 0, max: 1023, "input from the auxiliary contact, logical 1 = closed")
    key("trip_active_low", .bool, .bool(false), "the trip output's logical 1 is the low level")
    key("close_active_low", .bool, .bool(false), "the close output's logical 1 is the low level")
    key("aux_active_low", .bool, .bool(false), "the auxiliary input's logical 1 is the low level")
    key("pulse_ms", .number, .number(200), unit: "ms", min: 0, max: 10_000, "coil pulse width; 0 = latched")

    table = "site.charger"
    key("profile", .string, .required, "a file in `hw/chargers`, or a path")
    endpoint()
    key("unit", .number, .contextual("the profile's"), min: 0, max: 255, "Modbus unit id")
    key("max_current_a", .number, .contextual("the profile's"), unit: "A", positive: true, "highest current to send")
    key("timeout_ms", .number, .number(500), unit: "ms", min: 10, max: 10_000, "response timeout")

    table = "log"
    key("directory", .string, .string("/var/lib/lmc"), "where the rings live")
    key("samples_mb", .number, .number(64), unit: "MB", min: 0.1, max: 65_536, "size of the samples ring")
    key("events_mb", .number, .number(4), unit: "MB", min: 0.1, max: 65_536, "size of the events ring")
    key("halfhours_mb", .number, .number(64), unit: "MB", min: 0.1, max: 65_536, "size of the half-hours ring")
    key("minutes_mb", .number, .number(72), unit: "MB", min: 0.1, max: 65_536, "size of the minutes ring")
    key("trips_mb", .number, .number(16), unit: "MB", min: 0.5, max: 65_536, "size of the trips ring")
    key("sync_interval_s", .number, .number(1), unit: "s", min: 0, max: 60, "records are written and synced this often")

    table = "upstream"
    key("listen", .string, .string("127.0.0.1"), "numeric address to listen on")
    key("port", .number, .number(1502), min: 0, max: 65_535, "TCP port")
    key("allowed_writers", .strings, .empty, "client IP addresses allowed to write")
    key("max_clients", .number, .number(16), min: 1, max: 256, "connections served at once")
    key("max_clients_per_address", .number, .number(4), min: 1, max: 256, "connections served at once from one address")
    key("idle_timeout_s", .number, .number(60), unit: "s", min: 1, max: 3600, "a connection idle this long is closed")
    key("frame_deadline_ms", .number, .number(1000), unit: "ms", min: 50, max: 10_000, "all bytes of a request must arrive within this")
    key("send_deadline_ms", .number, .number(2000), unit: "ms", min: 50, max: 60_000, "a client not reading replies this long is cut")

    table = "dnp3"
    key("listen", .string, .string("127.0.0.1"), "numeric address to listen on")
    key("port", .number, .number(20000), min: 1, max: 65_535, "TCP port")
    key("outstation_address", .number, .number(1024), min: 0, max: 65_519, "this outstation's DNP3 link address")
    key("master_address", .number, .number(1), min: 0, max: 65_519, "the master's DNP3 link address: frames from any other are dropped")
    key("allowed_ips", .strings, .contextual("`[\"127.0.0.1\"]`"), "master IP addresses allowed to connect")
    key("event_buffer", .number, .number(100), min: 1, max: 10_000, "events kept per class until the master confirms them")
    key("select_timeout_s", .number, .number(5), unit: "s", min: 0.1, max: 60, "an OPERATE must follow its SELECT within this")
    key("unsolicited", .bool, .bool(true), "send unsolicited responses: the null one at start, then events of the classes the master enables")
    key("unsolicited_retries", .number, .number(3), min: 0, max: 100, "repeats of an unconfirmed unsolicited response before it is given up")
    key("unsolicited_confirm_timeout_s", .number, .number(5), unit: "s", min: 0.5, max: 600, "wait this long for the master's confirm before a repeat")
    key("remote_validity_s", .number, .number(300), unit: "s", min: 1, max: 86_400, "a remote set point operated on g41 holds for this long")
    for c in 1...3 {
        key("event_buffer_class\(c)", .number, .contextual("`event_buffer`"), min: 1, max: 10_000, "events of class \(c) kept until the master confirms them")
    }
    for g in ConfigKeys.dnp3PointGroups {
        key("class_\(g.name)", .number, .number(Double(g.defaultClass)), min: 0, max: 3, "event class of the points \(g.points) (0: static only, no events)")
        if let d = g.deadband {
            key(g.deadbandKey, .number, d.value.map { .number($0) } ?? .contextual(d.text), unit: g.unit, min: 0,
                "an event when one of the points \(g.points) moved more than this since its last event, in the point's unit")
        }
    }

    table = "oscp"
    key("listen", .string, .string("127.0.0.1"), "address our endpoint listens on")
    key("port", .number, .number(8090), min: 1, max: 65_535, "its port")
    key("our_base_url", .string, .required, "our base URL as the FP reaches it")
    key("fp_base_url", .string, .required, "the FP's base URL for registration")
    // Declared so that a token left in lmc.toml gets an error saying where it goes, not "unknown key".
    key("fp_token", .string, .contextual("not accepted"), "refused here (lmc.toml is group-readable): the token for our first `register` goes in `credentials_file`")
    key("token", .string, .contextual("not accepted"), "refused here (lmc.toml is group-readable): the token the FP must send us goes in `credentials_file`")
    key("credentials_file", .string, .contextual("required"), "the root-only file (or systemd credential) with `token` and `fp_token`")
    key("heartbeat_interval_s", .number, .number(30), unit: "s", min: 1, max: 3600, "the heartbeat interval we require of the FP")
    key("own_heartbeat_default_s", .number, .number(60), unit: "s", min: 1, max: 3600, "our heartbeat interval when the FP asks for none")
    key("forecast_minutes", .number, .number(15), unit: "min", min: 1, max: 1440, "CONSUMPTION blocks reach this far ahead")
    key("refresh_s", .number, .number(300), unit: "s", min: 5, max: 86_400, "forecasts are re-sent this often without a change")
    key("tls_certificate", .string, .none, "serve HTTPS: certificate (PEM)")
    key("tls_key", .string, .none, "serve HTTPS: key (PEM)")
    key("ca_file", .string, .contextual("system store"), "CA that signs the FP's certificate")
    key("client_ca_file", .string, .none, "mutual TLS: the CA of the FP's client certificate")
    key("allow_plain_http", .bool, .bool(false), "plain HTTP off loopback")
    key("fp_allowed_base_urls", .strings, .empty, "further origins the FP may name in its `register`")
    key("max_connections", .number, .number(8), min: 1, max: 64, "inbound OSCP connections served at once")
    key("request_deadline_s", .number, .number(10), unit: "s", min: 1, max: 120, "the whole inbound request must arrive within this")
    return out
}
