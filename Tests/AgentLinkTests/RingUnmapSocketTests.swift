import AgentLink
import DeviceBus
import Foundation
import Logging
import PCIFunction
import Testing
import VFIOUserClient
import VFIOUserServer
import VFIOUserWire
import VPIOProtocol
import VPIOSystem

/// A device standing in for the gate: a BAR0 write at offset 0 is a DMA start, at which the host reads
/// the agent's ring (`AgentMonitor.verify`), as vpio-host's DMAGate does; BAR0 reads report what the
/// reader did, so a client sees it over the wire (and the server thread owns every counter).
final class RingProbeDevice: BusDevice {
    let regionSizes: [UInt32: UInt32] = [0: 32]
    var monitor: AgentMonitor?
    private var outcome: UInt32 = 0

    /// 0: records read, 1: slots unreadable, 2: the last start's outcome (1 hit, 2 miss, 3 mismatch, 4 none).
    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
        guard let counters = monitor?.channel.counters else { return 0 }
        switch offset {
        case 0: return UInt32(counters.recordsRead)
        case 1: return UInt32(counters.unreadable)
        case 2: return outcome
        default: return 0
        }
    }

    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        guard offset == 0, let monitor else { return }
        switch monitor.verify(kind: .remoteRead, start: 0x4C00) {
        case .hit?: outcome = 1
        case .miss?: outcome = 2
        case .mismatch?: outcome = 3
        case nil: outcome = 4
        }
    }

    func reset() {}
}

/// vpio-host's wiring of the agent link (host-monitor/vpio-host/VPIOHost.swift) around the probe device:
/// the ring is read through the current session's DMA map table, on the real poll loop, on a thread.
final class AgentServerThread: @unchecked Sendable {
    let path = NSTemporaryDirectory() + "vpio-ring-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    private let lock = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        let listener = UncheckedSendable(try UnixSocket.listen(at: FilePath(path)))
        Thread.detachNewThread { [self] in
            let device = RingProbeDevice()
            let intx = INTxRouter()
            let endpoint = PCIEndpoint(identity: .rtl8029, device: device, interruptLine: InterruptLine { intx.lineChanged($0) }, intx: intx)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let server = VFIOUserServer(endpoint: endpoint, logger: logger)
            let monitor = AgentMonitor(capability: AgentCapability(endpoint: endpoint, channel: AgentChannel())) { [unowned server] in
                server.session?.dma
            }
            endpoint.configWritten = { [unowned server] in monitor.capability.configWritten(offset: $0, count: $1, memory: server.session?.dma) }
            device.monitor = monitor
            try? server.run(listener: listener.value, sources: [], tickMilliseconds: 20) { self.lock.withLock { self.stopping } }
            done.signal()
        }
    }

    func shutdown() {
        lock.withLock { stopping = true }
        done.wait()
        try? FileManager.default.removeItem(atPath: path)
    }
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The agent's side over the socket: guest RAM in a memfd that the client maps for DMA, the ring at its
/// start (pages contiguous), registered through the VPIO capability in config space.
final class RingClient {
    static let ramAddress: UInt64 = 0x10_0000
    static let ramSize: UInt64 = 0x4_0000
    let client: VFIOUserClient
    let ram: OwnedDescriptor
    private var header = RingHeader()

    init(path: String) throws {
        client = try VFIOUserClient(connectingTo: FilePath(path))
        try client.negotiate()
        ram = try OwnedDescriptor.memoryFile(name: "guest-ram", length: Int64(Self.ramSize))
        try store(header.encode(), at: 0)
    }

    var pages: [UInt64] { (0..<VPIORing.pages).map { Self.ramAddress + UInt64($0 * VPIORing.pageSize) } }

    func store(_ bytes: [UInt8], at offset: Int) throws {
        _ = try ram.descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes)
    }

    func map() throws {
        let request = DMAMapRequest(flags: [.readable, .writable], fileOffset: 0, address: Self.ramAddress, size: Self.ramSize)
        _ = try client.call(.dmaMap, request.encode(), descriptors: [ram.descriptor])
    }

    func unmap() throws {
        _ = try client.call(.dmaUnmap, DMAUnmapRequest(address: Self.ramAddress, size: Self.ramSize).encode())
    }

    /// Page addresses, page count, then the register command (config space is region 7).
    func register() throws {
        let base = UInt64(VPIOCapability.offset)
        for (i, page) in pages.enumerated() {
            try client.write(region: 7, offset: base + UInt64(VPIOCapability.Field.pages + 8 * i), data: littleEndian(page, 8))
        }
        try client.write(region: 7, offset: base + UInt64(VPIOCapability.Field.pageCount), data: littleEndian(UInt64(VPIORing.pages), 4))
        try client.write(region: 7, offset: base + UInt64(VPIOCapability.Field.command), data: littleEndian(1, 4))
    }

    var status: VPIOCapability.Status {
        get throws {
            let bytes = try client.read(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.status), count: 4)
            return VPIOCapability.Status(rawValue: bytes.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) })
        }
    }

    /// Writes the next intent into the ring as the agent's probe does (record, then head and count).
    func produceIntent() throws {
        let n = header.head
        let record = RingRecord(sequence: n &+ 1, body: .dmaIntent(kind: .remoteRead, command: 0x0A, start: 0x4C00, count: 4,
                                                                    intentIndex: header.intentsWritten, accessIndex: 0))
        try store(record.encode(), at: VPIORing.recordOffset(slot: Int(n % UInt64(VPIORing.capacity))))
        header.head = n &+ 1
        header.intentsWritten &+= 1
        try store(header.encode(), at: 0)
    }

    /// Starts a DMA on the probe device; returns (records read, unreadable slots, outcome) after it.
    func startDMA() throws -> (read: UInt8, unreadable: UInt8, outcome: UInt8) {
        try client.write(region: 0, offset: 0, data: [1])
        let read = try client.read(region: 0, offset: 0, count: 1)[0]
        let unreadable = try client.read(region: 0, offset: 1, count: 1)[0]
        return (read, unreadable, try client.read(region: 0, offset: 2, count: 1)[0])
    }

    private func littleEndian(_ value: UInt64, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}

/// Issue 11, item 5: DMA_UNMAP of the guest memory that holds the registered ring. The host reads the
/// ring only through the session's DMA map table, at each DMA start; a range unmapped is gone from it
/// (and its descriptor closed) before the reply, so the very next start reads nothing there — an intent
/// written into the memory after the unmap is never seen, though the ring stays registered.
@Suite(.serialized) struct RingUnmapSocketTests {
    @Test func afterDMAUnmapTheHostNoLongerReadsTheRing() throws {
        let server = try AgentServerThread()
        defer { server.shutdown() }
        let agent = try RingClient(path: server.path)
        try agent.map()
        try agent.register()
        #expect(try agent.status.contains(.registered))

        // Mapped: the intent written before the start is read and matches.
        try agent.produceIntent()
        let mapped = try agent.startDMA()
        #expect(mapped.read == 1 && mapped.unreadable == 0 && mapped.outcome == 1, "\(mapped)")

        // Unmapped: the memfd still holds the next intent (the client can write it), the host reads none.
        try agent.unmap()
        try agent.produceIntent()
        let unmapped = try agent.startDMA()
        #expect(unmapped.read == 1, "the host read the ring after DMA_UNMAP: \(unmapped)")
        #expect(unmapped.unreadable >= 1 && unmapped.outcome == 2, "\(unmapped)")
        #expect(try agent.status.contains(.registered), "the registration itself stays")

        // Mapped again at the same address: the ring is read again from where the reader stopped
        // (so what the unmapped start missed was the mapping, not the record).
        try agent.map()
        try agent.produceIntent()
        let remapped = try agent.startDMA()
        #expect(remapped.read == 3 && remapped.unreadable == unmapped.unreadable, "\(remapped)")
    }
}
