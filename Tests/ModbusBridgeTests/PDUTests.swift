import Testing
@testable import ModbusBridge

/// The server's framing and reply logic without sockets.
@Suite struct ServerPDULogic {
    @Test func framesSplitAnywhereAreReassembledAndBadHeadersRefused() throws {
        let frame: [UInt8] = [0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2]
        let two = frame + frame
        for cut in 0...two.count {
            var f = MBAPFramer()
            let a = try f.push(two[0..<cut]), b = try f.push(two[cut...])
            #expect((a + b).count == 2 && !f.isMidFrame)
            #expect((a + b).allSatisfy { $0.pdu == [3, 0, 0, 0, 2] && $0.unit == 1 && $0.transaction == 1 })
        }
        var f = MBAPFramer()
        #expect(throws: MBAPFramer.Failure.badProtocol(0x5420)) { _ = try f.push(Array("GET / HT".utf8)[...]) }
        var g = MBAPFramer()
        #expect(throws: MBAPFramer.Failure.badLength(1000)) { _ = try g.push([0, 1, 0, 0, 0x03, 0xE8, 1][...]) }
    }

    @Test func repliesAndExceptionsAsLibmodbusGivesThem() {
        var image = RegisterImage(.init(coils: 0..<16, holding: 100..<110))
        #expect(image.respond(to: [6, 0, 101, 0x12, 0x34]) == [6, 0, 101, 0x12, 0x34])
        #expect(image.respond(to: [3, 0, 100, 0, 2]) == [3, 4, 0, 0, 0x12, 0x34])
        #expect(image.respond(to: [3, 0, 109, 0, 2]) == [0x83, 2], "runs past the end")
        #expect(image.respond(to: [3, 0, 100, 0, 126]) == [0x83, 3], "count beyond 125")
        #expect(image.respond(to: [3, 0, 100, 0]) == [0x83, 3], "short PDU")
        #expect(image.respond(to: [16, 0, 102, 0, 2, 4, 0, 1, 0, 2]) == [16, 0, 102, 0, 2])
        #expect(image.respond(to: [16, 0, 102, 0, 2, 3, 0, 1, 0]) == [0x90, 3], "byte count does not match")
        #expect(image.respond(to: [15, 0, 0, 0, 10, 2, 0b1010_0101, 0b11]) == [15, 0, 0, 0, 10])
        #expect(image.respond(to: [1, 0, 0, 0, 10]) == [1, 2, 0b1010_0101, 0b11])
        #expect(image.respond(to: [5, 0, 3, 0x12, 0]) == [0x85, 3], "a coil is FF00 or 0000")
        #expect(image.respond(to: [22, 0, 100, 0xFF, 0x00, 0x00, 0x0F]) == [22, 0, 100, 0xFF, 0x00, 0x00, 0x0F])
        #expect(image.respond(to: [3, 0, 100, 0, 1]) == [3, 2, 0x00, 0x0F])
        #expect(image.respond(to: [43, 14, 1, 0]) == [0xAB, 1])
        // 23: write 105 := 9, read 100…101
        #expect(image.respond(to: [23, 0, 100, 0, 2, 0, 105, 0, 1, 2, 0, 9]) == [23, 4, 0, 0x0F, 0x12, 0x34])
        #expect(RegisterImage.parse([23, 0, 100, 0, 2, 0, 105, 0, 1, 2, 0, 9])
                == .request(function: 23, address: 105, count: 1, read: (100, 2)), "the range written is the one judged")
        #expect(image.holding[5] == 9)
    }
}
