import Foundation
import LMCTestSupport
import PropertyBased
import Testing
@testable import ModbusBridge

/// Reference vectors from Python's struct (Tests/peers/codec_vectors.py), never from our own encoder.
struct Vector {
    var codec: RegisterCodec
    var valueText: String?
    var value: Double
    var rawBits: UInt64
    var registers: [UInt16]
}

func loadVectors() throws -> [Vector] {
    let r = try run(Repo.python, [Repo.peer("codec_vectors.py")])
    #expect(r.status == 0, "codec_vectors.py failed: \(r.err)")
    return try r.out.split(separator: "\n").map { line in
        let o = try jsonObject(line)
        let codec = RegisterCodec(.init(rawValue: o["type"] as! String)!, wordOrder: .init(rawValue: o["word_order"] as! String)!,
                                  byteOrder: .init(rawValue: o["byte_order"] as! String)!, scale: (o["scale"] as! NSNumber).doubleValue)
        let text = o["value"] as? String
        let value = Double(text!)!
        return Vector(codec: codec, valueText: text, value: value, rawBits: UInt64(o["raw_bits"] as! String, radix: 16)!,
                      registers: (o["registers"] as! [NSNumber]).map { UInt16($0.intValue) })
    }
}

@Suite struct RegisterCodecTests {
    @Test func decodesEveryTypeAndOrderLikePythonStruct() throws {
        let vectors = try loadVectors()
        #expect(vectors.count > 150)
        for v in vectors {
            #expect(try v.codec.rawBits(v.registers) == v.rawBits, "\(v.codec) \(v.registers)")
            let decoded = try v.codec.decode(v.registers)
            if v.codec.type.isFloat {
                #expect(decoded == v.value, "\(v.codec) \(v.registers) → \(decoded), Python says \(v.value)")
            } else if v.codec.scale == 1, let text = v.valueText {
                // Integers exactly, including u64 above 2^53.
                if v.codec.type == .u64 {
                    #expect(try v.codec.rawBits(v.registers) == UInt64(text)!)
                } else {
                    #expect(try v.codec.decodeInteger(v.registers) == Int64(text)!, "\(v.codec) \(v.registers)")
                }
            } else {
                #expect(abs(decoded - v.value) <= abs(v.value) * 1e-12 + 1e-9, "\(v.codec) \(v.registers) → \(decoded) vs \(v.value)")
            }
        }
    }

    @Test func encodesEveryTypeAndOrderLikePythonStruct() throws {
        for v in try loadVectors() where !(v.codec.type == .u64 && v.rawBits > (1 << 53)) && !(v.codec.type == .i64 && abs(v.value) > 9e15) {
            #expect(try v.codec.encode(v.value) == v.registers, "\(v.codec) value \(v.value)")
        }
    }

    @Test func libmodbusFloatHelpersAgree() throws {
        // libmodbus's own modbus_get_float_abcd/cdab on the same registers: a third opinion.
        let abcd = RegisterCodec(.f32)
        let cdab = RegisterCodec(.f32, wordOrder: .little)
        let badc = RegisterCodec(.f32, byteOrder: .little)
        #expect(try abcd.decode([0x4366, 0x8000]) == 230.5)
        #expect(try cdab.decode([0x8000, 0x4366]) == 230.5)
        #expect(try badc.decode([0x6643, 0x0080]) == 230.5)
    }

    @Test func wrongRegisterCountIsAnError() throws {
        #expect(throws: RegisterCodec.CodecError.wrongRegisterCount(type: .f32, expected: 2, got: 1)) {
            try RegisterCodec(.f32).decode([0x4366])
        }
    }

    @Test func valuesThatDoNotFitAreRefusedNotWrapped() throws {
        #expect(throws: RegisterCodec.CodecError.self) { try RegisterCodec(.u16).encode(65536) }
        #expect(throws: RegisterCodec.CodecError.self) { try RegisterCodec(.u16).encode(-1) }
        #expect(throws: RegisterCodec.CodecError.self) { try RegisterCodec(.i16).encode(32768) }
        #expect(throws: RegisterCodec.CodecError.self) { try RegisterCodec(.i32).encode(.nan) }
        #expect(throws: RegisterCodec.CodecError.self) { try RegisterCodec(.u16, scale: 0.1).encode(6553.6) }
        #expect(try RegisterCodec(.u16, scale: 0.1).encode(6553.5) == [65535])
    }

    @Test func nanIsDecodedAsNanNotHidden() throws {
        #expect(try RegisterCodec(.f32).decode([0x7FC0, 0x0000]).isNaN)
    }

    // MARK: Properties

    static let orders = Gen<RegisterCodec.WordOrder>.case
    static let bytes = Gen<RegisterCodec.ByteOrder>.case

    @Test func integerRoundTrips() async {
        await propertyCheck(count: 300, input: Gen.int64(in: Int64.min...Int64.max), Self.orders, Self.bytes) { raw, wo, bo in
            let cases: [(RegisterCodec.ValueType, Int64)] = [
                (.u16, raw & 0xFFFF), (.i16, Int64(Int16(truncatingIfNeeded: raw))),
                (.u32, raw & 0xFFFF_FFFF), (.i32, Int64(Int32(truncatingIfNeeded: raw))), (.i64, raw),
            ]
            for (t, v) in cases {
                let c = RegisterCodec(t, wordOrder: wo, byteOrder: bo)
                let regs = try! c.encode(Double(v))
                #expect(regs.count == t.registerCount)
                if abs(v) < (1 << 53) { #expect(try! c.decodeInteger(regs) == v, "\(c) \(v)") }
            }
        }
    }

    @Test func floatRoundTripsBitExact() async {
        await propertyCheck(count: 300, input: Gen.uint64(in: 0...UInt64.max), Self.orders, Self.bytes) { bits, wo, bo in
            let d = Double(bitPattern: bits)
            let c64 = RegisterCodec(.f64, wordOrder: wo, byteOrder: bo)
            let back64 = try! c64.decode(try! c64.encode(d))
            #expect(back64.bitPattern == d.bitPattern || (d.isNaN && back64.isNaN))
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: bits))
            let c32 = RegisterCodec(.f32, wordOrder: wo, byteOrder: bo)
            let back32 = Float(try! c32.decode(try! c32.encode(Double(f))))
            #expect(back32.bitPattern == f.bitPattern || (f.isNaN && back32.isNaN))
        }
    }

    @Test func wordOrderOnlyReversesRegisters() async {
        await propertyCheck(count: 200, input: Gen.uint64(in: 0...UInt64.max)) { bits in
            for t in [RegisterCodec.ValueType.u32, .f32, .u64, .f64] {
                let big = RegisterCodec(t).registers(fromRawBits: bits)
                let little = RegisterCodec(t, wordOrder: .little).registers(fromRawBits: bits)
                #expect(little == big.reversed())
                let swapped = RegisterCodec(t, byteOrder: .little).registers(fromRawBits: bits)
                #expect(swapped == big.map(\.byteSwapped))
            }
        }
    }
}
