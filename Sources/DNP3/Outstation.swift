/// The outstation as a pure state machine: a request fragment, the time and the database in; the
/// response fragment, controls to carry out and the new state out. No I/O, no clock of its own.

public enum CommandStatus: UInt8, Sendable, Equatable {
    case success = 0, timeout = 1, noSelect = 2, formatError = 3, notSupported = 4, alreadyActive = 5, hardwareError = 6
    case local = 7, tooManyObjects = 8, notAuthorized = 9, outOfRange = 12
}

public struct OutstationConfig: Sendable, Equatable {
    /// This outstation's link address.
    public var localAddress: UInt16
    /// The masters' link addresses: frames from any other source are dropped.
    public var masterAddresses: Set<UInt16>
    /// The largest response fragment (opendnp3's masters accept 2048).
    public var maxFragment: Int
    /// An OPERATE must follow its SELECT within this time.
    public var selectTimeoutMs: UInt64
    /// Event buffer capacity for classes 1, 2 and 3.
    public var eventBuffer: [Int]
    /// Site analog outputs that take operates (one per configured site); the rest of the site block
    /// answers NOT_SUPPORTED. Outputs past the site block (the heartbeat) always take operates.
    public var outputsInService: Int = .max
    /// Unsolicited responses: the null one at start, then events of the classes the master enables.
    public var unsolicited: Bool
    /// Repeats of an unconfirmed unsolicited response before it is given up.
    public var unsolicitedRetries: Int
    public var unsolicitedConfirmTimeoutMs: UInt64

    public init(localAddress: UInt16 = 1024, masterAddresses: Set<UInt16> = [1], maxFragment: Int = 2048,
                selectTimeoutMs: UInt64 = 5_000, eventBuffer: [Int] = [100, 100, 100], unsolicited: Bool = true,
                unsolicitedRetries: Int = 3, unsolicitedConfirmTimeoutMs: UInt64 = 5_000) {
        self.localAddress = localAddress; self.masterAddresses = masterAddresses; self.maxFragment = maxFragment
        self.selectTimeoutMs = selectTimeoutMs; self.eventBuffer = eventBuffer
        self.unsolicited = unsolicited; self.unsolicitedRetries = unsolicitedRetries; self.unsolicitedConfirmTimeoutMs = unsolicitedConfirmTimeoutMs
    }
}

public struct OutstationClock: Sendable, Equatable {
    /// The box's wall clock, ms since 1970 UTC.
    public var utcMs: UInt64
    /// Monotonic ms (select timeouts).
    public var monoMs: UInt64
    public init(utcMs: UInt64, monoMs: UInt64) { self.utcMs = utcMs; self.monoMs = monoMs }
}

public struct Outstation: Sendable {
    /// An operate carried out: the loop takes it (a remote set point) and logs it with the master.
    public struct Operation: Sendable, Equatable {
        public var index: Int
        /// In the map's SI unit (W).
        public var value: Double
        public var function: FunctionCode
        public var master: UInt16
        public var atMonoMs: UInt64
        /// 41: an analog output (`value` in its unit); 12: a binary output (`value` the CROB's control code).
        public var group: UInt8 = 41
    }

    public struct Output: Sendable, Equatable {
        /// The response fragment, nil when none is due (CONFIRM, DIRECT OPERATE NR, an unparseable fragment).
        public var response: [UInt8]?
        public var operations: [Operation] = []
        /// Why nothing was answered, or what was refused (for the log).
        public var note: String?
    }

    public let map: PointMap
    public let config: OutstationConfig
    public private(set) var values: PointValues
    public private(set) var events: EventBuffers
    public private(set) var iin: IIN = [.deviceRestart, .needTime]
    /// Master time minus the box's clock, set by a time write (events are stamped with the master's time).
    public private(set) var timeOffsetMs: Int64 = 0
    public private(set) var unsolicitedClasses: Set<UInt8> = []
    /// The last value operated on each analog output (read back as g40).
    public private(set) var outputs: [Double?]
    /// The last control code operated on each binary output (read back as g10).
    public private(set) var binaryOutputCodes: [UInt8?]
    /// Sequence and events of the last response that asked for a confirmation.
    public private(set) var pendingConfirm: (seq: UInt8, ids: Set<UInt64>)?
    private var select: (seq: UInt8, body: [UInt8], atMonoMs: UInt64)?
    public private(set) var pendingUnsolicited: PendingUnsolicited?
    /// The restart's null unsolicited response was confirmed (events may follow).
    public private(set) var nullUnsolicitedConfirmed = false
    /// Unsolicited responses given up after their retries.
    public private(set) var unsolicitedGivenUp = 0
    /// The last unsolicited response with events was given up, and none has been confirmed since.
    public private(set) var unsolicitedFailing = false
    private var unsolicitedSeq: UInt8 = 0
    private var unsolicitedHoldUntilMs: UInt64 = 0
    private var recordedTimeUtcMs: UInt64?
    private var reported: PointValues
    private var hasValues = false
    private var nextEventID: UInt64 = 1

    public init(map: PointMap = .standard, config: OutstationConfig = .init()) {
        self.map = map
        self.config = config
        values = PointValues(map: map)
        reported = values
        events = EventBuffers(capacity: config.eventBuffer)
        outputs = Array(repeating: nil, count: map.outputs.count)
        binaryOutputCodes = Array(repeating: nil, count: map.binaryOutputs.count)
    }

    public func dnp3Time(_ clock: OutstationClock) -> UInt64 { UInt64(max(0, Int64(clock.utcMs) + timeOffsetMs)) }

    // MARK: Database

    /// A new picture of every point (SI units). The first one sets the values without events; after
    /// that, a binary that changes, or an analog or counter that moves past its deadband since it was
    /// last reported, becomes an event of its class.
    public mutating func update(_ v: PointValues, clock: OutstationClock) {
        let t = dnp3Time(clock)
        defer { values = v; hasValues = true }
        guard hasValues else { reported = v; return }
        for p in map.binaries where p.index < v.binaries.count {
            let new = v.binaries[p.index], old = reported.binaries[p.index]
            guard new != old else { continue }
            reported.binaries[p.index] = new
            addEvent(p, value: new == true ? 1 : 0, online: new != nil, time: t)
        }
        for p in map.analogs where p.index < v.analogs.count {
            let new = v.analogs[p.index].map { $0 * p.scale }, old = reported.analogs[p.index].map { $0 * p.scale }
            let moved: Bool
            switch (new, old) {
            case (nil, nil): moved = false
            case (let n?, let o?): moved = n.isNaN != o.isNaN || abs(n - o) > p.deadband
            default: moved = true
            }
            guard moved else { continue }
            reported.analogs[p.index] = v.analogs[p.index]
            addEvent(p, value: new ?? 0, online: new != nil, time: t)
        }
        for p in map.counters where p.index < v.counters.count {
            let new = v.counters[p.index], old = reported.counters[p.index]
            let moved: Bool
            switch (new, old) {
            case (nil, nil): moved = false
            case (let n?, let o?): moved = Double(n &- o) > p.deadband && n != o
            default: moved = true
            }
            guard moved else { continue }
            reported.counters[p.index] = new
            addEvent(p, value: Double(new ?? 0), online: new != nil, time: t)
        }
    }

    /// A closed half hour's record: the analog points given take these values (SI units, nil: none)
    /// and each becomes an event of its class stamped `endUtcMs` (the half hour's end on the box's
    /// clock, plus the master's time offset), whatever its deadband: the historian gets one record a
    /// half hour. Later pictures must carry the same values, so ``update(_:clock:)`` sees no change.
    public mutating func recordHalfHour(_ analogs: [Int: Double?], endUtcMs: UInt64) {
        let t = UInt64(max(0, Int64(endUtcMs) + timeOffsetMs))
        for (i, v) in analogs.sorted(by: { $0.key < $1.key }) where i < map.analogs.count {
            values.analogs[i] = v
            reported.analogs[i] = v
            let p = map.analogs[i]
            addEvent(p, value: (v ?? 0) * p.scale, online: v != nil, time: t)
        }
    }

    private mutating func addEvent(_ p: PointSpec, value: Double, online: Bool, time: UInt64) {
        guard (1...3).contains(p.eventClass) else { return }
        events.add(Event(id: nextEventID, type: p.type, index: p.index, value: value, online: online, timeMs: time, eventClass: p.eventClass))
        nextEventID += 1
    }

    /// IIN as of now, with `unsent` the events not carried by the response being built.
    func currentIIN(unsent: [Event]) -> IIN {
        var i = iin
        if unsent.contains(where: { $0.eventClass == 1 }) { i.insert(.class1Events) }
        if unsent.contains(where: { $0.eventClass == 2 }) { i.insert(.class2Events) }
        if unsent.contains(where: { $0.eventClass == 3 }) { i.insert(.class3Events) }
        if events.overflow { i.insert(.eventBufferOverflow) }
        return i
    }

    // MARK: Requests

    /// One request fragment from link address `source`.
    public mutating func handle(_ fragment: [UInt8], source: UInt16, clock: OutstationClock) -> Output {
        let req: Request
        do { req = try Request.parse(fragment) } catch { return Output(response: nil, note: "dropped: \(error)") }
        let seq = req.control.seq
        if req.function == .confirm {
            if !req.control.uns, let p = pendingConfirm, p.seq == seq {
                events.remove(p.ids)
                pendingConfirm = nil
            } else if req.control.uns, let p = pendingUnsolicited, p.seq == seq {
                events.remove(p.ids)
                if p.ids.isEmpty { nullUnsolicitedConfirmed = true }
                pendingUnsolicited = nil
                unsolicitedFailing = false
            }
            return Output(response: nil)
        }
        // Any new request ends the wait for a confirm: its events stay and are sent again.
        pendingConfirm = nil
        var out = Output(response: nil)
        let control = AppControl(seq: seq)
        func simple(_ extra: IIN) -> [UInt8] {
            FragmentWriter(control: control, limit: config.maxFragment).finish(iin: currentIIN(unsent: events.events).union(extra))
        }
        if let err = req.headerError, req.function != .read {
            // Reads answer what they could parse; other functions act on nothing when a header is bad.
            let bit: IIN = if case .unknownObject = err { .objectUnknown } else { .parameterError }
            out.response = simple(bit)
            out.note = "\(req.function.map { "\($0)" } ?? "function \(req.functionByte)"): \(err)"
            return out
        }
        switch req.function {
        case .read?:
            out.response = read(req, control: control, clock: clock)
        case .write?:
            out.response = simple(write(req, clock: clock))
        case .select?, .operate?, .directOperate?, .directOperateNoResponse?:
            let (resp, ops) = operate(req, fragment: fragment, source: source, clock: clock)
            out.operations = ops
            out.response = req.function == .directOperateNoResponse ? nil : resp
        case .enableUnsolicited?, .disableUnsolicited?:
            var bad: IIN = []
            for h in req.headers {
                if h.group == 60, (2...4).contains(h.variation), h.range == .all {
                    let c = h.variation - 1
                    if req.function == .enableUnsolicited { unsolicitedClasses.insert(c) } else { unsolicitedClasses.remove(c) }
                } else { bad.insert(.parameterError) }
            }
            if req.headers.isEmpty { bad.insert(.parameterError) }
            out.response = simple(bad)
        case .delayMeasure?:
            // The delay is the time between receiving this request and sending the answer: below a
            // millisecond here (the runner answers at once).
            var w = FragmentWriter(control: control, limit: config.maxFragment)
            w.single(group: 52, variation: 2, data: u16(0))
            out.response = w.finish(iin: currentIIN(unsent: events.events))
        case .recordCurrentTime?:
            recordedTimeUtcMs = clock.utcMs
            out.response = simple([])
        default:
            out.response = simple(.noFunctionSupport)
            out.note = "function \(req.functionByte) is not supported"
        }
        return out
    }

    // MARK: WRITE

    private mutating func write(_ req: Request, clock: OutstationClock) -> IIN {
        var bad: IIN = []
        if req.headers.isEmpty { return .parameterError }
        for h in req.headers {
            switch (h.group, h.variation) {
            case (80, 1):
                for o in h.objects {
                    if o.index == 7 && o.data == [0] { iin.remove(.deviceRestart) } else { bad.insert(.parameterError) }
                }
            case (50, 1):
                guard h.objects.count == 1 else { bad.insert(.parameterError); continue }
                let t = DNP3Time.decode(h.objects[0].data)
                timeOffsetMs = Int64(t) - Int64(clock.utcMs)
                iin.remove(.needTime)
            case (50, 3):
                guard h.objects.count == 1, let recorded = recordedTimeUtcMs else { bad.insert(.parameterError); continue }
                // The master's time when it sent RECORD CURRENT TIME, which we received at `recorded`.
                let t = DNP3Time.decode(h.objects[0].data)
                timeOffsetMs = Int64(t) - Int64(recorded)
                recordedTimeUtcMs = nil
                iin.remove(.needTime)
            default:
                bad.insert(.objectUnknown)
            }
        }
        return bad
    }

    // MARK: Controls

    private mutating func operate(_ req: Request, fragment: [UInt8], source: UInt16, clock: OutstationClock) -> ([UInt8], [Operation]) {
        let fn = req.function!
        let seq = req.control.seq
        let body = Array(fragment.dropFirst(2))
        var extra: IIN = []
        var ops: [Operation] = []
        // First pass: the status of each object.
        var statuses: [[CommandStatus]] = []
        var values: [[Double]] = []
        var selectStatus: CommandStatus? = nil
        if fn == .operate {
            if let s = select, s.body == body, s.seq == (seq &- 1) & 0x0F {
                if clock.monoMs &- s.atMonoMs > config.selectTimeoutMs { selectStatus = .timeout }
            } else {
                selectStatus = .noSelect
            }
            select = nil
        }
        if req.headers.isEmpty { extra.insert(.parameterError) }
        for h in req.headers {
            var st: [CommandStatus] = [], vs: [Double] = []
            let prefixed = h.qualifier == 0x17 || h.qualifier == 0x28 || h.qualifier == 0x27
            for o in h.objects {
                if h.group == 12, h.variation == 1, prefixed, o.data.count == 11 {
                    // A CROB: PULSE_ON/OFF or LATCH_ON/OFF (op type 1-4) on a binary output that exists.
                    let op = o.data[0] & 0x0F
                    vs.append(Double(o.data[0]))
                    if Int(o.index) >= binaryOutputCodes.count || !(1...4).contains(op) { st.append(.notSupported) }
                    else if !config.masterAddresses.contains(source) { st.append(.notAuthorized) }
                    else { st.append(selectStatus ?? .success) }
                    continue
                }
                guard h.group == 41, prefixed else { st.append(.notSupported); vs.append(0); continue }
                let d = o.data
                let v: Double
                switch h.variation {
                case 1: v = Double(Int32(bitPattern: le32(d)))
                case 2: v = Double(Int16(bitPattern: UInt16(d[0]) | UInt16(d[1]) << 8))
                case 3: v = Double(Float(bitPattern: le32(d)))
                default: v = Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(d[$1]) << (8 * UInt64($1)) })
                }
                vs.append(v)
                // Site outputs beyond the configured sites answer NOT_SUPPORTED; the heartbeat (past the
                // site block) is always in service.
                if Int(o.index) >= outputs.count || (Int(o.index) < PointMap.maxSites && Int(o.index) >= config.outputsInService) { st.append(.notSupported) }
                else if !v.isFinite || v < 0 { st.append(.outOfRange) }
                else if !config.masterAddresses.contains(source) { st.append(.notAuthorized) }
                else { st.append(selectStatus ?? .success) }
            }
            statuses.append(st); values.append(vs)
        }
        let allOK = !statuses.isEmpty && statuses.allSatisfy { $0.allSatisfy { $0 == .success } }
        if fn == .select {
            select = allOK ? (seq, body, clock.monoMs) : nil
        } else if allOK {
            for (h, vs) in zip(req.headers, values) {
                for (o, v) in zip(h.objects, vs) {
                    if h.group == 12 {
                        binaryOutputCodes[Int(o.index)] = UInt8(v)
                        ops.append(Operation(index: Int(o.index), value: v, function: fn, master: source, atMonoMs: clock.monoMs, group: 12))
                        continue
                    }
                    let spec = map.outputs[Int(o.index)]
                    let si = v / spec.scale
                    outputs[Int(o.index)] = si
                    ops.append(Operation(index: Int(o.index), value: si, function: fn, master: source, atMonoMs: clock.monoMs))
                }
            }
        }
        // The echo: the request's objects, each with its status.
        var w = FragmentWriter(control: AppControl(seq: seq), limit: config.maxFragment)
        for (h, st) in zip(req.headers, statuses) {
            let prefix = h.qualifier == 0x17 ? 1 : (h.qualifier == 0x28 || h.qualifier == 0x27) ? 2 : 0
            let countSize = h.qualifier == 0x28 || h.qualifier == 0x08 || h.qualifier == 0x01 ? 2 : 1
            var bytes = Array(h.raw.prefix(3))
            switch h.range {
            case .count(let n): bytes += countSize == 2 ? u16(Int(n)) : [UInt8(n)]
            case .startStop(let a, let b): bytes += countSize == 2 ? u16(Int(a)) + u16(Int(b)) : [UInt8(a), UInt8(b)]
            case .all: break
            }
            for (o, s) in zip(h.objects, st) {
                if prefix == 1 { bytes.append(UInt8(o.index)) } else if prefix == 2 { bytes += u16(Int(o.index)) }
                var d = o.data
                if !d.isEmpty { d[d.count - 1] = s.rawValue }
                bytes += d
            }
            w.append(bytes)
        }
        return (w.finish(iin: currentIIN(unsent: events.events).union(extra)), ops)
    }

    // MARK: READ

    private mutating func read(_ req: Request, control: AppControl, clock: OutstationClock) -> [UInt8] {
        var w = FragmentWriter(control: control, limit: config.maxFragment)
        var extra: IIN = []
        if let err = req.headerError {
            if case .unknownObject = err { extra.insert(.objectUnknown) } else { extra.insert(.parameterError) }
        }
        // Events asked for: by class, or by type (with an optional count limit).
        var wanted: [(filter: (Event) -> Bool, limit: Int?, variation: UInt8)] = []
        var statics: [(PointType, UInt8, [Int]?)] = []   // type, variation (0: default), indices (nil: all)
        for h in req.headers {
            let limit: Int? = if case .count(let n) = h.range, h.qualifier == 0x07 || h.qualifier == 0x08 { Int(n) } else { nil }
            func indices(_ t: PointType) -> [Int]? {
                let n = map.points(t).count
                switch h.range {
                case .all: return nil
                case .startStop(let a, let b):
                    if Int(b) >= n { extra.insert(.parameterError) }
                    return Int(a) < n ? Array(Int(a)...min(Int(b), n - 1)) : []
                case .count:
                    if h.qualifier == 0x07 || h.qualifier == 0x08 { return Array(0..<min(limit ?? 0, n)) }
                    let idx = h.objects.map { Int($0.index) }
                    if idx.contains(where: { $0 >= n }) { extra.insert(.parameterError) }
                    return idx.filter { $0 < n }
                }
            }
            switch (h.group, h.variation) {
            case (60, 1):
                guard h.range == .all else { extra.insert(.parameterError); continue }
                for t in [PointType.binaryInput, .counter, .analogInput, .analogOutput, .binaryOutput] { statics.append((t, 0, nil)) }
            case (60, 2), (60, 3), (60, 4):
                let c = h.variation - 1
                wanted.append(({ $0.eventClass == c }, limit, 0))
            case (1, 0), (1, 2): statics.append((.binaryInput, 2, indices(.binaryInput)))
            case (30, 0), (30, 1), (30, 3), (30, 5): statics.append((.analogInput, h.variation == 0 ? 5 : h.variation, indices(.analogInput)))
            case (20, 0), (20, 1), (20, 5): statics.append((.counter, h.variation == 0 ? 1 : h.variation, indices(.counter)))
            case (40, 0), (40, 1), (40, 3): statics.append((.analogOutput, h.variation == 0 ? 3 : h.variation, indices(.analogOutput)))
            case (10, 0), (10, 2): statics.append((.binaryOutput, 2, indices(.binaryOutput)))
            case (2, 0), (2, 1), (2, 2): wanted.append(({ $0.type == .binaryInput }, limit, h.variation))
            case (32, 0), (32, 1), (32, 3), (32, 5), (32, 7): wanted.append(({ $0.type == .analogInput }, limit, h.variation))
            case (22, 0), (22, 1), (22, 5): wanted.append(({ $0.type == .counter }, limit, h.variation))
            default: extra.insert(.objectUnknown)
            }
        }
        // Static data first, in the order asked.
        for (t, v, idx) in statics {
            let points = map.points(t)
            let list = idx ?? points.map(\.index)
            guard !list.isEmpty else { continue }
            let (g, dv) = t.staticGV
            let variation = v == 0 ? dv : v
            // Contiguous runs become start-stop headers.
            var runStart = 0
            for k in 1...list.count {
                if k < list.count && list[k] == list[k - 1] + 1 { continue }
                let run = Array(list[runStart..<k])
                let objects = run.map { staticObject(t, index: $0, variation: variation) }
                let size = 7 + objects.reduce(0) { $0 + $1.count }
                if size <= w.remaining { w.range(group: g, variation: variation, start: run[0], objects: objects) }
                runStart = k
            }
        }
        // Events, oldest first, while they fit (not those in flight in an unsolicited response).
        let inFlight = pendingUnsolicited?.ids ?? []
        let sent = Self.appendEvents(&w, events.events.filter { !inFlight.contains($0.id) }, wanted: wanted, encode: eventObject)
        var sentIDs = Set<UInt64>()
        for e in sent { sentIDs.insert(e.id) }
        if !sentIDs.isEmpty {
            w.setControl(AppControl(fir: true, fin: true, con: true, uns: false, seq: control.seq))
            pendingConfirm = (control.seq, sentIDs)
        }
        return w.finish(iin: currentIIN(unsent: events.events.filter { !sentIDs.contains($0.id) }).union(extra))
    }

    /// Writes the events `wanted` picks (each with its variation, 0: the default) in order, grouped
    /// under 0x28 headers, while they fit. Returns those written.
    static func appendEvents(_ w: inout FragmentWriter, _ candidates: [Event], wanted: [(filter: (Event) -> Bool, limit: Int?, variation: UInt8)],
                             encode: (Event, UInt8) -> [UInt8]) -> [Event] {
        func gv(_ e: Event, _ v: UInt8) -> (UInt8, UInt8) { let (g, dv) = e.type.eventGV!; return (g, v == 0 ? dv : v) }
        var sent: [Event] = []
        guard !wanted.isEmpty else { return sent }
        var picked: [(Event, UInt8)] = []
        var counts = Array(repeating: 0, count: wanted.count)
        for e in candidates {
            for (k, want) in wanted.enumerated() where want.filter(e) && (want.limit.map { counts[k] < $0 } ?? true) {
                counts[k] += 1
                picked.append((e, want.variation))
                break
            }
        }
        // Group consecutive events of one group and variation under one 0x28 header.
        var k = 0
        while k < picked.count {
            let (g, v) = gv(picked[k].0, picked[k].1)
            var objs: [(index: Int, data: [UInt8])] = []
            var batch: [Event] = []
            var size = 5
            var j = k
            while j < picked.count, gv(picked[j].0, picked[j].1) == (g, v) {
                let data = encode(picked[j].0, v)
                if size + 2 + data.count > w.remaining { break }
                size += 2 + data.count
                objs.append((picked[j].0.index, data)); batch.append(picked[j].0)
                j += 1
            }
            if objs.isEmpty { break }
            w.indexed(group: g, variation: v, objects: objs)
            sent += batch
            if j < picked.count, gv(picked[j].0, picked[j].1) == (g, v) { break } // full
            k = j
        }
        return sent
    }

    private func eventGV(_ e: Event, requested v: UInt8) -> (UInt8, UInt8) {
        let (g, dv) = e.type.eventGV!
        return (g, v == 0 ? dv : v)
    }

    func staticObject(_ t: PointType, index i: Int, variation v: UInt8) -> [UInt8] {
        switch t {
        case .binaryInput:
            let b = values.binaries[i]
            return [(b == nil ? 0x04 : 0x01) | (b == true ? 0x80 : 0)]
        case .analogInput:
            let spec = map.analogs[i]
            return analogObject(values.analogs[i].map { $0 * spec.scale }, variation: v)
        case .counter:
            let c = values.counters[i]
            let flags: UInt8 = c == nil ? 0x04 : 0x01
            let bytes = le(UInt32(c ?? 0))
            return v == 5 ? bytes : [flags] + bytes
        case .analogOutput:
            let spec = map.outputs[i]
            // Analog output status: 1 32-bit, 3 float, both with flags.
            let o = outputs[i].map { $0 * spec.scale }
            let flags: UInt8 = 0x01
            if v == 1 { return [flags] + le(UInt32(bitPattern: clampInt32(o ?? 0).0)) }
            return [flags] + le(Float(o ?? 0).bitPattern)
        case .binaryOutput:
            // Output status with flags: ONLINE; state 1 after a LATCH_ON or PULSE_ON.
            let op = (binaryOutputCodes[i] ?? 0) & 0x0F
            return [0x01 | (op == 1 || op == 3 ? 0x80 : 0)]
        }
    }

    /// Analog inputs: 1 32-bit with flags, 3 32-bit, 5 float with flags.
    func analogObject(_ value: Double?, variation v: UInt8) -> [UInt8] {
        var flags: UInt8 = value == nil ? 0x04 : 0x01
        switch v {
        case 1, 3:
            let (i, over) = clampInt32(value ?? 0)
            if over { flags |= 0x20 }
            return v == 1 ? [flags] + le(UInt32(bitPattern: i)) : le(UInt32(bitPattern: i))
        default:
            return [flags] + le(Float(value ?? 0).bitPattern)
        }
    }

    func eventObject(_ e: Event, variation v: UInt8) -> [UInt8] {
        let time = DNP3Time.encode(e.timeMs)
        switch e.type {
        case .binaryInput:
            let flags: UInt8 = (e.online ? 0x01 : 0x04) | (e.value != 0 ? 0x80 : 0)
            return v == 1 ? [flags] : [flags] + time
        case .analogInput:
            // 1: 32-bit, 3: 32-bit with time, 5: float, 7: float with time (all with flags).
            let base = analogObject(e.online ? e.value : nil, variation: v == 1 || v == 3 ? 1 : 5)
            return v == 3 || v == 7 ? base + time : base
        case .counter:
            let base = [e.online ? UInt8(0x01) : 0x04] + le(UInt32(clamping: Int64(e.value)))
            return v == 5 ? base + time : base
        case .analogOutput, .binaryOutput:
            return []
        }
    }

    // MARK: Unsolicited responses

    /// An unsolicited response sent and not yet confirmed.
    public struct PendingUnsolicited: Sendable, Equatable {
        public var seq: UInt8
        public var ids: Set<UInt64>
        public var fragment: [UInt8]
        public var sentAtMonoMs: UInt64
        /// Sends after the first.
        public var retries: Int
    }

    /// A new master connection: an unsolicited response in flight is sent again at once to it.
    public mutating func connectionOpened() {
        if var p = pendingUnsolicited { p.sentAtMonoMs = 0; p.retries = 0; pendingUnsolicited = p }
        unsolicitedHoldUntilMs = 0
    }

    /// What to send unprompted now, if anything (the runner asks every turn while a master is
    /// connected): first the null unsolicited response of a restart, until confirmed; then events of
    /// the classes the master enabled. Each is repeated with the same sequence number every
    /// `unsolicitedConfirmTimeoutMs` until confirmed, at most `unsolicitedRetries` times; then it is
    /// given up (its events stay for the next one or a poll) and counted.
    public mutating func pollUnsolicited(clock: OutstationClock) -> [UInt8]? {
        guard config.unsolicited else { return nil }
        if var p = pendingUnsolicited {
            guard p.sentAtMonoMs == 0 || clock.monoMs &- p.sentAtMonoMs >= config.unsolicitedConfirmTimeoutMs else { return nil }
            let first = p.sentAtMonoMs == 0 && p.retries == 0
            if !first && p.retries >= config.unsolicitedRetries && !(p.ids.isEmpty && !nullUnsolicitedConfirmed) {
                pendingUnsolicited = nil
                unsolicitedGivenUp += 1
                unsolicitedFailing = true
                unsolicitedHoldUntilMs = clock.monoMs + config.unsolicitedConfirmTimeoutMs
                return nil
            }
            if !first { p.retries += 1 }
            p.sentAtMonoMs = max(1, clock.monoMs)
            pendingUnsolicited = p
            return p.fragment
        }
        guard clock.monoMs >= unsolicitedHoldUntilMs else { return nil }
        let control = AppControl(fir: true, fin: true, con: true, uns: true, seq: unsolicitedSeq)
        var w = FragmentWriter(control: control, function: .unsolicitedResponse, limit: config.maxFragment)
        var sent: [Event] = []
        if nullUnsolicitedConfirmed {
            let classes = unsolicitedClasses
            let solicited = pendingConfirm?.ids ?? []
            let candidates = events.events.filter { classes.contains($0.eventClass) && !solicited.contains($0.id) }
            guard !candidates.isEmpty else { return nil }
            sent = Self.appendEvents(&w, candidates, wanted: [({ _ in true }, nil, 0)], encode: eventObject)
            guard !sent.isEmpty else { return nil }
        }
        let ids = Set(sent.map(\.id))
        let fragment = w.finish(iin: currentIIN(unsent: events.events.filter { !ids.contains($0.id) }))
        pendingUnsolicited = PendingUnsolicited(seq: unsolicitedSeq, ids: ids, fragment: fragment, sentAtMonoMs: max(1, clock.monoMs), retries: 0)
        unsolicitedSeq = (unsolicitedSeq + 1) & 0x0F
        return fragment
    }
}

func le(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF), UInt8(v >> 24)] }
func le32(_ d: [UInt8]) -> UInt32 { UInt32(d[0]) | UInt32(d[1]) << 8 | UInt32(d[2]) << 16 | UInt32(d[3]) << 24 }
func clampInt32(_ v: Double) -> (Int32, Bool) {
    guard v.isFinite else { return (0, true) }
    let r = v.rounded()
    if r > Double(Int32.max) { return (Int32.max, true) }
    if r < Double(Int32.min) { return (Int32.min, true) }
    return (Int32(r), false)
}
