/// The 16-byte header in front of every vfio-user message, command or reply.
public struct MessageHeader: Equatable, Sendable {
    public static let size = 16

    /// Message type and modifiers (the header's flags word).
    public struct Flags: OptionSet, Equatable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// Type field value 1: this is a reply. (Type 0, a command, is the empty set.)
        public static let reply = Flags(rawValue: 0x1)
        /// The sender does not want a reply.
        public static let noReply = Flags(rawValue: 0x10)
        /// The reply reports failure; `error` holds the errno.
        public static let error = Flags(rawValue: 0x20)

        static let typeMask: UInt32 = 0xF
        static let known: UInt32 = typeMask | 0x10 | 0x20
    }

    public var messageID: UInt16
    /// The raw command number; unknown numbers must still be answered with an error.
    public var command: UInt16
    /// Total message size, header included.
    public var size: UInt32
    public var flags: Flags
    public var error: UInt32

    public init(messageID: UInt16, command: UInt16, size: UInt32, flags: Flags = [], error: UInt32 = 0) {
        self.messageID = messageID
        self.command = command
        self.size = size
        self.flags = flags
        self.error = error
    }

    /// Whether this is a reply (type 1) rather than a command (type 0).
    public var isReply: Bool { flags.rawValue & Flags.typeMask == 1 }

    /// Decodes a header and checks what can be checked without the payload: a known type, no
    /// unknown flag bits, and `size` between the header size and `maxMessageSize`.
    public init(decoding bytes: ArraySlice<UInt8>, maxMessageSize: UInt32) throws {
        var r = ByteReader(bytes)
        messageID = try r.u16()
        command = try r.u16()
        size = try r.u32()
        flags = Flags(rawValue: try r.u32())
        error = try r.u32()
        guard size >= UInt32(Self.size), size <= maxMessageSize else { throw WireError.badMessageSize(size) }
        guard flags.rawValue & ~Flags.known == 0, flags.rawValue & Flags.typeMask <= 1 else {
            throw WireError.invalidField("header flags 0x\(String(flags.rawValue, radix: 16))")
        }
    }

    public func encode(into w: inout ByteWriter) {
        w.u16(messageID)
        w.u16(command)
        w.u32(size)
        w.u32(flags.rawValue)
        w.u32(error)
    }

    /// A complete message: this header with `size` set from the payload, then the payload.
    public static func message(id: UInt16, command: UInt16, flags: Flags, error: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size + payload.count)
        append(id: id, command: command, flags: flags, error: error, payload: payload, to: &bytes)
        return bytes
    }

    /// Appends the same message to `bytes` (a reply queue), without building it apart first.
    public static func append(id: UInt16, command: UInt16, flags: Flags, error: UInt32 = 0, payload: [UInt8],
                              to bytes: inout [UInt8]) {
        ByteWriter.appending(to: &bytes) { w in
            MessageHeader(messageID: id, command: command, size: UInt32(size + payload.count), flags: flags, error: error)
                .encode(into: &w)
            w.append(payload)
        }
    }
}
