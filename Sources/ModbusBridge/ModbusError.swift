#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CModbus

/// A Modbus exception code returned by a device (Modbus Application Protocol v1.1b3, §7).
public enum ModbusException: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case illegalFunction = 0x01
    case illegalDataAddress = 0x02
    case illegalDataValue = 0x03
    case serverDeviceFailure = 0x04
    case acknowledge = 0x05
    case serverDeviceBusy = 0x06
    case negativeAcknowledge = 0x07
    case memoryParityError = 0x08
    case gatewayPathUnavailable = 0x0A
    case gatewayTargetFailedToRespond = 0x0B

    public var description: String {
        switch self {
        case .illegalFunction: "exception 0x01 illegal function"
        case .illegalDataAddress: "exception 0x02 illegal data address"
        case .illegalDataValue: "exception 0x03 illegal data value"
        case .serverDeviceFailure: "exception 0x04 server device failure"
        case .acknowledge: "exception 0x05 acknowledge"
        case .serverDeviceBusy: "exception 0x06 server device busy"
        case .negativeAcknowledge: "exception 0x07 negative acknowledge"
        case .memoryParityError: "exception 0x08 memory parity error"
        case .gatewayPathUnavailable: "exception 0x0A gateway path unavailable"
        case .gatewayTargetFailedToRespond: "exception 0x0B gateway target failed to respond"
        }
    }
}

/// Every way a Modbus transaction can fail. One typed value, like swift-system's `Errno`.
public struct ModbusError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// No (complete) reply within the response timeout.
        case timeout
        /// RTU frame with a bad CRC: noise, wrong baud rate or two masters on the line.
        case crc
        /// TCP connect refused: nothing listens at that address and port.
        case connectionRefused
        /// The TCP peer closed or reset the connection, or the serial port went away mid-transaction.
        case connectionReset
        /// The device answered with a Modbus exception.
        case exception(ModbusException)
        /// A reply arrived but does not match the request (wrong unit, function, length or transaction).
        case invalidReply(String)
        /// The serial device or host could not be opened (unplugged adapter, wrong path, permissions).
        case deviceUnavailable(Int32)
        /// Not connected and the reconnect backoff has not elapsed yet; no traffic was sent.
        case notConnected(retryInMilliseconds: Int)
        /// The request was refused before sending: bad address, count or value.
        case invalidArgument(String)
        /// Any other operating-system error (errno).
        case system(Int32)
    }

    public var kind: Kind
    /// What was tried, e.g. "read input registers 0x0000+2 (unit 1)".
    public var operation: String
    /// Where, e.g. "tcp 127.0.0.1:502" or "rtu /dev/ttyS1 9600 8N1".
    public var endpoint: String
    /// The response timeout in force, for timeout messages.
    public var timeoutMilliseconds: Int

    public init(_ kind: Kind, operation: String, endpoint: String, timeoutMilliseconds: Int = 0) {
        self.kind = kind
        self.operation = operation
        self.endpoint = endpoint
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// True when the connection must be re-opened before the next request.
    public var isConnectionLoss: Bool {
        switch kind {
        case .connectionRefused, .connectionReset, .deviceUnavailable, .notConnected: true
        case .system(let e): e == EBADF || e == EPIPE || e == EIO || e == ENXIO || e == ENODEV
        default: false
        }
    }

    public var description: String {
        "\(operation) on \(endpoint): \(reason)"
    }

    /// The reason alone, with the fix where there is an obvious one.
    public var reason: String {
        switch kind {
        case .timeout:
            "timed out after \(timeoutMilliseconds) ms (check wiring, unit id, baud rate and that the device is powered)"
        case .crc:
            "bad CRC in reply (check baud rate, parity, termination and that only one master is on the line)"
        case .connectionRefused:
            "connection refused (is the device on and listening on that port?)"
        case .connectionReset:
            "connection lost (peer closed or reset it; will reconnect)"
        case .exception(let e):
            switch e {
            case .illegalDataAddress: "\(e) (the device has no such register: check the register map and 0/1-based addressing)"
            case .illegalFunction: "\(e) (the device does not support this function code: holding vs input registers?)"
            case .illegalDataValue: "\(e) (the device refused the value or count)"
            default: "\(e)"
            }
        case .invalidReply(let why):
            "invalid reply: \(why)"
        case .deviceUnavailable(let e):
            "cannot open: \(String(cString: strerror(e))) (check the path, the adapter and group membership)"
        case .notConnected(let ms):
            "not connected; next reconnect attempt in \(ms) ms"
        case .invalidArgument(let why):
            "invalid request: \(why)"
        case .system(let e):
            "\(String(cString: strerror(e))) (errno \(e))"
        }
    }

    /// Maps a libmodbus errno (after a call returned -1) to a kind.
    static func kind(fromErrno e: Int32) -> Kind {
        let base = Int32(MODBUS_ENOBASE)
        if e > base, e <= base + 0x0B, let x = ModbusException(rawValue: UInt8(e - base)) {
            return .exception(x)
        }
        switch e {
        case ETIMEDOUT: return .timeout
        case lmc_EMBBADCRC: return .crc
        case lmc_EMBBADDATA: return .invalidReply("wrong length or transaction id")
        case lmc_EMBBADEXC: return .invalidReply("malformed exception response")
        case lmc_EMBUNKEXC: return .invalidReply("unknown exception code")
        case lmc_EMBMDATA: return .invalidReply("too many data requested")
        case lmc_EMBBADSLAVE: return .invalidReply("reply from another unit id")
        case ECONNREFUSED: return .connectionRefused
        case ECONNRESET, EPIPE, ENOTCONN: return .connectionReset
        case ENOENT, EACCES, ENXIO, ENODEV: return .deviceUnavailable(e)
        case EINVAL: return .invalidArgument("rejected by libmodbus (EINVAL)")
        default: return .system(e)
        }
    }
}
