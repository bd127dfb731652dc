import Testing
@testable import DNP3

func bytes(_ hex: String) -> [UInt8] {
    let h = hex.filter { !$0.isWhitespace }
    return stride(from: 0, to: h.count, by: 2).map { i in
        UInt8(h[h.index(h.startIndex, offsetBy: i)..<h.index(h.startIndex, offsetBy: i + 2)], radix: 16)!
    }
}

@Suite struct LinkTests {
    /// IEEE 1815's own example: a RESET LINK STATES from master 1024 to outstation 1 has header CRC E9 21.
    @Test func headerCRCOfTheStandardsExample() {
        #expect(DNP3CRC.compute(bytes("05 64 05 C0 01 00 00 04")) == 0x21E9)
        let f = LinkFrame(fromMaster: true, primary: true, function: 0, destination: 1, source: 1024)
        #expect(f.encode() == bytes("05 64 05 C0 01 00 00 04 E9 21"))
    }

    @Test func roundTripsUserDataAcrossBlocks() throws {
        for n in [0, 1, 15, 16, 17, 32, 33, 250] {
            let data = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
            let f = LinkFrame(fromMaster: false, primary: true, function: 4, destination: 1, source: 1024, userData: data)
            let wire = f.encode()
            #expect(wire.count == LinkFrame.wireSize(lengthByte: wire[2]))
            #expect(try LinkFrame.decode(wire) == f)
        }
    }

    @Test func aBadBlockCRCIsAnErrorNamingTheBlock() {
        var wire = LinkFrame(fromMaster: true, primary: true, function: 4, destination: 1, source: 2, userData: Array(0..<20)).encode()
        wire[10 + 16 + 2 + 1] ^= 0xFF   // a byte of the second block
        #expect(throws: LinkError.self) { try LinkFrame.decode(wire) }
        do { _ = try LinkFrame.decode(wire) } catch { if case .blockCRC(let b, _, _) = error { #expect(b == 1) } else { Issue.record("\(error)") } }
    }

    @Test func theStreamParserResynchronisesAfterGarbageAndBadFrames() {
        let a = LinkFrame(fromMaster: true, primary: true, function: 9, destination: 1, source: 2).encode()
        let b = LinkFrame(fromMaster: true, primary: true, function: 4, destination: 1, source: 2, userData: [0xC0, 0xC1, 1, 60, 1, 6]).encode()
        var bad = b; bad[12] ^= 1
        var p = LinkStreamParser()
        var got: [LinkFrame] = []
        let stream = [0x00, 0x05, 0x05] + a + bad + [0x64] + b
        for byte in stream { got += p.feed([byte]) }   // one byte at a time
        #expect(got.count == 2)
        #expect(got.first?.function == 9)
        #expect(got.last?.userData == [0xC0, 0xC1, 1, 60, 1, 6])
        #expect(!p.errors.isEmpty)
    }
}

@Suite struct TransportTests {
    @Test func segmentsAtTwoHundredFortyNineAndReassembles() {
        let fragment = (0..<600).map { UInt8(truncatingIfNeeded: $0) }
        let (segments, next) = Transport.segment(fragment, seq: 62)
        #expect(segments.map(\.count) == [250, 250, 103])
        #expect(segments.map { $0[0] } == [0x40 | 62, 63, 0x80 | 0] as [UInt8])
        #expect(next == 1)
        var r = TransportReassembler()
        #expect(r.receive(segments[0]) == nil)
        #expect(r.receive(segments[1]) == nil)
        #expect(r.receive(segments[2]) == fragment)
    }

    @Test func dropsOutOfSequenceAndOversize() {
        var r = TransportReassembler(maxFragment: 300)
        #expect(r.receive([0x05, 1]) == nil)             // no FIR
        #expect(r.lastDrop == .noFirst)
        #expect(r.receive([0x40 | 3, 1] as [UInt8]) == nil)
        #expect(r.receive([0x80 | 5, 2] as [UInt8]) == nil)         // expected 4
        #expect(r.lastDrop == .outOfSequence(expected: 4, got: 5))
        let big = [UInt8](repeating: 0, count: 249)
        #expect(r.receive([0x40] + big) == nil)
        #expect(r.receive(([0x80 | 1] as [UInt8]) + big) == nil)
        #expect(r.lastDrop == .oversize(498))
        #expect(r.receive([0xC0, 9, 9]) == [9, 9])
    }
}

@Suite struct ApplicationTests {
    @Test func parsesAnIntegrityPoll() throws {
        // opendnp3's integrity poll: READ g60v2, v3, v4, v1, all with qualifier 0x06.
        let r = try Request.parse(bytes("C0 01 3C 02 06 3C 03 06 3C 04 06 3C 01 06"))
        #expect(r.control == AppControl(fir: true, fin: true, seq: 0))
        #expect(r.function == .read)
        #expect(r.headers.map { [$0.group, $0.variation, $0.qualifier] } == [[60, 2, 6], [60, 3, 6], [60, 4, 6], [60, 1, 6]])
        #expect(r.headerError == nil)
    }

    @Test func parsesTimeWriteAndAnalogOutputs() throws {
        let t = try Request.parse(bytes("C3 02 32 01 07 01 E8 03 00 00 00 00"))
        #expect(t.headers[0].objects.count == 1)
        #expect(DNP3Time.decode(t.headers[0].objects[0].data) == 1000)
        let o = try Request.parse(bytes("C4 05 29 03 28 01 00 02 00 00 00 7A 44 00"))   // g41v3 index 2 = 1000.0
        #expect(o.headers[0].objects[0].index == 2)
        #expect(o.headers[0].objects[0].data == bytes("00 00 7A 44 00"))
        let iin = try Request.parse(bytes("C1 02 50 01 00 07 07 00"))
        #expect(iin.headers[0].objects.map(\.index) == [7])
    }

    @Test func unknownObjectsAndQualifiersAreReportedNotThrown() throws {
        let r = try Request.parse(bytes("C0 02 63 01 07 01 00"))
        #expect(r.headerError == .unknownObject(group: 99, variation: 1))
        let q = try Request.parse(bytes("C0 01 01 02 5B"))
        #expect(q.headerError == .unsupportedQualifier(0x5B))
        let cut = try Request.parse(bytes("C0 02 32 01 07 01 E8 03"))
        if case .truncatedObjects? = cut.headerError {} else { Issue.record("\(String(describing: cut.headerError))") }
        #expect(throws: AppError.tooShort(1)) { try Request.parse([0xC0]) }
    }
}
