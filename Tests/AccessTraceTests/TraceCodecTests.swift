import AccessTrace
import DeviceBus
import NE2000Model
import Testing

@Suite struct TraceCodecTests {
    let events: [DeviceEvent] = [
        .access(.write(0x00, 0x22)),
        .access(.read(0x07, 0x40)),
        .access(.read(0x10, 0x1234_5678, width: .dword)),
        .access(.write(0x10, 0xBEEF, width: .word)),
        .interrupt(asserted: true),
        .interrupt(asserted: false),
        .reset,
        .access(.read(0x1F, 0x00)),
    ]

    let golden: [UInt8] = [
        0x56, 0x50, 0x54, 0x52, 0x01, 0x00, 0x00, 0x00, // "VPTR", version 1, reserved
        0x80, 0x22, // write CR 0x22
        0x07, 0x40, // read ISR → 0x40
        0x50, 0x78, 0x56, 0x34, 0x12, // dword read of the data port
        0xB0, 0xEF, 0xBE, // word write of the data port
        0x61, 0x60, 0x62, // line high, line low, function reset
        0x1F, 0x00, // read of the reset port
    ]

    @Test func encodesGoldenBytes() {
        var encoder = TraceEncoder()
        for event in events { encoder.append(event) }
        #expect(encoder.bytes == golden)
    }

    @Test func decodesGoldenBytes() throws {
        #expect(try TraceDecoder.decode(golden) == events)
    }

    @Test func takeBytesContinuesTheStream() throws {
        var encoder = TraceEncoder()
        encoder.append(events[0])
        var bytes = encoder.takeBytes()
        for event in events.dropFirst() { encoder.append(event) }
        bytes += encoder.takeBytes()
        #expect(bytes == golden)
    }

    @Test func emptyTraceHasNoEvents() throws {
        #expect(try TraceDecoder.decode(Array(golden.prefix(8))).isEmpty)
    }

    @Test func rejectsShortHeader() {
        #expect(throws: TraceError.truncatedHeader(length: 5)) { try TraceDecoder.decode(Array(golden.prefix(5))) }
    }

    @Test func rejectsBadMagic() {
        var bytes = golden
        bytes[0] = 0x00
        #expect(throws: TraceError.badMagic([0x00, 0x50, 0x54, 0x52])) { try TraceDecoder.decode(bytes) }
    }

    @Test func rejectsUnknownVersion() {
        var bytes = golden
        bytes[4] = 2
        #expect(throws: TraceError.unsupportedVersion(2)) { try TraceDecoder.decode(bytes) }
    }

    @Test func rejectsTruncatedRecord() {
        // Cut inside the dword read's value.
        #expect(throws: TraceError.truncatedRecord(offset: 12)) { try TraceDecoder.decode(Array(golden.prefix(14))) }
    }

    @Test func rejectsInvalidControlTag() {
        #expect(throws: TraceError.invalidTag(0x63, offset: 8)) { try TraceDecoder.decode(Array(golden.prefix(8)) + [0x63]) }
        #expect(throws: TraceError.invalidTag(0xE0, offset: 8)) { try TraceDecoder.decode(Array(golden.prefix(8)) + [0xE0]) }
    }

    @Test func garbageNeverTraps() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for length in 0..<400 {
            var bytes = Array(golden.prefix(8))
            for _ in 0..<length {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(UInt8(truncatingIfNeeded: state >> 33))
            }
            do {
                let decoded = try TraceDecoder.decode(bytes)
                var encoder = TraceEncoder()
                for event in decoded { encoder.append(event) }
                #expect(encoder.bytes == bytes, "whatever decodes re-encodes to the same bytes")
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }
}
