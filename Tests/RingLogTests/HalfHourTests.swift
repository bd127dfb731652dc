import Testing
@testable import RingLog

/// The half-hours ring's folding of control cycles: what the DNO's audit adds up.
@Suite struct HalfHourTests {
    // 2026-11-20T00:00:00Z
    static let day: UInt64 = 1_763_596_800
    static func ns(_ s: Double) -> UInt64 { UInt64((Double(day) + s) * 1e9) }

    static func accumulator() -> HalfHourAccumulator {
        HalfHourAccumulator(mps: [.init(name: "trafo", unit: 1, lowerLimit: false, limit: 500_000, trip: 550_000),
                                  .init(name: "busbar_v", unit: 2, lowerLimit: true, limit: 216, trip: 207)],
                            sites: [.init(name: "hub", ceilingW: 250_000)])
    }
    static func sample(_ kva: Float, volts: Float = 230, sp: Float = 250_000, imp: Float = 240_000, mode: UInt8 = 0, quality: UInt8 = 0) -> SampleRecord {
        SampleRecord(mode: mode, mps: [.init(value: kva * 1000, quality: quality), .init(value: volts, quality: 0)],
                     sites: [.init(setPointW: sp, boundBy: 1, importW: imp)])
    }

    /// One sample a second over [from, to): returns the records closed on the way.
    static func feed(_ a: inout HalfHourAccumulator, from: Double, to: Double, wallOffset: Double = 0,
                     _ make: (Double) -> SampleRecord) -> [HalfHourRecord] {
        var out: [HalfHourRecord] = []
        var t = from
        while t < to {
            if let r = a.add(make(t), wallNs: ns(t + wallOffset), monoNs: UInt64(t * 1e9)) { out.append(r) }
            t += 1
        }
        return out
    }

    @Test func aHalfHourClosesAtTheBoundaryWithItsExtremesAndSeconds() throws {
        var a = Self.accumulator()
        // 00:00–00:30: 400 kVA, except 120 s at 520 (over the limit) and 10 s at 560 (over the trip).
        let closed = Self.feed(&a, from: 0, to: 1801) { t in
            Self.sample(t >= 600 && t < 720 ? 520 : (t >= 900 && t < 910 ? 560 : 400))
        }
        #expect(closed.count == 1)
        let h = closed[0]
        #expect(h.periodStart == UInt32(Self.day))
        #expect(h.secondsCovered == 1799, "the first sample has no time before it")
        #expect(h.secondsInMode[0] == 1799)
        let m = h.mps[0]
        #expect(m.name == "trafo" && m.unit == 1 && m.limit == 500_000 && m.trip == 550_000)
        #expect(m.min == 400_000 && m.max == 560_000)
        #expect(m.secondsBeyondLimit == 130 && m.secondsBeyondTrip == 10)
        let expectedMean: Double = 400_000 + Double(120 * 120_000 + 10 * 160_000) / 1799.0
        #expect(abs(Double(m.mean) - expectedMean) < 50)
        // A lower limit counts seconds below it.
        #expect(h.mps[1].lowerLimit && h.mps[1].secondsBeyondLimit == 0)
        // Site: never restricted, 240 kW imported for 1799 s.
        let s = h.sites[0]
        #expect(s.secondsRestricted == 0 && s.curtailedKWh == 0 && s.importMetered)
        #expect(abs(Double(s.importedKWh) - 240 * 1799 / 3600) < 0.01)
    }

    @Test func curtailedEnergyCountsOnlyWhenTheSiteWantedMore() throws {
        var a = Self.accumulator()
        // 600 s at a 150 kW set point drawing all of it, 600 s at 150 kW drawing 60 kW (it wanted no more),
        // 600 s at 150 kW with the import not metered.
        _ = Self.feed(&a, from: 0, to: 1800) { t in
            t < 600 ? Self.sample(480, sp: 150_000, imp: 149_000) : t < 1200 ? Self.sample(480, sp: 150_000, imp: 60_000) : Self.sample(480, sp: 150_000, imp: .nan)
        }
        let hClosed = a.finish()
        let h = try #require(hClosed)
        let s = h.sites[0]
        #expect(abs(s.secondsRestricted - 1799) < 0.01)
        // (250 − 150) kW × (599 + 600) s: the first and the unmetered third; the second wanted less.
        #expect(abs(Double(s.curtailedKWh) - 100 * 1199 / 3600) < 0.05, "\(s.curtailedKWh)")
        #expect(!s.importMetered, "part of the period had no import reading: an upper bound")
        #expect(s.setPointMinW == 150_000)
        #expect(a.finish() == nil, "finish leaves nothing open")
    }

    @Test func badSamplesAreCountedNotAveraged() throws {
        var a = Self.accumulator()
        _ = Self.feed(&a, from: 0, to: 100) { t in t < 50 ? Self.sample(400) : Self.sample(.nan, quality: 2) }
        _ = Self.feed(&a, from: 100, to: 110) { _ in Self.sample(900, quality: 2) }
        let hClosed = a.finish()
        let h = try #require(hClosed)
        #expect(h.mps[0].max == 400_000 && h.mps[0].mean == 400_000, "a bad 900 kVA reading is not the peak")
        #expect(h.mps[0].secondsBad == 60)
    }

    @Test func aClockJumpClosesTheHalfHourAndIsFlagged() throws {
        var a = Self.accumulator()
        _ = Self.feed(&a, from: 0, to: 100) { _ in Self.sample(400) }
        // NTP steps the wall clock an hour ahead: the monotonic clock moved 1 s.
        let closed = Self.feed(&a, from: 100, to: 200, wallOffset: 3600) { _ in Self.sample(400, mode: 1) }
        #expect(closed.count == 1 && closed[0].secondsCovered == 99)
        #expect(closed[0].clockJumped, "the half hour the clock left is flagged too")
        let hClosed = a.finish()
        let h = try #require(hClosed)
        #expect(h.periodStart == UInt32(Self.day) + 3600 && h.clockJumped)
        #expect(h.secondsCovered == 100 && h.secondsInMode[1] == 100, "the jump's second counts as one second")
    }

    @Test func aStallIsNotCreditedToTheLastSample() throws {
        var a = Self.accumulator()
        _ = a.add(Self.sample(400), wallNs: Self.ns(0), monoNs: 0)
        _ = a.add(Self.sample(520), wallNs: Self.ns(60), monoNs: 60_000_000_000)
        let hClosed = a.finish()
        let h = try #require(hClosed)
        #expect(h.secondsCovered == 5 && h.mps[0].secondsBeyondLimit == 5)
    }

    @Test func recordsRoundTripAndFitTheirSlot() throws {
        let long = "ein-sehr-langer-Messpunktname-ä"
        let mps = (0..<8).map { (i: Int) -> HalfHourRecord.MP in
            let trip: Float = i == 2 ? .nan : 550, low: Float = i == 3 ? .nan : 1
            return HalfHourRecord.MP(name: i == 0 ? long : "mp\(i)", unit: UInt8(i % 3), lowerLimit: i % 2 == 1, limit: 500, trip: trip,
                              min: low, mean: 2, max: 3, secondsBeyondLimit: 12.3, secondsBeyondTrip: 0.1, secondsBad: 1800)
        }
        let sites = (0..<8).map { (j: Int) -> HalfHourRecord.Site in
            let imported: Float = j == 0 ? .nan : 99.5
            return HalfHourRecord.Site(name: "site-\(j)", ceilingW: 250_000, setPointMinW: 150_000, setPointMeanW: 200_000,
                                importedKWh: imported, curtailedKWh: 1.25, secondsRestricted: 1799.9, importMetered: j != 0)
        }
        let h = HalfHourRecord(periodStart: 1_763_596_800, secondsCovered: 1800, clockJumped: true,
                               secondsInMode: [1000, 0, 0.5, 799.5, 0, 0, 0], mps: mps, sites: sites)
        let bytes = h.encode()
        #expect(bytes.count <= HalfHourRecord.recordSize - RingFile.overhead)
        let back = try #require(HalfHourRecord.decode(bytes))
        #expect(back.mps[0].name == "ein-sehr-langer-", "16 bytes of the name")
        #expect(back.mps[2].trip.isNaN && back.mps[3].min.isNaN && back.sites[0].importedKWh.isNaN)
        var expected = h
        expected.mps[0].name = "ein-sehr-langer-"
        // NaN != NaN: compare the encodings, which are bit-exact.
        #expect(back.encode() == expected.encode())
        #expect(back.secondsInMode == [1000, 0, 0.5, 799.5, 0, 0, 0] && back.sites[3].secondsRestricted == 1799.9)
        #expect(HalfHourRecord.decode(Array(bytes.prefix(40))) == nil, "a short payload is refused, not misread")
    }

    @Test func aRestartSplitHalfHourMergesForTheAudit() throws {
        var a = Self.accumulator()
        _ = Self.feed(&a, from: 0, to: 601) { _ in Self.sample(400) }
        let firstClosed = a.finish()
        let first = try #require(firstClosed)
        var b = Self.accumulator()
        // Back 10 minutes later (a new process: a new accumulator), until the end of the half hour.
        _ = Self.feed(&b, from: 1200, to: 1800) { _ in Self.sample(520, sp: 200_000, imp: 199_000) }
        let secondClosed = b.finish()
        let second = try #require(secondClosed)
        let m = first.merged(with: second)
        #expect(m.periodStart == first.periodStart && m.secondsCovered == 600 + 599)
        #expect(m.mps[0].min == 400_000 && m.mps[0].max == 520_000)
        #expect(abs(Double(m.mps[0].mean) - (400_000 * 600 + 520_000 * 599) / 1199.0) < 1, "weighted by the time each covered")
        #expect(m.mps[0].secondsBeyondLimit == 599)
        #expect(m.sites[0].setPointMinW == 200_000)
        #expect(abs(Double(m.sites[0].importedKWh) - (240 * 600 + 199 * 599) / 3600.0) < 0.01)
    }
}

/// Each sample and half hour says whether the wall clock was synchronised (issue 20, item 7), as the
/// minutes do: a half hour is synchronised only if every cycle in it was. Records written before the
/// flag existed read as unknown, never as synchronised.
@Suite struct ClockSynchronisedTests {
    static func sample(_ synchronised: Bool?) -> SampleRecord {
        var s = HalfHourTests.sample(400)
        s.clockSynchronised = synchronised
        return s
    }

    @Test func aSampleKeepsTheClocksStateAndAnOldSampleReadsAsUnknown() throws {
        for state in [true, false, nil] as [Bool?] {
            let back = try #require(SampleRecord.decode(Self.sample(state).encode()))
            #expect(back.clockSynchronised == state && back == Self.sample(state))
        }
        // A 0.1.0 sample ends after its sites: it has no clock byte.
        let old = Array(Self.sample(false).encode().dropLast())
        let read = try #require(SampleRecord.decode(old))
        #expect(read.clockSynchronised == nil && read.mps == Self.sample(nil).mps)
    }

    @Test func aHalfHourIsSynchronisedOnlyIfEveryCycleWas() throws {
        func closed(_ state: (Double) -> Bool?) throws -> HalfHourRecord {
            var a = HalfHourTests.accumulator()
            _ = HalfHourTests.feed(&a, from: 0, to: 1800) { t in Self.sample(state(t)) }
            let h = a.finish()
            return try #require(h)
        }
        #expect(try closed { _ in true }.clockSynchronised == true)
        #expect(try closed { t in t < 1000 || t > 1010 }.clockSynchronised == false, "ten seconds unsynchronised")
        #expect(try closed { t in t < 5 ? nil : true }.clockSynchronised == nil, "unknown for a while, never false")
        #expect(try closed { t in t < 5 ? nil : false }.clockSynchronised == false)
        // Kept by the encoding; an old half hour (no clock byte) reads as unknown.
        let h = try closed { t in t < 1000 }
        #expect(HalfHourRecord.decode(h.encode())?.clockSynchronised == false)
        let old = try #require(HalfHourRecord.decode(Array(h.encode().dropLast())))
        #expect(old.clockSynchronised == nil && old.mps == h.mps)
        // A restart splits a half hour: false in either part wins, then unknown.
        let yes = try closed { _ in true }, no = try closed { _ in false }
        #expect(yes.merged(with: no).clockSynchronised == false && no.merged(with: old).clockSynchronised == false)
        #expect(yes.merged(with: old).clockSynchronised == nil && yes.merged(with: yes).clockSynchronised == true)
    }
}
