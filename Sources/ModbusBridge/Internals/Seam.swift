#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CModbus
import LMCPlatform

/// The one place where ModbusBridge calls libmodbus.
///
/// Like swift-system's `Internals/Syscalls.swift`: every C call is a thin static function here, and each
/// one first asks the fault plan of the current task or thread (`ModbusFaultPlan.current`) whether it
/// must fail instead. Tests force a timeout, CRC error, exception or lost connection on the Nth call
/// without fakes anywhere else in the code.
enum Seam {
    @inline(__always)
    private static func intercept(_ call: ModbusFaultPlan.Call) -> Bool {
        guard let plan = ModbusFaultPlan.current, let e = plan.check(call) else { return false }
        errno = e
        return true
    }

    // MARK: Contexts

    static func newTCP(_ node: String, _ service: String) -> OpaquePointer? {
        if intercept(.newContext) { return nil }
        return modbus_new_tcp_pi(node, service)
    }

    static func newTCPServer(_ ip: String, _ port: Int32) -> OpaquePointer? {
        if intercept(.newContext) { return nil }
        return modbus_new_tcp(ip, port)
    }

    static func newRTU(_ device: String, _ baud: Int32, _ parity: CChar, _ dataBits: Int32, _ stopBits: Int32) -> OpaquePointer? {
        if intercept(.newContext) { return nil }
        return modbus_new_rtu(device, baud, parity, dataBits, stopBits)
    }

    static func free(_ ctx: OpaquePointer) { modbus_free(ctx) }

    static func connect(_ ctx: OpaquePointer) -> Int32 {
        if intercept(.connect) { return -1 }
        return modbus_connect(ctx)
    }

    static func close(_ ctx: OpaquePointer) { modbus_close(ctx) }

    static func flush(_ ctx: OpaquePointer) -> Int32 { modbus_flush(ctx) }

    static func setSlave(_ ctx: OpaquePointer, _ unit: Int32) -> Int32 {
        if intercept(.setUnit) { return -1 }
        return modbus_set_slave(ctx, unit)
    }

    static func setResponseTimeout(_ ctx: OpaquePointer, milliseconds ms: Int) -> Int32 {
        modbus_set_response_timeout(ctx, UInt32(ms / 1000), UInt32((ms % 1000) * 1000))
    }

    static func setByteTimeout(_ ctx: OpaquePointer, milliseconds ms: Int) -> Int32 {
        modbus_set_byte_timeout(ctx, UInt32(ms / 1000), UInt32((ms % 1000) * 1000))
    }

    static func setIndicationTimeout(_ ctx: OpaquePointer, milliseconds ms: Int) -> Int32 {
        modbus_set_indication_timeout(ctx, UInt32(ms / 1000), UInt32((ms % 1000) * 1000))
    }

    static func setRS485(_ ctx: OpaquePointer) -> Int32 {
        if intercept(.setSerialMode) { return -1 }
        return modbus_rtu_set_serial_mode(ctx, MODBUS_RTU_RS485)
    }

    static func getSocket(_ ctx: OpaquePointer) -> Int32 { modbus_get_socket(ctx) }
    static func setSocket(_ ctx: OpaquePointer, _ s: Int32) -> Int32 { modbus_set_socket(ctx, s) }
    static func headerLength(_ ctx: OpaquePointer) -> Int32 { modbus_get_header_length(ctx) }

    // MARK: Client transactions

    static func readRegisters(_ ctx: OpaquePointer, _ addr: Int32, _ n: Int32, _ dest: UnsafeMutablePointer<UInt16>) -> Int32 {
        if intercept(.readHoldingRegisters) { return -1 }
        return modbus_read_registers(ctx, addr, n, dest)
    }

    static func readInputRegisters(_ ctx: OpaquePointer, _ addr: Int32, _ n: Int32, _ dest: UnsafeMutablePointer<UInt16>) -> Int32 {
        if intercept(.readInputRegisters) { return -1 }
        return modbus_read_input_registers(ctx, addr, n, dest)
    }

    static func readBits(_ ctx: OpaquePointer, _ addr: Int32, _ n: Int32, _ dest: UnsafeMutablePointer<UInt8>) -> Int32 {
        if intercept(.readCoils) { return -1 }
        return modbus_read_bits(ctx, addr, n, dest)
    }

    static func readInputBits(_ ctx: OpaquePointer, _ addr: Int32, _ n: Int32, _ dest: UnsafeMutablePointer<UInt8>) -> Int32 {
        if intercept(.readDiscreteInputs) { return -1 }
        return modbus_read_input_bits(ctx, addr, n, dest)
    }

    static func writeRegister(_ ctx: OpaquePointer, _ addr: Int32, _ value: UInt16) -> Int32 {
        if intercept(.writeRegister) { return -1 }
        return modbus_write_register(ctx, addr, value)
    }

    static func writeRegisters(_ ctx: OpaquePointer, _ addr: Int32, _ n: Int32, _ src: UnsafePointer<UInt16>) -> Int32 {
        if intercept(.writeRegisters) { return -1 }
        return modbus_write_registers(ctx, addr, n, src)
    }

    static func writeBit(_ ctx: OpaquePointer, _ addr: Int32, _ on: Bool) -> Int32 {
        if intercept(.writeCoil) { return -1 }
        return modbus_write_bit(ctx, addr, on ? 1 : 0)
    }

    static func writeBits(_ ctx: OpaquePointer, _ addr: Int32, _ n: Int32, _ src: UnsafePointer<UInt8>) -> Int32 {
        if intercept(.writeCoils) { return -1 }
        return modbus_write_bits(ctx, addr, n, src)
    }

    // MARK: Server side

    static func mappingNew(bitsStart: UInt32, bits: UInt32, inputBitsStart: UInt32, inputBits: UInt32,
                           registersStart: UInt32, registers: UInt32, inputRegistersStart: UInt32,
                           inputRegisters: UInt32) -> UnsafeMutablePointer<modbus_mapping_t>? {
        if intercept(.newContext) { return nil }
        return modbus_mapping_new_start_address(bitsStart, bits, inputBitsStart, inputBits,
                                                registersStart, registers, inputRegistersStart, inputRegisters)
    }

    static func mappingFree(_ m: UnsafeMutablePointer<modbus_mapping_t>) { modbus_mapping_free(m) }

    static func tcpListen(_ ctx: OpaquePointer, _ backlog: Int32) -> Int32 {
        if intercept(.listen) { return -1 }
        return modbus_tcp_listen(ctx, backlog)
    }

    static func tcpAccept(_ ctx: OpaquePointer, _ s: inout Int32) -> Int32 {
        if intercept(.accept) { return -1 }
        return modbus_tcp_accept(ctx, &s)
    }

    static func receive(_ ctx: OpaquePointer, _ buf: UnsafeMutablePointer<UInt8>) -> Int32 {
        if intercept(.receive) { return -1 }
        return modbus_receive(ctx, buf)
    }

    static func reply(_ ctx: OpaquePointer, _ req: UnsafePointer<UInt8>, _ len: Int32,
                      _ map: UnsafeMutablePointer<modbus_mapping_t>) -> Int32 {
        if intercept(.reply) { return -1 }
        return modbus_reply(ctx, req, len, map)
    }

    static func replyException(_ ctx: OpaquePointer, _ req: UnsafePointer<UInt8>, _ code: UInt32) -> Int32 {
        if intercept(.reply) { return -1 }
        return modbus_reply_exception(ctx, req, code)
    }

    static func sendRaw(_ ctx: OpaquePointer, _ frame: UnsafePointer<UInt8>, _ len: Int32) -> Int32 {
        if intercept(.reply) { return -1 }
        return modbus_send_raw_request(ctx, frame, len)
    }

    // MARK: The TCP server's sockets (plain POSIX: framing is ours, ModbusPDU.swift)

    static func serverSocket(_ family: Int32) -> Int32 {
        if intercept(.newContext) { return -1 }
        return socket(family, Sys.sockStream | Sys.sockCloexec | Sys.sockNonblock, 0)
    }

    static func bindAndListen(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ len: socklen_t, _ backlog: Int32) -> Int32 {
        if intercept(.listen) { return -1 }
        guard bind(fd, addr, len) == 0 else { return -1 }
        return listen(fd, backlog)
    }

    static func acceptClient(_ listener: Int32) -> Int32 {
        if intercept(.accept) { return -1 }
        let fd = Sys.accept(listener, nil, nil)
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return fd
    }

    static func recv(_ fd: Int32, _ p: UnsafeMutableRawPointer?, _ n: Int) -> Int {
        if intercept(.receive) { return -1 }
        return Sys.recv(fd, p, n, 0)
    }

    /// Never blocks (the socket is non-blocking) and never raises SIGPIPE.
    static func send(_ fd: Int32, _ p: UnsafeRawPointer?, _ n: Int) -> Int {
        if intercept(.reply) { return -1 }
        return Sys.send(fd, p, n, Int32(MSG_NOSIGNAL))
    }
}
