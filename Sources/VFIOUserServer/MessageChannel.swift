import VFIOUserWire
import VPIOSystem

/// A reliable byte stream that can carry descriptors: a UNIX socket in production, an in-memory
/// pipe in dispatcher tests.
public protocol ByteStream: AnyObject {
    /// Exactly `count` bytes plus any descriptors that came with them; nil at a clean end of stream.
    func receiveExactly(_ count: Int, maxDescriptors: Int) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])?
    func send(_ bytes: [UInt8], descriptors: [FileDescriptor]) throws
}

extension UnixSocket: ByteStream {}

/// One command as it came off the wire, header validated, payload not yet decoded.
public struct ReceivedMessage {
    public var header: MessageHeader
    public var payload: [UInt8]
    /// Descriptors sent with the message. They close when dropped unless a handler claims them.
    public var descriptors: [OwnedDescriptor]
    /// The client sent more descriptors than allowed; they were closed and the message is rejected.
    public var descriptorsRefused = false
}

/// Why a connection must be closed: the byte stream can no longer be trusted to be in step.
public enum ChannelError: Error, CustomStringConvertible {
    case badHeader(WireError)
    case truncatedMessage(expected: Int)

    public var description: String {
        switch self {
        case let .badHeader(e): "unusable message header (\(e))"
        case let .truncatedMessage(expected): "stream ended inside a \(expected)-byte message"
        }
    }
}

/// Frames vfio-user messages on a byte stream. A header whose size cannot be trusted ends the
/// connection (there is no way to find the next message); everything after that is the dispatcher's.
public final class MessageChannel {
    public let stream: ByteStream
    /// Upper bound on a whole message; bounds every allocation a client can cause.
    public let maxMessageSize: UInt32
    public let maxDescriptors: Int

    public init(stream: ByteStream, maxMessageSize: UInt32, maxDescriptors: Int) {
        self.stream = stream
        self.maxMessageSize = maxMessageSize
        self.maxDescriptors = maxDescriptors
    }

    /// The next message, or nil when the client closed the connection between messages.
    public func receive() throws -> ReceivedMessage? {
        var refused = false
        guard let (head, headFDs) = try receiveChunk(MessageHeader.size, maxDescriptors: maxDescriptors, refused: &refused)
        else { return nil }
        let header: MessageHeader
        do {
            header = try MessageHeader(decoding: head[...], maxMessageSize: maxMessageSize)
        } catch let e as WireError {
            throw ChannelError.badHeader(e)
        }
        let payloadSize = Int(header.size) - MessageHeader.size
        var descriptors = headFDs
        var payload: [UInt8] = []
        if payloadSize > 0 {
            guard let (body, bodyFDs) = try receiveChunk(payloadSize, maxDescriptors: maxDescriptors - descriptors.count,
                                                          refused: &refused)
            else { throw ChannelError.truncatedMessage(expected: Int(header.size)) }
            payload = body
            descriptors += bodyFDs
        }
        if refused { descriptors = [] }
        return ReceivedMessage(header: header, payload: payload, descriptors: descriptors, descriptorsRefused: refused)
    }

    /// Too many descriptors leaves the stream in step (the socket closed them), so the message is
    /// still read whole and rejected later instead of dropping the connection.
    private func receiveChunk(_ count: Int, maxDescriptors: Int, refused: inout Bool) throws
        -> (bytes: [UInt8], descriptors: [OwnedDescriptor])? {
        do {
            return try stream.receiveExactly(count, maxDescriptors: max(0, maxDescriptors))
        } catch let UnixSocket.ReceiveError.tooManyDescriptors(bytes, _, _) {
            refused = true
            return (bytes, [])
        }
    }

    /// Sends a successful reply to `request` carrying `payload`.
    public func reply(to request: MessageHeader, payload: [UInt8]) throws {
        try stream.send(MessageHeader.message(id: request.messageID, command: request.command, flags: .reply,
                                              payload: payload), descriptors: [])
    }

    /// Sends an error reply carrying `errno`.
    public func replyError(to request: MessageHeader, errno: UInt32) throws {
        try stream.send(MessageHeader.message(id: request.messageID, command: request.command, flags: [.reply, .error],
                                              error: errno, payload: []), descriptors: [])
    }
}
