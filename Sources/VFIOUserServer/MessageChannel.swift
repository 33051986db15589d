import VFIOUserWire
import VPIOSystem

/// A reliable byte stream that can carry descriptors, used without ever waiting: a UNIX socket in
/// production, an in-memory pipe in dispatcher tests.
public protocol ByteStream: AnyObject {
    /// Whatever is available now, at most `maxBytes`, without waiting: empty when nothing is, nil at
    /// the end of stream. Descriptors come with the chunk that ends with the data they were sent with.
    func receiveAvailable(maxBytes: Int, maxDescriptors: Int) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])?
    /// The same receive, appending the bytes to `buffer` (which is as it was when this throws); returns
    /// the descriptors, or nil at the end of stream. A UNIX socket reads straight into the buffer.
    func receiveAvailable(appendingTo buffer: inout [UInt8], maxBytes: Int, maxDescriptors: Int) throws -> [OwnedDescriptor]?
    /// Sends as much of `bytes` as the stream takes now, without waiting; returns how many it took.
    func sendAvailable(_ bytes: ArraySlice<UInt8>) throws -> Int
}

extension ByteStream {
    public func receiveAvailable(appendingTo buffer: inout [UInt8], maxBytes: Int, maxDescriptors: Int) throws -> [OwnedDescriptor]? {
        guard let chunk = try receiveAvailable(maxBytes: maxBytes, maxDescriptors: maxDescriptors) else { return nil }
        buffer += chunk.bytes
        return chunk.descriptors
    }
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

/// Frames vfio-user messages on a byte stream without ever waiting on it: each `readAvailable` takes
/// what the stream has, `nextMessage` frames whole messages from what was taken, and replies queue
/// until the stream accepts them. A header whose size cannot be trusted ends the connection (there
/// is no way to find the next message); everything after that is the dispatcher's.
///
/// Bounded by construction: input is read only while no reply is queued and each read stops at the
/// end of the message under way (or `readAhead` bytes), so buffered input stays below
/// `maxMessageSize + readAhead`; messages are framed only while no reply is queued, so the queue
/// holds at most one reply beyond what the stream took. `waitingSince` says how long the channel has
/// been stuck mid-message or with a queued reply, so the server can close a stalled client.
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
    /// Reply bytes the stream has not taken yet.
    private var outbound: [UInt8] = []
    /// When the message under way began arriving, or the first queued reply was queued.
    private var incompleteSince: ContinuousClock.Instant?
    private var queuedSince: ContinuousClock.Instant?
    static let readAhead = 512

    public init(stream: ByteStream, maxMessageSize: UInt32, maxDescriptors: Int) {
        self.stream = stream
        self.maxMessageSize = maxMessageSize
        self.maxDescriptors = maxDescriptors
    }

    /// Whether the channel takes input now: not while a reply waits for the stream to take it.
    public var acceptsInput: Bool { outbound.isEmpty }
    /// Whether replies wait for the stream to take them (poll for writability).
    public var hasQueuedReplies: Bool { !outbound.isEmpty }
    /// Since when the channel has been stuck — mid-message or with a reply the stream did not take —
    /// or nil when it is not.
    public var waitingSince: ContinuousClock.Instant? {
        switch (incompleteSince, queuedSince) {
        case let (a?, b?): min(a, b)
        case let (a, b): a ?? b
        }
    }

    /// One receive of what the stream has now. Returns false at the end of stream between messages;
    /// throws at an end of stream mid-message.
    public func readAvailable() throws -> Bool {
        let received: [OwnedDescriptor]?
        let wasEmpty = buffer.isEmpty, maxBytes = wanted
        do {
            // Straight into `buffer`, whose storage stays: no allocation per message.
            received = try stream.receiveAvailable(appendingTo: &buffer, maxBytes: maxBytes, maxDescriptors: maxDescriptors)
        } catch let UnixSocket.ReceiveError.tooManyDescriptors(bytes, _, _) {
            // The socket closed them; the bytes are intact, so the message is rejected, not the stream.
            refusedThrough = consumed + buffer.count + bytes.count - 1
            buffer += bytes
            noteArrival(wasEmpty: wasEmpty)
            return true
        }
        guard let received else {
            if buffer.isEmpty { return false }
            throw ChannelError.truncatedMessage(expected: max(announcedSize, MessageHeader.size))
        }
        noteArrival(wasEmpty: wasEmpty)
        if !received.isEmpty {
            let end = consumed + buffer.count - 1
            descriptors += received.map { (end, $0) }
            refuseExcessDescriptors()
        }
        return true
    }

    /// The next whole message already received, or nil if none is.
    public func nextMessage() throws -> ReceivedMessage? {
        guard let header = try header(), buffer.count >= Int(header.size) else { return nil }
        let size = Int(header.size)
        let payload = Array(buffer[MessageHeader.size..<size])
        let end = consumed + size
        var mine: [OwnedDescriptor] = []
        if !descriptors.isEmpty {
            mine = descriptors.filter { $0.end < end }.map(\.descriptor)
            descriptors.removeAll { $0.end < end }
        }
        let refused = refusedThrough >= consumed && refusedThrough < end
        buffer.removeSubrange(0..<size)
        consumed = end
        incompleteSince = buffer.isEmpty ? nil : .now
        return ReceivedMessage(header: header, payload: payload, descriptors: refused ? [] : mine, descriptorsRefused: refused)
    }

    /// Queues a successful reply to `request` carrying `payload`, and sends what the stream takes.
    public func reply(to request: MessageHeader, payload: [UInt8]) throws {
        MessageHeader.append(id: request.messageID, command: request.command, flags: .reply, payload: payload, to: &outbound)
        try flush()
    }

    /// Queues an error reply carrying `errno`, and sends what the stream takes.
    public func replyError(to request: MessageHeader, errno: UInt32) throws {
        MessageHeader.append(id: request.messageID, command: request.command, flags: [.reply, .error], error: errno,
                             payload: [], to: &outbound)
        try flush()
    }

    /// Sends as much of the queued replies as the stream takes now. The queue keeps its storage, so
    /// replies are encoded in place: no allocation per reply.
    public func flush() throws {
        var sent = 0
        while sent < outbound.count {
            let taken = try stream.sendAvailable(outbound[sent...])
            if taken == 0 { break }
            sent += taken
        }
        if sent == outbound.count { outbound.removeAll(keepingCapacity: true) } else { outbound.removeFirst(sent) }
        queuedSince = outbound.isEmpty ? nil : (queuedSince ?? .now)
    }

    /// The buffered header, or nil if fewer than its bytes are buffered.
    private func header() throws -> MessageHeader? {
        guard buffer.count >= MessageHeader.size else { return nil }
        do {
            return try MessageHeader(decoding: buffer[0..<MessageHeader.size], maxMessageSize: maxMessageSize)
        } catch let e as WireError {
            throw ChannelError.badHeader(e)
        }
    }

    /// How much to read: the rest of the message under way, at least `readAhead` (a header not yet
    /// whole, or one that cannot be trusted, asks for `readAhead`).
    private var wanted: Int { max(Self.readAhead, announcedSize - buffer.count) }

    /// The size the buffered header announces; 0 while it is incomplete or unusable.
    private var announcedSize: Int { ((try? header())?.size).map(Int.init) ?? 0 }

    /// A message starts arriving when bytes land in an empty buffer: its wait bound runs from then.
    private func noteArrival(wasEmpty: Bool) {
        if wasEmpty, !buffer.isEmpty { incompleteSince = .now }
    }

    /// Reads happen only with no whole message buffered, so every descriptor held belongs to the
    /// message under way: more than one may carry, over any number of chunks, are closed at once and
    /// the message is refused, so a client cannot pile descriptors up.
    private func refuseExcessDescriptors() {
        guard descriptors.count > maxDescriptors else { return }
        descriptors.forEach { $0.descriptor.close() }
        descriptors.removeAll()
        refusedThrough = consumed + buffer.count - 1
    }
}
