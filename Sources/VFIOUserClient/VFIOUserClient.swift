import VFIOUserWire
import VPIOSystem

/// A minimal synchronous vfio-user client: what QEMU does, reduced to what benchmarks and socket
/// tests need (negotiate, then region reads and writes, one round trip each).
public final class VFIOUserClient {
    public struct ServerError: Error, Equatable {
        public let command: UInt16
        public let errno: UInt32
        public init(command: UInt16, errno: UInt32) {
            self.command = command
            self.errno = errno
        }
    }

    public enum ProtocolError: Error {
        case closed
        case unexpectedReply(MessageHeader)
    }

    let socket: UnixSocket
    private var nextID: UInt16 = 0
    public private(set) var serverVersion: VersionMessage?

    public init(socket: UnixSocket) { self.socket = socket }

    public convenience init(connectingTo path: FilePath) throws {
        self.init(socket: try UnixSocket.connect(to: path))
    }

    /// Sends VERSION and records the server's answer.
    public func negotiate(capabilities: Capabilities = Capabilities(maxMessageFDs: 16, maxDataTransferSize: 1 << 20)) throws {
        let reply = try call(.version, VersionMessage(major: 0, minor: 1, capabilities: capabilities).encode())
        serverVersion = try VersionMessage(decoding: reply[...])
    }

    public func read(region: UInt32, offset: UInt64, count: UInt32) throws -> [UInt8] {
        let reply = try call(.regionRead, RegionReadRequest(access: RegionAccess(offset: offset, region: region, count: count)).encode())
        return Array(reply.dropFirst(RegionAccess.size))
    }

    public func write(region: UInt32, offset: UInt64, data: [UInt8]) throws {
        _ = try call(.regionWrite, RegionWriteRequest(offset: offset, region: region, data: data).encode())
    }

    /// One command, one reply: returns the reply payload or throws the server's errno.
    public func call(_ command: Command, _ payload: [UInt8], descriptors: [FileDescriptor] = []) throws -> [UInt8] {
        nextID &+= 1
        try socket.send(MessageHeader.message(id: nextID, command: command.rawValue, flags: [], payload: payload),
                        descriptors: descriptors)
        guard let (head, _) = try socket.receiveExactly(MessageHeader.size, maxDescriptors: 0) else { throw ProtocolError.closed }
        let header = try MessageHeader(decoding: head[...], maxMessageSize: 1 << 24)
        guard header.isReply, header.messageID == nextID, header.command == command.rawValue else {
            throw ProtocolError.unexpectedReply(header)
        }
        var body: [UInt8] = []
        if header.size > UInt32(MessageHeader.size) {
            guard let (b, _) = try socket.receiveExactly(Int(header.size) - MessageHeader.size, maxDescriptors: 0) else {
                throw ProtocolError.closed
            }
            body = b
        }
        if header.flags.contains(.error) { throw ServerError(command: header.command, errno: header.error) }
        return body
    }
}
