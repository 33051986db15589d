import DeviceBus
import Logging
import PCIFunction
import VFIOUserServer
import VFIOUserWire
import VPIOSystem

/// A byte stream in memory: the test writes client messages in, the session's replies come out.
final class MemoryStream: ByteStream {
    /// One entry per push, as one sendmsg would arrive: descriptors come with its first byte.
    private var chunks: [(bytes: ArraySlice<UInt8>, descriptors: [OwnedDescriptor])] = []
    private(set) var outbound: [UInt8] = []

    func push(_ bytes: [UInt8], descriptors: [OwnedDescriptor] = []) {
        chunks.append((bytes[...], descriptors))
    }

    func receiveAvailable(maxBytes: Int, maxDescriptors: Int) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])? {
        guard !chunks.isEmpty else { return nil }
        let take = chunks[0].bytes.prefix(maxBytes)
        let fds = chunks[0].descriptors
        chunks[0].descriptors = []
        chunks[0].bytes = chunks[0].bytes.dropFirst(take.count)
        if chunks[0].bytes.isEmpty { chunks.removeFirst() }
        return (Array(take), fds)
    }

    /// Whether every pushed byte has been received.
    var isDrained: Bool { chunks.isEmpty }

    func sendAvailable(_ bytes: ArraySlice<UInt8>) throws -> Int {
        outbound += bytes
        return bytes.count
    }

    /// Removes and returns the next reply: its header and payload.
    func popReply() -> (MessageHeader, [UInt8])? {
        guard outbound.count >= MessageHeader.size,
              let h = try? MessageHeader(decoding: outbound[0..<16], maxMessageSize: 1 << 20),
              outbound.count >= Int(h.size) else { return nil }
        let payload = Array(outbound[16..<Int(h.size)])
        outbound.removeFirst(Int(h.size))
        return (h, payload)
    }
}

/// A device that records every access and answers reads with a fixed pattern of the offset.
final class RecordingDevice: BusDevice {
    struct Access: Equatable { var write: Bool; var offset: UInt64; var width: AccessWidth; var value: UInt32 }
    let regionSizes: [UInt32: UInt32] = [0: 32]
    var accesses: [Access] = []
    var resets = 0

    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
        let value = (UInt32(offset) &* 0x0101_0101 &+ 0x0302_0100) & width.mask
        accesses.append(Access(write: false, offset: offset, width: width, value: value))
        return value
    }

    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        accesses.append(Access(write: true, offset: offset, width: width, value: value))
    }

    func reset() { resets += 1 }
}

/// A session wired to a recording device over a memory stream.
struct Harness {
    let stream = MemoryStream()
    let device = RecordingDevice()
    let line: InterruptLine
    let intx = INTxRouter()
    let endpoint: PCIEndpoint
    let server: VFIOUserServer
    let session: Session
    private var nextID: UInt16 = 1

    init(negotiate: Bool = true, admission: AccessAdmission? = nil, limits: ServerLimits = ServerLimits()) throws {
        let intx = self.intx
        line = InterruptLine { intx.lineChanged($0) }
        endpoint = PCIEndpoint(identity: .rtl8029, device: device, interruptLine: line, intx: intx)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        server = VFIOUserServer(endpoint: endpoint, limits: limits, admission: admission, logger: logger)
        session = server.attach(stream: stream)
        if negotiate {
            let (h, _) = try send(.version, VersionMessage(major: 0, minor: 1, capabilities: Capabilities()).encode())
            precondition(!h.flags.contains(.error))
        }
    }

    /// Sends one command and returns the reply.
    @discardableResult
    mutating func send(_ command: Command, _ payload: [UInt8], flags: MessageHeader.Flags = [],
                       descriptors: [OwnedDescriptor] = []) throws -> (MessageHeader, [UInt8]) {
        try sendRaw(MessageHeader.message(id: nextID, command: command.rawValue, flags: flags, payload: payload),
                    descriptors: descriptors)
        return stream.popReply() ?? (MessageHeader(messageID: 0, command: 0, size: 0), [])
    }

    mutating func sendRaw(_ bytes: [UInt8], descriptors: [OwnedDescriptor] = []) throws {
        nextID &+= 1
        stream.push(bytes, descriptors: descriptors)
        while !stream.isDrained { _ = try session.serveAvailable(reading: true) }
    }
}
