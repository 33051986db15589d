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
    /// The events with a frame arriving after the dword read (a version-2 record).
    var records: [TraceRecord] {
        let all = events.map(TraceRecord.event)
        return Array(all.prefix(3)) + [.frameArrived([0xFF, 0x00, 0xAB])] + all.dropFirst(3)
    }

    let golden: [UInt8] = [
        0x56, 0x50, 0x54, 0x52, 0x02, 0x00, 0x00, 0x00, // "VPTR", version 2, reserved
        0x80, 0x22, // write CR 0x22
        0x07, 0x40, // read ISR → 0x40
        0x50, 0x78, 0x56, 0x34, 0x12, // dword read of the data port
        0x63, 0x03, 0x00, 0xFF, 0x00, 0xAB, // a 3-byte frame arrived
        0xB0, 0xEF, 0xBE, // word write of the data port
        0x61, 0x60, 0x62, // line high, line low, function reset
        0x1F, 0x00, // read of the reset port
    ]

    /// The same events in version 1 (no frame record), as the committed fixtures of before were written.
    var goldenVersion1: [UInt8] {
        var bytes = golden
        bytes[4] = 1
        bytes.removeSubrange(17..<23)
        return bytes
    }

    @Test func encodesGoldenBytes() {
        var encoder = TraceEncoder()
        for record in records { encoder.append(record) }
        #expect(encoder.bytes == golden)
    }

    @Test func decodesGoldenBytes() throws {
        #expect(try TraceDecoder.decodeRecords(golden) == records)
        #expect(try TraceDecoder.decode(golden) == events, "the events alone skip the frame")
    }

    @Test func readsVersion1() throws {
        #expect(try TraceDecoder.decodeRecords(goldenVersion1) == events.map(TraceRecord.event))
        var encoder = TraceEncoder(version: 1)
        for event in events { encoder.append(event) }
        #expect(encoder.bytes == goldenVersion1)
    }

    @Test func version1HasNoFrameRecords() {
        #expect(throws: TraceError.invalidTag(0x63, offset: 8)) { try TraceDecoder.decode(Array(goldenVersion1.prefix(8)) + [0x63, 0, 0]) }
    }

    @Test func rejectsTruncatedFrame() {
        // Cut inside the frame's length, then inside its bytes.
        #expect(throws: TraceError.truncatedRecord(offset: 17)) { try TraceDecoder.decodeRecords(Array(golden.prefix(19))) }
        #expect(throws: TraceError.truncatedRecord(offset: 17)) { try TraceDecoder.decodeRecords(Array(golden.prefix(22))) }
    }

    @Test func takeBytesContinuesTheStream() throws {
        var encoder = TraceEncoder()
        encoder.append(records[0])
        var bytes = encoder.takeBytes()
        for record in records.dropFirst() { encoder.append(record) }
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
        bytes[4] = 3
        #expect(throws: TraceError.unsupportedVersion(3)) { try TraceDecoder.decode(bytes) }
    }

    @Test func rejectsTruncatedRecord() {
        // Cut inside the dword read's value.
        #expect(throws: TraceError.truncatedRecord(offset: 12)) { try TraceDecoder.decode(Array(golden.prefix(14))) }
    }

    @Test func rejectsInvalidControlTag() {
        #expect(throws: TraceError.invalidTag(0x64, offset: 8)) { try TraceDecoder.decode(Array(golden.prefix(8)) + [0x64]) }
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
                let decoded = try TraceDecoder.decodeRecords(bytes)
                var encoder = TraceEncoder()
                for record in decoded { encoder.append(record) }
                #expect(encoder.bytes == bytes, "whatever decodes re-encodes to the same bytes")
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }
}
