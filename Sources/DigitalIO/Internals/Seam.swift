#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CGPIOD

/// The one place where DigitalIO calls libgpiod (1.6 API, Debian bookworm).
///
/// A chip opened while a ``GPIOSimulator`` is bound to the current task or thread belongs to that
/// simulator: every later call on it and its lines goes there (the handle remembers its backend, so a
/// line released after the binding ended never reaches libgpiod with a simulated handle). There is no
/// GPIO chip on CI machines; the simulator stands in for the kernel at this single seam, records what
/// the outputs did and when, and can force any errno on the Nth call.
enum Seam {
    static func chipOpen(_ descr: String, _ sim: GPIOSimulator?) -> OpaquePointer? {
        #if LMC_TEST_HOOKS
        if let sim { return sim.chipOpen(descr) }
        #endif
        return gpiod_chip_open_lookup(descr)
    }

    static func chipClose(_ chip: OpaquePointer, _ sim: GPIOSimulator?) {
        #if LMC_TEST_HOOKS
        if let sim { return sim.chipClose(chip) }
        #endif
        gpiod_chip_close(chip)
    }

    static func chipName(_ chip: OpaquePointer, _ sim: GPIOSimulator?) -> String {
        #if LMC_TEST_HOOKS
        if let sim { return sim.chipName(chip) }
        #endif
        return String(cString: gpiod_chip_name(chip))
    }

    static func chipLabel(_ chip: OpaquePointer, _ sim: GPIOSimulator?) -> String {
        #if LMC_TEST_HOOKS
        if let sim { return sim.chipLabel(chip) }
        #endif
        return String(cString: gpiod_chip_label(chip))
    }

    static func chipLineCount(_ chip: OpaquePointer, _ sim: GPIOSimulator?) -> Int {
        #if LMC_TEST_HOOKS
        if let sim { return sim.chipLineCount(chip) }
        #endif
        return Int(gpiod_chip_num_lines(chip))
    }

    static func chipGetLine(_ chip: OpaquePointer, _ offset: Int, _ sim: GPIOSimulator?) -> OpaquePointer? {
        #if LMC_TEST_HOOKS
        if let sim { return sim.chipGetLine(chip, offset) }
        #endif
        return gpiod_chip_get_line(chip, UInt32(offset))
    }

    static func lineName(_ line: OpaquePointer, _ sim: GPIOSimulator?) -> String? {
        #if LMC_TEST_HOOKS
        if let sim { return sim.lineName(line) }
        #endif
        return gpiod_line_name(line).map { String(cString: $0) }
    }

    static func lineConsumer(_ line: OpaquePointer, _ sim: GPIOSimulator?) -> String? {
        #if LMC_TEST_HOOKS
        if let sim { return sim.lineConsumer(line) }
        #endif
        return gpiod_line_consumer(line).map { String(cString: $0) }
    }

    static func lineIsOutput(_ line: OpaquePointer, _ sim: GPIOSimulator?) -> Bool {
        #if LMC_TEST_HOOKS
        if let sim { return sim.lineIsOutput(line) }
        #endif
        return gpiod_line_direction(line) == Int32(GPIOD_LINE_DIRECTION_OUTPUT)
    }

    static func requestInput(_ line: OpaquePointer, _ consumer: String, _ flags: Int32, _ sim: GPIOSimulator?) -> Int32 {
        #if LMC_TEST_HOOKS
        if let sim { return sim.request(line, consumer: consumer, flags: flags, output: false, edges: false, initial: 0) }
        #endif
        return gpiod_line_request_input_flags(line, consumer, flags)
    }

    static func requestBothEdges(_ line: OpaquePointer, _ consumer: String, _ flags: Int32, _ sim: GPIOSimulator?) -> Int32 {
        #if LMC_TEST_HOOKS
        if let sim { return sim.request(line, consumer: consumer, flags: flags, output: false, edges: true, initial: 0) }
        #endif
        return gpiod_line_request_both_edges_events_flags(line, consumer, flags)
    }

    static func requestOutput(_ line: OpaquePointer, _ consumer: String, _ flags: Int32, _ initial: Int32, _ sim: GPIOSimulator?) -> Int32 {
        #if LMC_TEST_HOOKS
        if let sim { return sim.request(line, consumer: consumer, flags: flags, output: true, edges: false, initial: initial) }
        #endif
        return gpiod_line_request_output_flags(line, consumer, flags, initial)
    }

    static func release(_ line: OpaquePointer, _ sim: GPIOSimulator?) {
        #if LMC_TEST_HOOKS
        if let sim { return sim.release(line) }
        #endif
        gpiod_line_release(line)
    }

    static func getValue(_ line: OpaquePointer, _ sim: GPIOSimulator?) -> Int32 {
        #if LMC_TEST_HOOKS
        if let sim { return sim.getValue(line) }
        #endif
        return gpiod_line_get_value(line)
    }

    static func setValue(_ line: OpaquePointer, _ value: Int32, _ sim: GPIOSimulator?) -> Int32 {
        #if LMC_TEST_HOOKS
        if let sim { return sim.setValue(line, value) }
        #endif
        return gpiod_line_set_value(line, value)
    }

    /// 1: an event is ready, 0: timed out, -1: error.
    static func eventWait(_ line: OpaquePointer, _ timeoutNs: Int, _ sim: GPIOSimulator?) -> Int32 {
        #if LMC_TEST_HOOKS
        if let sim { return sim.eventWait(line, timeoutNs) }
        #endif
        var ts = timespec(tv_sec: timeoutNs / 1_000_000_000, tv_nsec: timeoutNs % 1_000_000_000)
        return gpiod_line_event_wait(line, &ts)
    }

    /// Reads one event: (rising, kernel timestamp in ns) or nil with errno set.
    static func eventRead(_ line: OpaquePointer, _ sim: GPIOSimulator?) -> (rising: Bool, timestampNs: UInt64)? {
        #if LMC_TEST_HOOKS
        if let sim { return sim.eventRead(line) }
        #endif
        var ev = gpiod_line_event()
        guard gpiod_line_event_read(line, &ev) == 0 else { return nil }
        return (ev.event_type == Int32(GPIOD_LINE_EVENT_RISING_EDGE),
                UInt64(ev.ts.tv_sec) * 1_000_000_000 + UInt64(ev.ts.tv_nsec))
    }

    static let flagActiveLow = Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW)
    static let flagOpenDrain = Int32(GPIOD_LINE_REQUEST_FLAG_OPEN_DRAIN)
    static let flagOpenSource = Int32(GPIOD_LINE_REQUEST_FLAG_OPEN_SOURCE)
    static let flagBiasDisable = Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE)
    static let flagPullDown = Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN)
    static let flagPullUp = Int32(GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP)
}

