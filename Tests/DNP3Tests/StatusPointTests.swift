import LMCConfig
import Testing
@testable import DNP3

/// The status binaries (breaker aux, blind, deaf), the heartbeat output, and `[dnp3]`'s classes,
/// deadbands and event buffers per class, on the pure outstation.
@Suite struct StatusPointTests {
    let clock = OutstationClock(utcMs: 1_700_000_000_000, monoMs: 10_000)

    /// The flags byte of binary input `i` in a class 0 poll's g1v2 block (start 0, one byte each).
    func binaryFlags(_ o: inout Outstation, _ i: Int) throws -> UInt8 {
        let r = try #require(o.handle(bytes("C3 01 01 02 00 00 \(String(format: "%02X", o.map.binaries.count - 1))"), source: 1, clock: clock).response)
        try #require(Array(r[4..<7]) == [1, 2, 0x00])
        return r[9 + i]
    }

    @Test func breakerBlindAndDeafAreBinariesAndAnUnknownIsNeverAGoodValue() throws {
        var o = Outstation()
        var v = PointValues(map: .standard)
        v.binaries[PointMap.BI.breakerClosed(0)] = true
        v.binaries[PointMap.BI.breakerClosed(1)] = false
        v.binaries[PointMap.BI.breakerClosed(2)] = nil            // the aux contact could not be read
        v.binaries[PointMap.BI.mpBlind(0)] = true
        v.binaries[PointMap.BI.siteDeaf(0)] = false
        o.update(v, clock: clock)
        #expect(try binaryFlags(&o, PointMap.BI.breakerClosed(0)) == 0x81, "ONLINE, state 1")
        #expect(try binaryFlags(&o, PointMap.BI.breakerClosed(1)) == 0x01, "ONLINE, state 0")
        #expect(try binaryFlags(&o, PointMap.BI.breakerClosed(2)) == 0x04, "COMM_LOST, not ONLINE")
        #expect(try binaryFlags(&o, PointMap.BI.mpBlind(0)) == 0x81)
        #expect(try binaryFlags(&o, PointMap.BI.siteDeaf(0)) == 0x01)
        #expect(try binaryFlags(&o, PointMap.BI.siteDeaf(1)) == 0x04, "a site without a relay this cycle: unknown")
        // The contact stops answering: a class 1 event of the point, COMM_LOST, not a state.
        v.binaries[PointMap.BI.breakerClosed(0)] = nil
        o.update(v, clock: clock)
        let e = try #require(o.events.events.last)
        #expect(e.type == .binaryInput && e.index == PointMap.BI.breakerClosed(0) && e.eventClass == 1 && !e.online)
        #expect(o.eventObject(e, variation: 2).first == 0x04)
        // The names are those the map documents.
        #expect(o.map.binaries[PointMap.BI.breakerClosed(3)].name == "site[3].breaker_closed")
        #expect(o.map.binaries[PointMap.BI.mpBlind(7)].name == "mp[7].blind")
        #expect(o.map.binaries[PointMap.BI.siteDeaf(7)].name == "site[7].deaf")
        #expect(Set(o.map.binaries.map(\.index)) == Set(0..<o.map.binaries.count), "indices without gaps")
    }

    @Test func theHeartbeatOutputTakesOperatesWhateverTheSitesInService() throws {
        var o = Outstation(config: { var c = OutstationConfig(); c.outputsInService = 1; return c }())
        // DIRECT OPERATE g41v3 (float 1.0), qualifier 0x28: index 8, the heartbeat.
        let hb = o.handle(bytes("C1 05 29 03 28 01 00 08 00 00 00 80 3F 00"), source: 1, clock: clock)
        #expect(hb.response?.last == CommandStatus.success.rawValue)
        #expect(hb.operations.map(\.index) == [PointMap.AO.heartbeat])
        #expect(o.map.outputs[PointMap.AO.heartbeat].name == "upstream.heartbeat")
        // Site 3 is not configured: NOT_SUPPORTED, nothing operated.
        let site3 = o.handle(bytes("C2 05 29 03 28 01 00 03 00 00 00 80 3F 00"), source: 1, clock: clock)
        #expect(site3.response?.last == CommandStatus.notSupported.rawValue && site3.operations.isEmpty)
        // Index 9 does not exist.
        #expect(o.handle(bytes("C3 05 29 03 28 01 00 09 00 00 00 80 3F 00"), source: 1, clock: clock).response?.last == CommandStatus.notSupported.rawValue)
    }

    @Test func aCROBOnBinaryOutput0IsAHeartbeatAndReadsBack() throws {
        var o = Outstation()
        // DIRECT OPERATE g12v1 qualifier 0x28, index 0: LATCH_ON (03), count 1, on/off 0 ms.
        let on = o.handle(bytes("C1 05 0C 01 28 01 00 00 00 03 01 00 00 00 00 00 00 00 00 00"), source: 1, clock: clock)
        #expect(on.response?.last == CommandStatus.success.rawValue)
        #expect(on.operations.map(\.group) == [12] && on.operations.map(\.index) == [PointMap.BO.heartbeat] && on.operations.map(\.value) == [3])
        #expect(o.outputs.allSatisfy { $0 == nil }, "a CROB sets no analog output")
        // g10v2 reads back state 1, ONLINE.
        let r = try #require(o.handle(bytes("C2 01 0A 02 00 00 00"), source: 1, clock: clock).response)
        #expect(Array(r[4..<10]) == [10, 2, 0x00, 0, 0, 0x81])
        // SELECT then OPERATE of PULSE_ON (01) works too; NUL (00) and op types past 4 are refused.
        let body = "0C 01 28 01 00 00 00 01 01 64 00 00 00 00 00 00 00 00"
        #expect(o.handle(bytes("C3 03 " + body), source: 1, clock: clock).response?.last == CommandStatus.success.rawValue)
        #expect(o.handle(bytes("C4 04 " + body), source: 1, clock: clock).operations.map(\.group) == [12])
        #expect(o.handle(bytes("C5 05 0C 01 28 01 00 00 00 00 01 00 00 00 00 00 00 00 00 00"), source: 1, clock: clock).response?.last == CommandStatus.notSupported.rawValue)
        #expect(o.handle(bytes("C6 05 0C 01 28 01 00 00 00 07 01 00 00 00 00 00 00 00 00 00"), source: 1, clock: clock).response?.last == CommandStatus.notSupported.rawValue)
        #expect(o.map.binaryOutputs.map(\.name) == ["upstream.heartbeat"])
    }

    @Test func aGroupsClassAndDeadbandChangeWhichEventsItMakes() {
        func events(_ map: PointMap, _ steps: [Double]) -> [Event] {
            var o = Outstation(map: map)
            var v = PointValues(map: map)
            for x in steps { v.analogs[PointMap.AI.mpValue(0)] = x; o.update(v, clock: clock) }
            return o.events.events
        }
        let steps: [Double] = [400_000, 402_000, 409_000]
        // The map's default: class 2, 1 kVA: both steps are events.
        let standard = events(.standard(mpUnits: [.voltAmps]), steps)
        #expect(standard.map(\.eventClass) == [2, 2])
        // class_mp_value = 1, deadband_mp_value = 5000: only the second step, in class 1.
        let set = events(.standard(mpUnits: [.voltAmps], groups: .init(classes: [.mp_value: 1], deadbands: [.mp_value: 5_000])), steps)
        #expect(set.map(\.eventClass) == [1] && set.map(\.value) == [409_000])
        // class 0: static only.
        #expect(events(.standard(mpUnits: [.voltAmps], groups: .init(classes: [.mp_value: 0])), steps).isEmpty)
        // A deadband on a group without one (codes) is ignored; its class applies.
        let codes = PointMap.standard(mpUnits: [], groups: .init(classes: [.codes: 3], deadbands: [.codes: 9]))
        #expect(codes.analogs[PointMap.AI.mpState(0)].eventClass == 3 && codes.analogs[PointMap.AI.mpState(0)].deadband == 0)
        #expect(codes.analogs[PointMap.AI.siteBoundBy(5)].eventClass == 3)
        // Every point but `cycles` and the outputs is in a group.
        #expect(PointMap.standard.binaries.allSatisfy { $0.group != nil } && PointMap.standard.analogs.allSatisfy { $0.group != nil })
        #expect(PointMap.standard.counters.filter { $0.group == nil }.map(\.name) == ["cycles"])
        for g in PointGroup.allCases {
            let points = (PointMap.standard.binaries + PointMap.standard.analogs + PointMap.standard.counters).filter { $0.group == g }
            #expect(!points.isEmpty && points.allSatisfy { $0.eventClass == g.defaultClass }, "\(g): the map's classes are the group's default")
            if let d = g.defaultDeadband { #expect(points.allSatisfy { $0.deadband == d }, "\(g): deadband \(d)") }
        }
    }

    @Test func eachClassHasItsOwnEventBuffer() throws {
        var o = Outstation(config: OutstationConfig(eventBuffer: [2, 5, 5]))
        var v = PointValues(map: .standard)
        v.binaries[0] = false
        v.analogs[PointMap.AI.mpValue(0)] = 0
        o.update(v, clock: clock)
        for k in 1...4 {
            v.binaries[0] = k % 2 == 1                                 // class 1
            v.analogs[PointMap.AI.mpValue(0)] = Double(k) * 10_000      // class 2
            o.update(v, clock: clock)
        }
        #expect(o.events.count(class: 1) == 2 && o.events.count(class: 2) == 4)
        #expect(o.events.overflow && o.events.dropped == 2, "class 1 overflowed; class 2 kept all four")
    }
}


/// `[dnp3]`'s class and deadband keys (Keys.swift) are the map's point groups, with the same defaults.
@Suite struct PointGroupKeyTests {
    @Test func everyPointGroupHasItsKeysWithTheMapsDefaults() throws {
        let declared = ConfigKeys.dnp3PointGroups
        #expect(declared.map(\.name) == PointGroup.allCases.map(\.rawValue))
        for g in PointGroup.allCases {
            let d = try #require(declared.first { $0.name == g.rawValue })
            #expect(d.defaultClass == Int(g.defaultClass), "\(g): class")
            #expect((d.deadband != nil) == (g.defaultDeadband != nil), "\(g): has a deadband")
            // mp_value's default depends on the MP's unit (the key's is contextual); the others are equal.
            if g != .mp_value { #expect(d.deadband?.value == g.defaultDeadband, "\(g): deadband") }
            #expect(ConfigKeys.find(table: "dnp3", name: "class_\(g.rawValue)") != nil)
            if g.defaultDeadband != nil { #expect(ConfigKeys.find(table: "dnp3", name: d.deadbandKey) != nil) }
        }
    }
}
