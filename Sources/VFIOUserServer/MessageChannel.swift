import VFIOUserWire
import VPIOSystem

/// A reliable byte stream that can carry descriptors: a UNIX socket in production, an in-memory
/// pipe in dispatcher tests.
public protocol ByteStream: AnyObject {
    /// Whatever is available now, at most `maxBytes` (blocking for at least one byte); nil at the
    /// end of stream. Descriptors come with the chunk that ends with the data they were sent with.
    func receiveAvailable(maxBytes: Int, maxDescriptors: Int) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])?
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

/// Frames vfio-user messages on a byte stream, reading ahead so one message usually costs one
/// receive call. A header whose size cannot be trusted ends the connection (there is no way to
/// find the next message); everything after that is the dispatcher's.
public final class MessageChannel {
    public let stream: ByteStream
    /// Upper bound on a whole message; bounds every allocation a client can cause.
    public let maxMessageSize: UInt32
    public let maxDescriptors: Int

    /// Bytes received and not yet framed, from stream offset `consumed`.
    private var buffer: [UInt8] = []
    private var consumed = 0
    /// Descriptors received, each tagged with the stream offset of the last byte that came with it.
    private var descriptors: [(end: Int, descriptor: OwnedDescriptor)] = []
    /// Stream offsets below this belong to a message whose descriptors were refused.
    private var refusedThrough = -1
    static let readAhead = 512

    public init(stream: ByteStream, maxMessageSize: UInt32, maxDescriptors: Int) {
        self.stream = stream
        self.maxMessageSize = maxMessageSize
        self.maxDescriptors = maxDescriptors
    }

    /// The next message, or nil when the client closed the connection between messages.
    public func receive() throws -> ReceivedMessage? {
        guard try fill(MessageHeader.size) else { return nil }
        let header: MessageHeader
        do {
            header = try MessageHeader(decoding: buffer[0..<MessageHeader.size], maxMessageSize: maxMessageSize)
        } catch let e as WireError {
            throw ChannelError.badHeader(e)
        }
        let size = Int(header.size)
        guard try fill(size) else { throw ChannelError.truncatedMessage(expected: size) }
        let payload = Array(buffer[MessageHeader.size..<size])
        let end = consumed + size
        let mine = descriptors.filter { $0.end < end }.map(\.descriptor)
        descriptors.removeAll { $0.end < end }
        let refused = refusedThrough >= consumed && refusedThrough < end
        buffer.removeSubrange(0..<size)
        consumed = end
        return ReceivedMessage(header: header, payload: payload, descriptors: refused ? [] : mine, descriptorsRefused: refused)
    }

    /// Whether a whole message (by its header's size) is already buffered: the socket will not poll
    /// readable for it, so the server must serve it before it waits again. An unusable header counts as
    /// whole, so that `receive` reports it at once.
    public var hasBufferedMessage: Bool {
        guard buffer.count >= MessageHeader.size else { return false }
        guard let header = try? MessageHeader(decoding: buffer[0..<MessageHeader.size], maxMessageSize: maxMessageSize)
        else { return true }
        return buffer.count >= Int(header.size)
    }

    /// Reads until `count` bytes are buffered; false at a clean end of stream with nothing buffered.
    private func fill(_ count: Int) throws -> Bool {
        while buffer.count < count {
            let chunk: (bytes: [UInt8], descriptors: [OwnedDescriptor])?
            do {
                chunk = try stream.receiveAvailable(maxBytes: max(Self.readAhead, count - buffer.count),
                                                    maxDescriptors: maxDescriptors)
            } catch let UnixSocket.ReceiveError.tooManyDescriptors(bytes, _, _) {
                // The socket closed them; the bytes are intact, so the message is rejected, not the stream.
                refusedThrough = consumed + buffer.count + bytes.count - 1
                buffer += bytes
                continue
            }
            guard let chunk else {
                if buffer.isEmpty { return false }
                throw ChannelError.truncatedMessage(expected: count)
            }
            buffer += chunk.bytes
            let end = consumed + buffer.count - 1
            descriptors += chunk.descriptors.map { (end, $0) }
        }
        return true
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
