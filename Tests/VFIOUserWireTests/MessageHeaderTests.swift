import Testing
@testable import VFIOUserWire

@Suite struct MessageHeaderTests {
    // msg_id 0x0102, command 9 (REGION_READ), size 32, flags 0 (command), error 0.
    let golden = hex("0201 0900 20000000 00000000 00000000")

    @Test func decodesGolden() throws {
        let h = try MessageHeader(decoding: golden[...], maxMessageSize: 4096)
        #expect(h == MessageHeader(messageID: 0x0102, command: 9, size: 32))
        #expect(!h.isReply)
    }

    @Test func encodesGolden() {
        var w = ByteWriter()
        MessageHeader(messageID: 0x0102, command: 9, size: 32).encode(into: &w)
        #expect(w.bytes == golden)
    }

    @Test func errorReplyGolden() {
        let bytes = MessageHeader.message(id: 7, command: 9, flags: [.reply, .error], error: 22, payload: [])
        #expect(bytes == hex("0700 0900 10000000 21000000 16000000"))
    }

    @Test func truncatedHeaderRejected() {
        #expect(throws: WireError.truncated(needed: 16, available: 15)) {
            try MessageHeader(decoding: golden[0..<15], maxMessageSize: 4096)
        }
    }

    @Test func sizeBelowHeaderOrAboveLimitRejected() {
        let small = hex("0100 0100 0f000000 00000000 00000000")
        #expect(throws: WireError.badMessageSize(15)) { try MessageHeader(decoding: small[...], maxMessageSize: 4096) }
        let huge = hex("0100 0100 ffffffff 00000000 00000000")
        #expect(throws: WireError.badMessageSize(0xFFFF_FFFF)) {
            try MessageHeader(decoding: huge[...], maxMessageSize: 4096)
        }
    }

    @Test func unknownFlagsRejected() {
        let badType = hex("0100 0100 10000000 02000000 00000000")
        #expect(throws: WireError.self) { try MessageHeader(decoding: badType[...], maxMessageSize: 4096) }
        let badBit = hex("0100 0100 10000000 40000000 00000000")
        #expect(throws: WireError.self) { try MessageHeader(decoding: badBit[...], maxMessageSize: 4096) }
    }
}
