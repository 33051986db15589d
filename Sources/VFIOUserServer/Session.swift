import Logging
import VFIOUserWire
import VPIOSystem

/// Whether this client's device accesses may reach the device now: with one device shared between
/// clients, only its owner's do; the others' wait, holding their reply (SHARING.md).
public protocol AccessAdmission: AnyObject {
    /// Whether a BAR access may be served now; false holds the message until it may.
    func mayAccess() -> Bool
    /// After a BAR access was served: whether its reply may go now (false when the device was switched
    /// away at this access; the reply then waits until `mayAccess`).
    func mayReply() -> Bool
}

/// One client connection: version negotiation, the DMA map table and interrupt descriptors it
/// installed, and the dispatch of its commands to the endpoint. Validate, then dispatch: a message
/// that fails decoding gets an errno reply and one log line; only an untrustworthy header ends the
/// connection.
public final class Session {
    /// The protocol version this server speaks.
    public static let version = (major: UInt16(0), minor: UInt16(1))

    /// What came of one message.
    enum Outcome {
        case reply([UInt8])
        case failure(errno: UInt32, reason: String)
    }

    public struct Counters: Codable, Equatable, Sendable {
        public var messages = 0
        public var rejected = 0
        public var dmaMaps = 0
        public var dmaUnmaps = 0
        /// Device accesses held (before they were served, or their reply after), and those failed
        /// because they were held past `ServerLimits.holdMilliseconds`.
        public var held = 0
        public var holdTimeouts = 0
    }

    /// A device access the admission holds back: not served yet, or served with its reply withheld.
    enum Held {
        case message(ReceivedMessage)
        case reply(MessageHeader, Outcome)
    }

    let channel: MessageChannel
    let endpoint: PCIEndpoint
    let limits: ServerLimits
    let logger: Logger
    public let dma: DMAMapTable
    public private(set) var negotiated: VersionMessage?
    /// The client's resample eventfd (KVM irqfd): readable when the guest EOIs the INTx.
    public private(set) var unmaskEvent: EventFD?
    /// The client's error-notification eventfd (VFIO_PCI_ERR_IRQ_INDEX): kept, never signalled.
    public private(set) var errorEvent: EventFD?
    public private(set) var counters = Counters()
    let admission: AccessAdmission?
    /// The access being held and since when. A struct, not a tuple: checked several times per
    /// message, and an optional tuple is tested through the runtime's generic metadata.
    private struct HeldAccess {
        let what: Held
        let since: ContinuousClock.Instant
    }
    private var held: HeldAccess?

    /// - Parameter dma: the server's DMA map table, which this connection fills and empties at close.
    public init(stream: ByteStream, endpoint: PCIEndpoint, dma: DMAMapTable, limits: ServerLimits, admission: AccessAdmission? = nil,
                logger: Logger) {
        channel = MessageChannel(stream: stream, maxMessageSize: limits.maxMessageSize, maxDescriptors: limits.maxDescriptors)
        self.endpoint = endpoint
        self.limits = limits
        self.admission = admission
        self.logger = logger
        self.dma = dma
    }

    /// Whether a device access of this client is being held: nothing more is read from it meanwhile.
    public var isHolding: Bool { held != nil }

    /// Since when the held access has waited.
    public var holdingSince: ContinuousClock.Instant? { held?.since }

    /// Drops what this connection installed; the device itself is left as it is.
    public func close() {
        endpoint.intx.setTrigger(nil)
        unmaskEvent = nil
        errorEvent = nil
        dma.unmapAll()
    }

    /// Serves every whole message received, reading once from the stream when `reading` (it polled
    /// readable) and the channel takes input. Returns false when the client closed the connection;
    /// throws when the connection must be dropped. Messages read ahead are served before the caller
    /// polls again: QEMU sends DMA_MAP/UNMAP batches without waiting and then waits for the last reply.
    public func serveAvailable(reading: Bool) throws -> Bool {
        try serveBuffered()
        if reading, channel.acceptsInput {
            guard try channel.readAvailable() else { return false }
            try serveBuffered()
        }
        return true
    }

    /// Serves the held access once admitted, then whole buffered messages while their replies can be
    /// sent and nothing is held.
    private func serveBuffered() throws {
        try resumeHeld()
        while held == nil, channel.acceptsInput, let message = try channel.nextMessage() {
            counters.messages += 1
            try serve(message)
        }
    }

    /// Throws when a reply cannot be sent (the client is gone).
    private func serve(_ message: ReceivedMessage) throws {
        let header = message.header
        if header.isReply {
            // This server sends no commands, so no reply is expected: say so rather than stay silent.
            try reject(header, errno: Errno.EINVAL, reason: "unexpected reply message", send: true)
            return
        }
        let device = Self.reachesDevice(message)
        if device, let admission, !admission.mayAccess() { return hold(.message(message)) }
        let outcome = handle(message)
        if device, let admission, !admission.mayReply() { return hold(.reply(header, outcome)) }
        try send(outcome, for: header)
    }

    private func send(_ outcome: Outcome, for header: MessageHeader) throws {
        switch outcome {
        case let .reply(payload):
            if !header.flags.contains(.noReply) { try channel.reply(to: header, payload: payload) }
        case let .failure(errno, reason):
            try reject(header, errno: errno, reason: reason, send: !header.flags.contains(.noReply))
        }
    }

    private func hold(_ what: Held) {
        held = HeldAccess(what: what, since: .now)
        counters.held += 1
    }

    /// Serves (or answers) the held access when the admission lets it; fails it with EBUSY once it has
    /// waited past the server's own bound, so nothing waits without bound even if the sharing stalls.
    func resumeHeld() throws {
        guard let what = held?.what, let since = held?.since else { return }
        if ContinuousClock.now - since >= .milliseconds(limits.holdMilliseconds) {
            held = nil
            counters.holdTimeouts += 1
            let header = switch what { case let .message(m): m.header; case let .reply(h, _): h }
            return try reject(header, errno: Errno.EBUSY, reason: "device access held for \(limits.holdMilliseconds) ms", send: true)
        }
        guard admission?.mayAccess() ?? true else { return }
        held = nil
        switch what {
        case let .message(message): try serve(message)
        case let .reply(header, outcome): try send(outcome, for: header)
        }
    }

    /// A BAR access (config space, region 7, is the client's own and never waits).
    static func reachesDevice(_ message: ReceivedMessage) -> Bool {
        guard let command = Command(rawValue: message.header.command) else { return false }
        switch command {
        case .regionRead, .regionWrite:
            // A payload too short for its access never reaches the device: `handle` rejects it.
            guard let access = try? RegionAccess(decodingPrefixOf: message.payload[...]) else { return false }
            return access.region != PCIEndpoint.configRegion
        case .regionWriteMulti, .deviceReset: return true
        default: return false
        }
    }

    private func reject(_ header: MessageHeader, errno: UInt32, reason: String, send: Bool) throws {
        counters.rejected += 1
        let level: Logger.Level = counters.rejected <= 100 ? .warning : .debug
        logger.log(level: level, "rejected message", metadata: [
            "id": "\(header.messageID)", "command": "\(header.command)", "errno": "\(errno)", "reason": "\(reason)",
        ])
        if send { try channel.replyError(to: header, errno: errno) }
    }

    func handle(_ message: ReceivedMessage) -> Outcome {
        guard let command = Command(rawValue: message.header.command) else {
            return .failure(errno: Errno.ENOSYS, reason: "unknown command")
        }
        if message.descriptorsRefused {
            return .failure(errno: Errno.EINVAL, reason: "more than \(limits.maxDescriptors) descriptors")
        }
        if command != .version, negotiated == nil {
            return .failure(errno: Errno.EINVAL, reason: "command before VERSION")
        }
        if message.descriptors.count > 0, command != .dmaMap, command != .deviceSetIRQs {
            return .failure(errno: Errno.EINVAL, reason: "descriptors sent with \(command)")
        }
        let payload = message.payload[...]
        do {
            switch command {
            case .version: return try version(payload)
            case .dmaMap: return try dmaMap(payload, message.descriptors)
            case .dmaUnmap: return try dmaUnmap(payload)
            case .deviceGetInfo:
                try DeviceInfo.validateRequest(payload)
                return .reply(DeviceInfo(flags: DeviceInfo.flagReset | DeviceInfo.flagPCI,
                                         regionCount: PCIEndpoint.regionCount, irqCount: IRQIndex.count).encode())
            case .deviceGetRegionInfo:
                let index = try RegionInfo.requestedIndex(payload)
                guard let info = endpoint.regionInfo(index: index) else {
                    return .failure(errno: Errno.EINVAL, reason: "no region \(index)")
                }
                return .reply(info.encode())
            case .deviceGetIRQInfo:
                let index = try IRQInfo.requestedIndex(payload)
                guard let kind = IRQIndex(rawValue: index) else { return .failure(errno: Errno.EINVAL, reason: "no IRQ index \(index)") }
                let info: IRQInfo = switch kind {
                case .intx: IRQInfo(flags: [.eventfd, .maskable, .automasked], index: index, count: 1)
                // One error-notification vector, so QEMU enables error recovery (its log warned at every
                // boot otherwise); this device has no error to report and never signals it.
                case .err: IRQInfo(flags: [.eventfd], index: index, count: 1)
                case .msi, .msix, .req: IRQInfo(flags: [.eventfd], index: index, count: 0)
                }
                return .reply(info.encode())
            case .deviceSetIRQs: return try setIRQs(payload, message.descriptors)
            case .regionRead:
                let request = try RegionReadRequest(decoding: payload, maxCount: limits.maxDataTransfer)
                let a = request.access
                // The data is read straight into the reply: one allocation per read.
                var reply = RegionReadRequest.reply(access: a, data: [], reservingCapacity: Int(a.count))
                try endpoint.read(region: a.region, offset: a.offset, count: Int(a.count), appendingTo: &reply)
                return .reply(reply)
            case .regionWrite:
                let request = try RegionWriteRequest(decoding: payload, maxCount: limits.maxDataTransfer)
                let a = request.access
                try endpoint.write(region: a.region, offset: a.offset, data: request.data)
                return .reply(RegionWriteRequest.reply(access: a))
            case .regionWriteMulti:
                let batch = try RegionWriteMultiRequest(decoding: payload)
                for w in batch.writes {
                    try endpoint.write(region: w.access.region, offset: w.access.offset, data: w.data)
                }
                return .reply([])
            case .deviceReset:
                endpoint.reset()
                return .reply([])
            case .deviceGetRegionIOFDs, .dmaRead, .dmaWrite, .dirtyPages, .deviceFeature,
                 .migrationDataRead, .migrationDataWrite:
                return .failure(errno: Errno.ENOTSUP, reason: "\(command) not supported")
            }
        } catch let e as WireError {
            return .failure(errno: e.errno, reason: e.description)
        } catch let e as PCIEndpoint.AccessError {
            return .failure(errno: e.errno, reason: "\(e)")
        } catch let e as DMAMapTable.MapError {
            return .failure(errno: e.errno, reason: "\(e)")
        } catch {
            return .failure(errno: Errno.EIO, reason: "\(error)")
        }
    }

    private func version(_ payload: ArraySlice<UInt8>) throws -> Outcome {
        guard negotiated == nil else { return .failure(errno: Errno.EINVAL, reason: "VERSION sent twice") }
        let client = try VersionMessage(decoding: payload)
        guard client.major == Self.version.major else {
            return .failure(errno: Errno.ENOTSUP, reason: "client major version \(client.major)")
        }
        let ours = VersionMessage(major: Self.version.major, minor: min(client.minor, Self.version.minor),
                                  capabilities: limits.capabilities)
        negotiated = client
        logger.info("client version negotiated", metadata: ["client": "\(client.major).\(client.minor)"])
        return .reply(ours.encode())
    }

    private func dmaMap(_ payload: ArraySlice<UInt8>, _ fds: [OwnedDescriptor]) throws -> Outcome {
        let request = try DMAMapRequest(decoding: payload)
        guard fds.count <= 1 else { return .failure(errno: Errno.EINVAL, reason: "DMA_MAP with \(fds.count) descriptors") }
        try dma.map(request, descriptor: fds.first?.descriptor)
        counters.dmaMaps += 1
        logger.debug("dma map", metadata: ["address": "0x\(String(request.address, radix: 16))",
                                           "size": "0x\(String(request.size, radix: 16))", "fd": "\(fds.count)"])
        return .reply([])
    }

    private func dmaUnmap(_ payload: ArraySlice<UInt8>) throws -> Outcome {
        let request = try DMAUnmapRequest(decoding: payload)
        if request.unmapsAll { dma.unmapAll() } else { try dma.unmap(address: request.address, size: request.size) }
        counters.dmaUnmaps += 1
        return .reply(request.encode())
    }

    private func setIRQs(_ payload: ArraySlice<UInt8>, _ fds: [OwnedDescriptor]) throws -> Outcome {
        let request = try SetIRQsRequest(decoding: payload)
        let intx = endpoint.intx
        if request.data == .eventfd, fds.count != Int(request.count) {
            return .failure(errno: Errno.EINVAL, reason: "SET_IRQS count \(request.count) with \(fds.count) descriptors")
        }
        if request.data != .eventfd, !fds.isEmpty {
            return .failure(errno: Errno.EINVAL, reason: "SET_IRQS descriptors without DATA_EVENTFD")
        }
        if request.index == IRQIndex.err.rawValue, request.action == .trigger, request.start == 0, request.count <= 1 {
            errorEvent = fds.first.map { EventFD(adopting: $0) }
            return .reply([])
        }
        guard request.index == IRQIndex.intx.rawValue else {
            // MSI/MSI-X have no vectors here: only "disable all" (count 0) is meaningful.
            guard IRQIndex(rawValue: request.index) != nil, request.count == 0 else {
                return .failure(errno: Errno.EINVAL, reason: "SET_IRQS index \(request.index) count \(request.count)")
            }
            return .reply([])
        }
        guard request.start == 0, request.count <= 1 else {
            return .failure(errno: Errno.EINVAL, reason: "SET_IRQS INTx start \(request.start) count \(request.count)")
        }
        // For DATA_BOOL, a false entry means "do nothing" for this vector.
        let selected: Bool = if case let .bool(values) = request.data { values.first ?? false } else { request.count == 1 }
        switch (request.action, request.data) {
        case (.trigger, .eventfd):
            intx.setTrigger(fds.first.map { EventFD(adopting: $0) })
        case (.trigger, _):
            if request.count == 0 { intx.setTrigger(nil) } else if selected { intx.signalOnce() }
        case (.unmask, .eventfd):
            unmaskEvent = fds.first.map { EventFD(adopting: $0) }
        case (.unmask, _):
            if selected { intx.unmask() }
        case (.mask, .eventfd):
            return .failure(errno: Errno.ENOTSUP, reason: "mask by eventfd")
        case (.mask, _):
            if selected { intx.mask() }
        }
        return .reply([])
    }

    /// The resample eventfd fired: the guest finished with the interrupt.
    public func resampled() {
        _ = try? unmaskEvent?.drain()
        endpoint.intx.unmask()
    }
}
