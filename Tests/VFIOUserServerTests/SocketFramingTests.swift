import DeviceBus
import Foundation
import Logging
import Testing
@testable import VFIOUserServer
import VFIOUserWire
import VPIOSystem

/// Framing over a real UNIX socket, which receives straight into the channel's reused buffer (the
/// memory stream of the dispatcher tests does not): messages split across receives, several in one,
/// a partial header, a client that closes mid-message.
@Suite struct SocketFramingTests {
    /// A session on one end of a socket pair; the test is the client on the other.
    struct Pair {
        let client: UnixSocket
        let session: Session

        init() throws {
            let (client, server) = try UnixSocket.pair()
            let intx = INTxRouter()
            let line = InterruptLine { intx.lineChanged($0) }
            let endpoint = PCIEndpoint(identity: .rtl8029, device: ScratchDevice(), interruptLine: line, intx: intx)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            self.client = client
            session = VFIOUserServer(endpoint: endpoint, logger: logger).attach(stream: server)
        }

        /// What the server sent so far.
        func replies() throws -> [UInt8] {
            var bytes: [UInt8] = []
            while let chunk = try client.receiveAvailable(maxBytes: 4096, maxDescriptors: 0), !chunk.bytes.isEmpty { bytes += chunk.bytes }
            return bytes
        }
    }

    static let version = MessageHeader.message(
        id: 1, command: Command.version.rawValue, flags: [],
        payload: VersionMessage(major: 0, minor: 1, capabilities: Capabilities()).encode())

    static func read(id: UInt16, offset: UInt64) -> [UInt8] {
        MessageHeader.message(id: id, command: Command.regionRead.rawValue, flags: [],
                              payload: RegionReadRequest(access: RegionAccess(offset: offset, region: 0, count: 1)).encode())
    }

    /// Parses replies: (id, error flag, payload).
    static func parse(_ bytes: [UInt8]) throws -> [(UInt16, Bool, [UInt8])] {
        var rest = bytes[...]
        var replies: [(UInt16, Bool, [UInt8])] = []
        while !rest.isEmpty {
            let header = try MessageHeader(decoding: rest.prefix(MessageHeader.size), maxMessageSize: 1 << 20)
            replies.append((header.messageID, header.flags.contains(.error), Array(rest.dropFirst(MessageHeader.size).prefix(Int(header.size) - MessageHeader.size))))
            rest = rest.dropFirst(Int(header.size))
        }
        return replies
    }

    @Test func aMessageSentByteByByteIsAnsweredOnceWhole() throws {
        let pair = try Pair()
        let message = Self.version
        for (index, byte) in message.enumerated() {
            try pair.client.send([byte])
            #expect(try pair.session.serveAvailable(reading: true))
            let replies = try pair.replies()
            #expect(replies.isEmpty == (index < message.count - 1), "a reply exactly when the last byte came")
        }
    }

    @Test func severalMessagesInOneReceiveAreAllAnsweredInOrder() throws {
        let pair = try Pair()
        var batch = Self.version
        for id in 2...6 { batch += Self.read(id: UInt16(id), offset: UInt64(id)) }
        try pair.client.send(batch)
        #expect(try pair.session.serveAvailable(reading: true))
        let replies = try Self.parse(try pair.replies())
        #expect(replies.map(\.0) == [1, 2, 3, 4, 5, 6])
        #expect(replies.allSatisfy { !$0.1 })
        // The scratch device reads 0 everywhere; each read reply is the access echoed, then one byte.
        #expect(replies.dropFirst().allSatisfy { $0.2.count == RegionAccess.size + 1 })
    }

    /// A message whose end arrives with the start of the next: both complete over two receives.
    @Test func messagesStraddlingReceivesAreFramedAcrossThem() throws {
        let pair = try Pair()
        let stream = Self.version + Self.read(id: 2, offset: 0) + Self.read(id: 3, offset: 1)
        let cut = Self.version.count + 5
        try pair.client.send(Array(stream[..<cut]))
        #expect(try pair.session.serveAvailable(reading: true))
        #expect(try Self.parse(try pair.replies()).map(\.0) == [1])
        try pair.client.send(Array(stream[cut...]))
        #expect(try pair.session.serveAvailable(reading: true))
        #expect(try Self.parse(try pair.replies()).map(\.0) == [2, 3])
    }

    @Test func aPartialHeaderThenCloseEndsTheConnection() throws {
        let pair = try Pair()
        try pair.client.send(Array(Self.version.prefix(7)))
        #expect(try pair.session.serveAvailable(reading: true))
        #expect(pair.session.channel.waitingSince != nil, "the wait bound runs from the first byte")
        pair.client.close()
        #expect(throws: ChannelError.self) { try pair.session.serveAvailable(reading: true) }
    }

    @Test func aClientClosingMidPayloadEndsTheConnection() throws {
        let pair = try Pair()
        try pair.client.send(Array(Self.version.prefix(MessageHeader.size + 3)))
        #expect(try pair.session.serveAvailable(reading: true))
        pair.client.close()
        let error = #expect(throws: ChannelError.self) { try pair.session.serveAvailable(reading: true) }
        #expect(error?.description == "stream ended inside a \(Self.version.count)-byte message")
    }

    @Test func aCleanCloseBetweenMessagesEndsQuietly() throws {
        let pair = try Pair()
        try pair.client.send(Self.version)
        #expect(try pair.session.serveAvailable(reading: true))
        #expect(pair.session.channel.waitingSince == nil)
        // Read first: closing with the reply unread would reset the connection instead.
        #expect(try Self.parse(try pair.replies()).map(\.0) == [1])
        pair.client.close()
        #expect(try pair.session.serveAvailable(reading: true) == false)
    }
}
