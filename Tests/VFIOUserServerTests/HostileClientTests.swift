import CVPIOShim
import Foundation
import Glibc
import Testing
import VFIOUserClient
import VFIOUserWire
import VPIOSystem

/// Malformed and hostile client traffic over a real socket to the real poll loop (issue 11): each case
/// must get an error reply with the stated errno or a closed connection — never silence — and a
/// well-behaved client connecting right after must be served.
@Suite(.serialized) struct HostileClientTests {
    /// What the server must do with one hostile message.
    enum Expected: CustomStringConvertible {
        case errorReply(UInt32)
        case closed
        var description: String {
            switch self {
            case let .errorReply(errno): "error reply \(errno)"
            case .closed: "closed connection"
            }
        }
    }

    static let read2 = RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 2)).encode()
    static var version: [UInt8] {
        VersionMessage(major: 0, minor: 1, capabilities: Capabilities(maxMessageFDs: 8, maxDataTransferSize: 4096)).encode()
    }

    static func message(_ command: UInt16, flags: UInt32 = 0, _ payload: [UInt8]) -> [UInt8] {
        MessageHeader.message(id: 77, command: command, flags: MessageHeader.Flags(rawValue: flags), payload: payload)
    }

    static func header(size: UInt32, command: UInt16 = Command.regionRead.rawValue, flags: UInt32 = 0) -> [UInt8] {
        var w = ByteWriter(capacity: 16)
        MessageHeader(messageID: 77, command: command, size: size, flags: MessageHeader.Flags(rawValue: flags)).encode(into: &w)
        return w.bytes
    }

    /// Hostile messages sent before VERSION.
    static let beforeVersion: [(String, [UInt8], Expected)] = [
        ("command before VERSION", message(Command.regionRead.rawValue, read2), .errorReply(Errno.EINVAL)),
        ("VERSION with bad JSON", message(Command.version.rawValue, [0, 0, 1, 0] + Array("{\"capabilities\": [".utf8) + [0]),
         .errorReply(Errno.EINVAL)),
        ("VERSION with JSON of the wrong types", message(Command.version.rawValue, [0, 0, 1, 0] + Array("{\"capabilities\":{\"max_msg_fds\":\"x\"}}".utf8) + [0]),
         .errorReply(Errno.EINVAL)),
        ("VERSION of another major", message(Command.version.rawValue, [9, 0, 1, 0] + Array("{}".utf8) + [0]), .errorReply(Errno.ENOTSUP)),
        ("header shorter than a header", header(size: 8), .closed),
        ("header claiming 2 GiB", header(size: 0x7FFF_FFFF), .closed),
        ("unknown header flag bits", header(size: 16, flags: 0x100), .closed),
        ("header of message type 2", header(size: 16, flags: 0x2), .closed),
    ]

    /// Hostile messages sent after a good VERSION.
    static let afterVersion: [(String, [UInt8], Expected)] = [
        ("VERSION twice", message(Command.version.rawValue, version), .errorReply(Errno.EINVAL)),
        ("reply flag on a request", message(Command.regionRead.rawValue, flags: 0x1, read2), .errorReply(Errno.EINVAL)),
        ("unknown command", message(999, []), .errorReply(Errno.ENOSYS)),
        ("region read at offset 2^64 - 1",
         message(Command.regionRead.rawValue, RegionReadRequest(access: RegionAccess(offset: .max, region: 0, count: 4)).encode()),
         .errorReply(Errno.EINVAL)),
        ("region write past the region",
         message(Command.regionWrite.rawValue, RegionWriteRequest(offset: 30, region: 0, data: [1, 2, 3, 4]).encode()),
         .errorReply(Errno.EINVAL)),
        ("region read larger than max_data_xfer_size",
         message(Command.regionRead.rawValue, RegionReadRequest(access: RegionAccess(offset: 0, region: 0, count: 1 << 20)).encode()),
         .errorReply(Errno.EINVAL)),
        ("region read with a short payload", message(Command.regionRead.rawValue, [1, 2, 3]), .errorReply(Errno.EINVAL)),
        ("DMA map wrapping the address space",
         message(Command.dmaMap.rawValue, DMAMapRequest(flags: [.readable], fileOffset: 0, address: .max - 0xFFF, size: 0x2000).encode()),
         .errorReply(Errno.EINVAL)),
        ("DMA map with unknown flags", message(Command.dmaMap.rawValue, DMAMapRequest(flags: .init(rawValue: 0x80), fileOffset: 0,
                                                                                      address: 0, size: 0x1000).encode()),
         .errorReply(Errno.EINVAL)),
        ("DMA unmap of nothing mapped", message(Command.dmaUnmap.rawValue, DMAUnmapRequest(address: 0x1000, size: 0x1000).encode()),
         .errorReply(Errno.ENOENT)),
        ("SET_IRQS for an index that does not exist",
         message(Command.deviceSetIRQs.rawValue, SetIRQsRequest(index: 99, start: 0, count: 1, data: .none, action: .trigger).encode()),
         .errorReply(Errno.EINVAL)),
        ("GET_REGION_INFO of region 2^32 - 1",
         message(Command.deviceGetRegionInfo.rawValue, RegionInfo(flags: [], index: .max, size: 0).encode()), .errorReply(Errno.EINVAL)),
        ("DMA_READ (not supported)", message(Command.dmaRead.rawValue, [UInt8](repeating: 0, count: 24)), .errorReply(Errno.ENOTSUP)),
    ]

    @Test(arguments: beforeVersion) func hostileFirstMessage(name: String, bytes: [UInt8], expected: Expected) throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let socket = try UnixSocket.connect(to: FilePath(server.path))
        try socket.send(bytes)
        try expect(expected, on: socket, name)
        // One client at a time: the next is served once this one is gone.
        socket.close()
        try expectServed(server)
    }

    @Test(arguments: afterVersion) func hostileMessageAfterVersion(name: String, bytes: [UInt8], expected: Expected) throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let (socket, client) = try negotiated(server)
        try socket.send(bytes)
        try expect(expected, on: socket, name)
        if case .errorReply = expected {
            // The same connection goes on.
            #expect(try client.read(region: 7, offset: 0, count: 2) == [0xEC, 0x10], "\(name): connection unusable after")
        }
        socket.close()
        try expectServed(server)
    }

    /// A DMA map longer than the file behind it is refused (EFAULT) instead of crashing the host later.
    @Test func dmaMapLargerThanItsFileIsRefused() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let (_, client) = try negotiated(server)
        let raw = vpio_memfd_create("short-guest-ram")
        try #require(raw >= 0)
        let file = OwnedDescriptor(FileDescriptor(rawValue: raw))
        #expect(ftruncate(raw, 0x1000) == 0)
        let map = DMAMapRequest(flags: [.readable, .writable], fileOffset: 0, address: 0x10_0000, size: 0x10_0000)
        #expect(throws: VFIOUserClient.ServerError(command: Command.dmaMap.rawValue, errno: Errno.EFAULT)) {
            _ = try client.call(.dmaMap, map.encode(), descriptors: [file.descriptor])
        }
        #expect(try client.read(region: 7, offset: 0, count: 2) == [0xEC, 0x10])
    }

    /// A flood of requests whose replies are never read: the server stops reading once its reply
    /// queue is stuck, closes the client after the bound, and serves the next one.
    @Test func aFloodWhoseRepliesAreNeverReadIsClosed() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let flooder = try UnixSocket.connect(to: FilePath(server.path))
        try flooder.send(Self.message(Command.version.rawValue, Self.version))
        let request = MessageHeader.message(id: 1, command: Command.regionRead.rawValue, flags: [],
                                            payload: RegionReadRequest(access: RegionAccess(offset: 0, region: 0, count: 32)).encode())
        let burst = Array([[UInt8]](repeating: request, count: 256).joined())
        var sent = 0
        let start = ContinuousClock.now
        // Until the kernel's buffers in both directions are full; bounded in time, not by the server.
        while ContinuousClock.now - start < .seconds(10) {
            let taken = try flooder.sendAvailable(burst[...])
            if taken == 0 { break }
            sent += taken
        }
        #expect(sent > 64 * 1024, "the server stopped reading before its replies could fill the socket")
        // The server serves one client at a time: this one only once the flooder is closed.
        try expectServed(server)
        #expect(try isClosed(flooder))
    }

    /// Descriptors spread over many one-byte chunks of one message are not piled up: past the limit
    /// they are closed at once and the message is refused.
    @Test func descriptorsOverManyChunksOfOneMessageAreRefused() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let (socket, client) = try negotiated(server)
        let message = Self.message(Command.dmaMap.rawValue, DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0, size: 0x1000).encode())
        let events = try (0..<4).map { _ in try EventFD() }
        let before = try openDescriptorCount()
        for byte in message.prefix(20) {
            try socket.send([byte], descriptors: events.map(\.descriptor))
            // Each chunk must reach the server on its own for the descriptors to stay apart.
            usleep(2000)
        }
        usleep(50_000)
        // The server (a thread of this process) holds at most one message's worth meanwhile, not 80.
        #expect(try openDescriptorCount() - before <= 8, "descriptors of an unfinished message piled up")
        try socket.send(Array(message.dropFirst(20)))
        try expect(.errorReply(Errno.EINVAL), on: socket, "80 descriptors over 20 chunks")
        #expect(try client.read(region: 7, offset: 0, count: 2) == [0xEC, 0x10])
    }

    // MARK: - Helpers

    private func expect(_ expected: Expected, on socket: UnixSocket, _ name: String) throws {
        let ready = try Poll.wait([(socket.descriptor, .readable)], timeoutMilliseconds: 3000)
        guard ready.first?.isEmpty == false else {
            Issue.record("\(name): no reply and no close within 3 s (expected \(expected))")
            return
        }
        let head = try socket.receiveExactly(MessageHeader.size, maxDescriptors: 0)
        switch expected {
        case .closed:
            #expect(head == nil, "\(name): expected the connection closed, got a reply")
        case let .errorReply(errno):
            guard let head else {
                Issue.record("\(name): connection closed, expected an error reply \(errno)")
                return
            }
            let header = try MessageHeader(decoding: head.bytes[...], maxMessageSize: 1 << 20)
            #expect(header.isReply && header.flags.contains(.error) && header.error == errno,
                    "\(name): got flags 0x\(String(header.flags.rawValue, radix: 16)) error \(header.error), expected \(errno)")
            if header.size > 16 { _ = try socket.receiveExactly(Int(header.size) - 16, maxDescriptors: 0) }
        }
    }

    /// A connection that negotiated VERSION, as a raw socket and as a client on it. Bounded: a server
    /// that never answers fails the test instead of hanging it.
    private func negotiated(_ server: ServerThread) throws -> (UnixSocket, VFIOUserClient) {
        let socket = try UnixSocket.connect(to: FilePath(server.path))
        try socket.send(Self.message(Command.version.rawValue, Self.version))
        let ready = try Poll.wait([(socket.descriptor, .readable)], timeoutMilliseconds: 5000)
        try #require(ready.first?.isEmpty == false, "no VERSION reply within 5 s")
        let head = try #require(try socket.receiveExactly(MessageHeader.size, maxDescriptors: 0), "closed instead of a VERSION reply")
        let header = try MessageHeader(decoding: head.bytes[...], maxMessageSize: 1 << 20)
        try #require(!header.flags.contains(.error), "VERSION refused: \(header.error)")
        _ = try socket.receiveExactly(Int(header.size) - MessageHeader.size, maxDescriptors: 0)
        return (socket, VFIOUserClient(socket: socket))
    }

    private func expectServed(_ server: ServerThread) throws {
        let (_, next) = try negotiated(server)
        #expect(try next.read(region: 7, offset: 0, count: 2) == [0xEC, 0x10], "a well-behaved client after it was not served")
    }

    private func openDescriptorCount() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
    }

    /// Whether the server closed `socket`: reading what is left ends in end of stream (or a reset,
    /// since the server closed it with requests unread).
    private func isClosed(_ socket: UnixSocket) throws -> Bool {
        do {
            while try socket.receiveAvailable(maxBytes: 1 << 16, maxDescriptors: 0)?.bytes.isEmpty == false {}
            return try socket.receiveAvailable(maxBytes: 1, maxDescriptors: 0) == nil
        } catch let error as SystemCallError where error.errno == .connectionReset {
            return true
        }
    }
}
