import Testing
@testable import DNP3

/// The pure outstation: requests as opendnp3 sends them, answers checked byte by byte where the
/// layout matters and field by field elsewhere.
@Suite struct OutstationTests {
    let clock = OutstationClock(utcMs: 1_700_000_000_000, monoMs: 10_000)

    func values(mp0: Double? = 12_000, limit0: Double? = 40_000, alarm0: Bool = false, trips: UInt32 = 3) -> PointValues {
        var v = PointValues(map: .standard)
        v.analogs[PointMap.AI.mpValue(0)] = mp0
        v.analogs[PointMap.AI.mpLimit(0)] = limit0
        v.binaries[PointMap.BI.alarm(0)] = alarm0
        v.counters[PointMap.CI.trips] = trips
        return v
    }

    func iin(_ r: [UInt8]?) -> IIN { IIN(rawValue: UInt16(r![2]) | UInt16(r![3]) << 8) }

    @Test func startsWithRestartAndNeedTimeAndClearsThemOnWrites() throws {
        var o = Outstation()
        o.update(values(), clock: clock)
        let poll = o.handle(bytes("C0 01 3C 01 06"), source: 1, clock: clock)
        #expect(iin(poll.response) == [.deviceRestart, .needTime])
        // WRITE g80v1 index 7 = 0 (how opendnp3 clears the restart IIN).
        let clear = o.handle(bytes("C1 02 50 01 00 07 07 00"), source: 1, clock: clock)
        #expect(iin(clear.response) == [.needTime])
        // WRITE g50v1: the master's time is 5 s ahead of the box.
        let t = DNP3Time.encode(clock.utcMs + 5_000)
        let sync = o.handle([0xC2, 0x02, 50, 1, 0x07, 1] + t, source: 1, clock: clock)
        #expect(iin(sync.response) == [])
        #expect(o.timeOffsetMs == 5_000)
        #expect(sync.response!.prefix(2) == [0xC2, 0x81])
    }

    @Test func class0ReportsEveryStaticPointWithItsFlags() throws {
        var o = Outstation()
        o.update(values(), clock: clock)
        let r = try #require(o.handle(bytes("C3 01 3C 01 06"), source: 1, clock: clock).response)
        // First header: g1v2 0..<binaries, start-stop, one flag byte each.
        let nb = PointMap.standard.binaries.count
        #expect(Array(r[4..<9]) == [1, 2, 0x00, 0, UInt8(nb - 1)])
        #expect(r[9] == 0x01)   // alarm 0 false, online
        #expect(r[10] == 0x04)  // alarm 1: no value, comm lost
        // Then g20v1, then g30v5 with mp[0].value = 12000.0 first.
        var p = 9 + nb
        #expect(Array(r[p..<p + 3]) == [20, 1, 0x00])
        p += 5 + 5 * PointMap.standard.counters.count
        #expect(Array(r[p..<p + 3]) == [30, 5, 0x00])
        #expect(Array(r[p + 5..<p + 10]) == [0x01] + le(Float(12_000).bitPattern))
    }

    @Test func anEventPastTheDeadbandIsSentUntilConfirmed() throws {
        var o = Outstation()
        o.update(values(), clock: clock)
        o.update(values(limit0: 40_050), clock: clock)           // within the 100 W deadband
        #expect(o.events.events.isEmpty)
        let later = OutstationClock(utcMs: clock.utcMs + 1_000, monoMs: clock.monoMs + 1_000)
        o.update(values(limit0: 40_500), clock: later)
        #expect(o.events.events.count == 1)
        let poll = try #require(o.handle(bytes("C4 01 3C 02 06"), source: 1, clock: later).response)
        #expect(AppControl(poll[0]).con)
        #expect(!iin(poll).contains(.class1Events))
        // g32v7, qualifier 0x28, one object at index 1: flags, float, time.
        #expect(Array(poll[4..<11]) == [32, 7, 0x28, 1, 0, 1, 0])
        #expect(Array(poll[11..<16]) == [0x01] + le(Float(40_500).bitPattern))
        #expect(DNP3Time.decode(Array(poll[16..<22])) == later.utcMs)
        // A confirm with another sequence removes nothing; the right one does.
        _ = o.handle(bytes("C5 00"), source: 1, clock: later)
        #expect(o.events.events.count == 1)
        _ = o.handle(bytes("C4 00"), source: 1, clock: later)
        #expect(o.events.events.isEmpty)
    }

    @Test func unconfirmedEventsAreSentAgain() throws {
        var o = Outstation()
        o.update(values(), clock: clock)
        o.update(values(alarm0: true), clock: clock)
        let first = try #require(o.handle(bytes("C1 01 3C 02 06"), source: 1, clock: clock).response)
        let again = try #require(o.handle(bytes("C2 01 3C 02 06"), source: 1, clock: clock).response)
        #expect(first.dropFirst(4) == again.dropFirst(4))
        #expect(Array(again[4..<7]) == [2, 2, 0x28])
    }

    @Test func overflowDropsTheOldestAndRaisesIIN23UntilThereIsRoom() throws {
        var o = Outstation(config: .init(eventBuffer: [2, 2, 2]))
        o.update(values(), clock: clock)
        for k in 1...3 { o.update(values(alarm0: k % 2 == 1), clock: clock) }
        #expect(o.events.count(class: 1) == 2)
        let r = try #require(o.handle(bytes("C1 01 3C 02 06"), source: 1, clock: clock).response)
        #expect(iin(r).contains(.eventBufferOverflow))
        _ = o.handle(bytes("C1 00"), source: 1, clock: clock)
        let after = try #require(o.handle(bytes("C2 01 3C 01 06"), source: 1, clock: clock).response)
        #expect(!iin(after).contains(.eventBufferOverflow))
    }

    @Test func selectThenOperateMatchesSequenceObjectsAndTimeout() throws {
        var o = Outstation()
        let select = bytes("C1 03 29 03 28 01 00 00 00 00 00 7A 44 00")   // g41v3 index 0 = 1000.0
        let operate = bytes("C2 04 29 03 28 01 00 00 00 00 00 7A 44 00")
        let s = try #require(o.handle(select, source: 1, clock: clock).response)
        #expect(s.last == CommandStatus.success.rawValue)
        #expect(o.handle(select, source: 1, clock: clock).operations.isEmpty)   // a select operates nothing
        let op = o.handle(operate, source: 1, clock: clock)
        #expect(op.operations == [.init(index: 0, value: 1000, function: .operate, master: 1, atMonoMs: clock.monoMs)])
        #expect(op.response?.last == CommandStatus.success.rawValue)
        // An operate without a select, or after the select timed out.
        #expect(o.handle(operate, source: 1, clock: clock).response?.last == CommandStatus.noSelect.rawValue)
        _ = o.handle(select, source: 1, clock: clock)
        let late = OutstationClock(utcMs: clock.utcMs, monoMs: clock.monoMs + 6_000)
        let t = o.handle(operate, source: 1, clock: late)
        #expect(t.response?.last == CommandStatus.timeout.rawValue && t.operations.isEmpty)
        #expect(o.outputs[0] == 1000)
    }

    @Test func directOperateNoResponseOperatesSilently() {
        var o = Outstation()
        let r = o.handle(bytes("C1 06 29 01 17 01 02 88 13 00 00 00"), source: 1, clock: clock)   // g41v1 index 2 = 5000
        #expect(r.response == nil)
        #expect(r.operations.map(\.value) == [5000])
    }

    @Test func refusedControlsCarryTheirStatus() {
        var o = Outstation()
        // Index 20 does not exist; a negative set point is out of range; a CROB on a binary output that
        // does not exist (5: only 0, the heartbeat, does) is not supported.
        #expect(o.handle(bytes("C1 05 29 03 28 01 00 14 00 00 00 7A 44 00"), source: 1, clock: clock).response?.last == CommandStatus.notSupported.rawValue)
        #expect(o.handle(bytes("C1 05 29 03 28 01 00 00 00 00 00 7A C4 00"), source: 1, clock: clock).response?.last == CommandStatus.outOfRange.rawValue)
        let crob = o.handle(bytes("C1 05 0C 01 28 01 00 05 00 03 01 E8 03 00 00 00 00 00 00 00"), source: 1, clock: clock)
        #expect(crob.response?.last == CommandStatus.notSupported.rawValue && crob.operations.isEmpty)
    }

    @Test func unknownFunctionsObjectsAndRangesGetTheirIIN() throws {
        var o = Outstation()
        o.update(values(), clock: clock)
        #expect(iin(o.handle(bytes("C1 11"), source: 1, clock: clock).response).contains(.noFunctionSupport))   // function 17
        #expect(iin(o.handle(bytes("C1 01 63 01 06"), source: 1, clock: clock).response).contains(.objectUnknown))
        #expect(iin(o.handle(bytes("C1 02 63 01 07 01 00"), source: 1, clock: clock).response).contains(.objectUnknown))
        let range = try #require(o.handle(bytes("C1 01 1E 05 00 00 FF"), source: 1, clock: clock).response)
        #expect(iin(range).contains(.parameterError))
        #expect(o.handle([0xC1], source: 1, clock: clock).response == nil)
    }

    @Test func readsByRangeAndByIndex() throws {
        var o = Outstation()
        o.update(values(), clock: clock)
        let r = try #require(o.handle(bytes("C1 01 1E 01 00 01 01"), source: 1, clock: clock).response)   // g30v1 index 1 only
        #expect(Array(r[4...]) == [30, 1, 0x00, 1, 1, 0x01] + le(UInt32(40_000)))
        let i = try #require(o.handle(bytes("C2 01 14 01 17 01 00"), source: 1, clock: clock).response)   // g20v1, index 0 prefixed
        #expect(Array(i[4...]) == [20, 1, 0x00, 0, 0, 0x01] + le(UInt32(3)))
    }

    @Test func lanTimeSyncUsesTheRecordedTime() throws {
        var o = Outstation()
        _ = o.handle(bytes("C1 18"), source: 1, clock: clock)                   // RECORD CURRENT TIME
        let later = OutstationClock(utcMs: clock.utcMs + 300, monoMs: clock.monoMs + 300)
        let master = clock.utcMs + 10_000                                       // the master's time when it sent it
        let r = o.handle([0xC2, 0x02, 50, 3, 0x07, 1] + DNP3Time.encode(master), source: 1, clock: later)
        #expect(!iin(r.response).contains(.needTime))
        #expect(o.dnp3Time(later) == master + 300)
        let d = try #require(o.handle(bytes("C3 17"), source: 1, clock: later).response)   // DELAY MEASURE
        #expect(Array(d[4...]) == [52, 2, 0x07, 1, 0, 0])
    }

    @Test func unsolicitedClassesFollowEnableAndDisable() {
        var o = Outstation()
        _ = o.handle(bytes("C1 14 3C 02 06 3C 03 06"), source: 1, clock: clock)
        #expect(o.unsolicitedClasses == [1, 2])
        _ = o.handle(bytes("C2 15 3C 02 06"), source: 1, clock: clock)
        #expect(o.unsolicitedClasses == [2])
    }
}

@Suite struct MapTests {
    @Test func eachMPsValueTakesItsUnitAndDeadband() {
        let m = PointMap.standard(mpUnits: [.amps, .voltAmps, .volts])
        #expect(m.analogs[PointMap.AI.mpValue(0)].unit == "A" && m.analogs[PointMap.AI.mpValue(0)].deadband == 5)
        #expect(m.analogs[PointMap.AI.mpValue(1)].unit == "VA" && m.analogs[PointMap.AI.mpValue(1)].deadband == 1000)
        #expect(m.analogs[PointMap.AI.mpValue(2)].unit == "V" && m.analogs[PointMap.AI.mpValue(2)].deadband == 2)
        // A 6 A move on a current MP is an event; the same on the standard (VA) map is not.
        var o = Outstation(map: m), s = Outstation()
        var v = PointValues(map: m)
        v.analogs[0] = 300
        let t = OutstationClock(utcMs: 0, monoMs: 0)
        o.update(v, clock: t); s.update(v, clock: t)
        v.analogs[0] = 306
        o.update(v, clock: t); s.update(v, clock: t)
        #expect(o.events.events.count == 1 && s.events.events.isEmpty)
        for p in m.analogs { #expect(p.index == m.analogs.firstIndex(of: p)) }
    }
}

/// Requests exactly as opendnp3 (dnp3-python 0.3.0b1) sent them to this outstation, copied from its
/// ALL_COMMS log in the interop test, and the answers they must get.
@Suite struct OpenDNP3CapturedRequestTests {
    let clock = OutstationClock(utcMs: 1_700_000_000_000, monoMs: 10_000)

    @Test func lanTimeSyncEnableUnsolicitedAndDirectOperate() throws {
        var o = Outstation()
        #expect(o.handle(bytes("C3 18"), source: 1, clock: clock).response == bytes("C3 81 90 00"))   // RECORD CURRENT TIME
        let write = o.handle(bytes("C4 02 32 03 07 01 78 34 D1 27 A2 01"), source: 1, clock: clock)  // WRITE g50v3
        #expect(write.response == bytes("C4 81 80 00"))
        #expect(o.dnp3Time(clock) == DNP3Time.decode(bytes("78 34 D1 27 A2 01")))
        #expect(o.handle(bytes("C5 14 3C 02 06 3C 03 06 3C 04 06"), source: 1, clock: clock).response == bytes("C5 81 80 00"))
        #expect(o.unsolicitedClasses == [1, 2, 3])
        let op = o.handle(bytes("C7 05 29 03 28 01 00 00 00 00 60 6A 46 00"), source: 1, clock: clock)   // DIRECT OPERATE g41v3
        #expect(op.response == bytes("C7 81 80 00 29 03 28 01 00 00 00 00 60 6A 46 00"))
        #expect(op.operations.map(\.value) == [15_000])
    }
}

@Suite struct UnsolicitedTests {
    func at(_ ms: UInt64) -> OutstationClock { OutstationClock(utcMs: 1_700_000_000_000 + ms, monoMs: 10_000 + ms) }

    @Test func theNullUnsolicitedResponseIsRepeatedUntilConfirmed() {
        var o = Outstation()
        let null = o.pollUnsolicited(clock: at(0))
        #expect(null == bytes("F0 82 90 00"))   // FIR FIN CON UNS seq 0, restart and need-time
        do { let r = o.pollUnsolicited(clock: at(4_999)); #expect(r == nil) }
        do { let r = o.pollUnsolicited(clock: at(5_000)); #expect(r == null, "the same response, the same sequence") }
        // Not given up after the retries: a restart must be announced.
        for k in 2...6 { let r = o.pollUnsolicited(clock: at(UInt64(k) * 5_000)); #expect(r == null) }
        _ = o.handle(bytes("D1 00"), source: 1, clock: at(30_000))   // another sequence: no
        #expect(!o.nullUnsolicitedConfirmed)
        _ = o.handle(bytes("D0 00"), source: 1, clock: at(30_000))
        #expect(o.nullUnsolicitedConfirmed)
        do { let r = o.pollUnsolicited(clock: at(40_000)); #expect(r == nil, "nothing enabled, nothing to say") }
    }

    @Test func eventsOfEnabledClassesGoOutUnsolicitedWithRetriesThenAreGivenUp() throws {
        var o = Outstation()
        var v = PointValues(map: .standard)
        v.binaries[0] = false
        o.update(v, clock: at(0))
        _ = o.pollUnsolicited(clock: at(0))
        _ = o.handle(bytes("D0 00"), source: 1, clock: at(0))
        v.binaries[0] = true
        o.update(v, clock: at(100))
        do { let r = o.pollUnsolicited(clock: at(200)); #expect(r == nil, "class 1 not enabled yet") }
        _ = o.handle(bytes("C1 14 3C 02 06"), source: 1, clock: at(300))
        let first = o.pollUnsolicited(clock: at(400))
        let u = try #require(first)
        #expect(Array(u.prefix(2)) == [0xF1, 0x82])
        #expect(Array(u[4..<11]) == [2, 2, 0x28, 1, 0, 0, 0], "g2v2, one event at index 0")
        #expect(u[11] == 0x81, "online, state on")
        // A poll meanwhile does not carry the event in flight.
        let answer = o.handle(bytes("C2 01 3C 02 06"), source: 1, clock: at(500)).response
        let poll = try #require(answer)
        #expect(poll.count == 4)
        // Three retries with the same sequence, then given up: the event stays.
        for k in 1...3 { let r = o.pollUnsolicited(clock: at(400 + UInt64(k) * 5_000)); #expect(r == u) }
        do { let r = o.pollUnsolicited(clock: at(400 + 4 * 5_000)); #expect(r == nil) }
        #expect(o.unsolicitedGivenUp == 1)
        #expect(o.unsolicitedFailing)
        #expect(o.events.count(class: 1) == 1)
        // After a pause, a new unsolicited response (next sequence) with the same event; confirmed, it goes.
        let next = o.pollUnsolicited(clock: at(400 + 5 * 5_000))
        let again = try #require(next)
        #expect(again[0] == 0xF2)
        _ = o.handle(bytes("D2 00"), source: 1, clock: at(30_000))
        #expect(o.events.events.isEmpty)
        #expect(!o.unsolicitedFailing)
    }

    @Test func aNewConnectionGetsTheResponseInFlightAtOnce() {
        var o = Outstation()
        let null = o.pollUnsolicited(clock: at(0))
        do { let r = o.pollUnsolicited(clock: at(10)); #expect(r == nil) }
        o.connectionOpened()
        do { let r = o.pollUnsolicited(clock: at(20)); #expect(r == null) }
    }

    @Test func offMeansNeverUnsolicited() {
        var o = Outstation(config: .init(unsolicited: false))
        do { let r = o.pollUnsolicited(clock: at(0)); #expect(r == nil) }
    }
}

@Suite struct HalfHourTests {
    /// Each point of a closed half hour is an event stamped at the half hour's end (plus the master's
    /// time offset), even when its value did not change; the next pictures carrying the same values
    /// add nothing.
    @Test func aClosedHalfHourIsOneEventPerPointAtItsEnd() throws {
        var o = Outstation()
        let t = OutstationClock(utcMs: 1_800_000_100, monoMs: 5)
        var v = PointValues(map: .standard)
        o.update(v, clock: t)
        _ = o.handle([0xC0, 0x02, 50, 1, 0x07, 1] + DNP3Time.encode(t.utcMs + 2_000), source: 1, clock: t)   // master 2 s ahead
        let record: [Int: Double?] = [PointMap.AI.mpHalfHourMean(0): 410_000, PointMap.AI.mpHalfHourMax(0): 498_500,
                                      PointMap.AI.siteHalfHourImport(0): nil, PointMap.AI.siteHalfHourCurtailed(0): 12.5]
        o.recordHalfHour(record, endUtcMs: 1_800_000_000)
        for (i, x) in record { v.analogs[i] = x }
        o.update(v, clock: t)
        o.recordHalfHour(record, endUtcMs: 1_801_800_000)   // the next half hour, the same values
        o.update(v, clock: t)
        let events = o.events.events
        #expect(events.count == 8)
        #expect(events.allSatisfy { $0.eventClass == 3 })
        #expect(events.prefix(4).allSatisfy { $0.timeMs == 1_800_002_000 } && events.suffix(4).allSatisfy { $0.timeMs == 1_801_802_000 })
        #expect(events.first { $0.index == PointMap.AI.siteHalfHourImport(0) }?.online == false, "not metered: no value")
        let r = try #require(o.handle(bytes("C1 01 3C 04 06"), source: 1, clock: t).response)   // class 3
        #expect(Array(r[4..<7]) == [32, 7, 0x28])
        #expect(Array(r[7..<9]) == [8, 0], "eight g32v7 events in one header")
    }
}
