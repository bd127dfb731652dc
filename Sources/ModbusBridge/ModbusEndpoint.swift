/// Where a Modbus device is reached: a TCP host and port, or a serial line.
public enum ModbusEndpoint: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case rtu(SerialLine)

    public var description: String {
        switch self {
        case let .tcp(host, port): "tcp \(host):\(port)"
        case let .rtu(line): "rtu \(line)"
        }
    }

    /// Parses "HOST:PORT" (IPv6 as "[::1]:502"); the port defaults to 502.
    public static func parseTCP(_ text: String) throws(EndpointParseError) -> ModbusEndpoint {
        var host = Substring(text)
        var port = 502
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .init(text: text, why: "missing ']' after IPv6 address") }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { throw .init(text: text, why: "expected :PORT after ']'") }
                port = p
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else {
                throw .init(text: text, why: "port '\(host[host.index(after: colon)...])' is not a number")
            }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw .init(text: text, why: "empty host") }
        guard (1...65535).contains(port) else { throw .init(text: text, why: "port \(port) is outside 1–65535") }
        return .tcp(host: String(host), port: port)
    }
}

public struct EndpointParseError: Error, Sendable, CustomStringConvertible {
    public var text: String
    public var why: String
    public var description: String { "'\(text)': \(why) (expected HOST:PORT, e.g. 192.168.1.20:502)" }
}

/// A serial line and its framing. RS-485 mode asks the UART driver to drive the transceiver's
/// direction pin (TIOCSRS485); USB adapters with automatic direction control do not need it.
public struct SerialLine: Sendable, Equatable, CustomStringConvertible {
    public enum Parity: String, Sendable, CaseIterable {
        case none = "N", even = "E", odd = "O"
    }

    public var device: String
    public var baud: Int
    public var parity: Parity
    public var dataBits: Int
    public var stopBits: Int
    public var rs485: Bool

    public init(device: String, baud: Int = 9600, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1, rs485: Bool = false) {
        self.device = device
        self.baud = baud
        self.parity = parity
        self.dataBits = dataBits
        self.stopBits = stopBits
        self.rs485 = rs485
    }

    public var description: String {
        "\(device) \(baud) \(dataBits)\(parity.rawValue)\(stopBits)\(rs485 ? " rs485" : "")"
    }

    /// Modbus RTU needs 3.5 character times of silence between frames (spec §2.5.1.1); above 19200
    /// baud the spec fixes it at 1.75 ms. One character is 11 bits (start, 8 data, parity or 2nd stop).
    public var interFrameGapMicroseconds: Int {
        baud > 19200 ? 1750 : (35 * 11 * 1_000_000) / (10 * max(baud, 1))
    }
}

/// Timeouts and reconnect behaviour of one client.
public struct ModbusClientOptions: Sendable, Equatable {
    /// Time allowed for the first byte of a reply (and for a TCP connect).
    public var responseTimeoutMilliseconds: Int
    /// Time allowed between two bytes of one reply.
    public var byteTimeoutMilliseconds: Int
    public var reconnect: ReconnectPolicy

    public init(responseTimeoutMilliseconds: Int = 250, byteTimeoutMilliseconds: Int = 50, reconnect: ReconnectPolicy = .init()) {
        self.responseTimeoutMilliseconds = responseTimeoutMilliseconds
        self.byteTimeoutMilliseconds = byteTimeoutMilliseconds
        self.reconnect = reconnect
    }
}

/// Bounded exponential backoff between reconnect attempts. A field box reconnects for ever, but never
/// hammers a device that is rebooting, and never waits longer than `maximumMilliseconds`.
public struct ReconnectPolicy: Sendable, Equatable {
    public var initialMilliseconds: Int
    public var maximumMilliseconds: Int
    public var multiplier: Int

    public init(initialMilliseconds: Int = 100, maximumMilliseconds: Int = 5000, multiplier: Int = 2) {
        self.initialMilliseconds = initialMilliseconds
        self.maximumMilliseconds = maximumMilliseconds
        self.multiplier = multiplier
    }

    /// The delay after `failures` consecutive failed attempts (1-based).
    public func delayMilliseconds(afterFailures failures: Int) -> Int {
        var d = initialMilliseconds
        var i = 1
        while i < failures && d < maximumMilliseconds {
            d *= max(multiplier, 1)
            i += 1
        }
        return min(d, maximumMilliseconds)
    }
}
