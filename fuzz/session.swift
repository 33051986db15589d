// libFuzzer target: the vfio-user session dispatcher fed message sequences, with descriptors, as a
// hostile client would send them. The session is wired as vpio-host wires it — the NE2000 behind a
// PCIEndpoint, the agent capability, the DMA gate with its ledger and enforcer — but over an
// in-memory stream, so one input is one connection from VERSION to hang-up.
//
// Input: byte 0 sets up the run (the enforced mode; whether a valid VERSION goes first, 3 times in 4,
// so most inputs reach the commands behind negotiation). Then one op per leading byte: a raw chunk,
// a header with a chosen command and free payload, or a well-formed DMA_MAP (with a memfd), DMA_UNMAP,
// SET_IRQS (with eventfds), region access or ring registration; and between messages, what the client
// does out of band: shrink or rewrite the memory files it sent, signal the resample eventfd, deliver
// a frame from the wire.
//
// Invariants, after every input: nothing trapped (ASan, Swift checks); every byte the server sent
// parses as a reply message; every descriptor the input created is closed once its connection is
// gone (the open-descriptor count, checked every 16 inputs). Built by fuzz/run against the
// package's modules (swift build -Xswiftc -sanitize=fuzzer,address).
import AgentLink
import DeviceBus
import Enforcement
import Glibc
import HostMonitor
import Logging
import NE2000
import PCIFunction
import VFIOUserServer
import VFIOUserWire
import VPIOMonitor
import VPIOProtocol
import VPIOSystem

private var leakCheck = DescriptorLeakCheck()
private let quiet = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
/// FUZZ_SESSION_TRACE=1 prints every reply: what a replayed input did.
private let traceReplies = getenv("FUZZ_SESSION_TRACE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    leakCheck.start()
    var input = FuzzInput(data, size)
    runConnection(&input)
    leakCheck.check()
    return 0
}

/// One connection: build the host, script the client, serve until hang-up, tear down, check replies.
private func runConnection(_ input: inout FuzzInput) {
    let setup = input.u8()
    let host = Host(mode: Mode.allCases[Int(setup) % Mode.allCases.count])
    let client = Client(stream: ScriptStream(), host: host)
    if (setup >> 2) & 3 != 0 { client.version() }
    while !input.isEmpty { client.op(&input) }
    host.serve(client.stream)
    if traceReplies { print("agent \(host.agent.channel.counters) \(host.agent.counters) endpoint \(host.endpoint.counters)") }
    host.tearDown()
    client.stream.checkReplies()
}

// MARK: - The host: vpio-host's own wiring (`GuestDevice`), without TAP or trace file.

private final class Host {
    let device: GuestDevice
    var session: Session?

    var agent: AgentMonitor { device.agent }
    var endpoint: PCIEndpoint { device.endpoint }
    var receiveGate: ReceiveGate { device.receiveGate }

    init(mode: Mode) {
        let ledger = try! GuestLedger(enforced: mode, recordPath: nil, live: false, logger: quiet)
        // Our NE2000 backend cannot fail to start (only QEMU's can).
        device = try! GuestDevice(mode: mode, backend: .ours(mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56]), ledger: ledger, logger: quiet) { _ in }
    }

    /// The server's loop for one connection, as VFIOUserServer runs it on a socket that always polls
    /// readable and takes every reply: serve until the client hangs up or must be dropped. (Replies
    /// that queue because the socket is full are not fuzzed: only the server can flush a session's channel.)
    func serve(_ stream: ScriptStream) {
        let session = device.server.attach(stream: stream)
        self.session = session
        defer { session.close() }
        do {
            while try session.serveAvailable(reading: true) {}
        } catch {
            // A connection the server drops (bad header, truncated message) is an outcome, not a failure.
        }
    }

    /// Breaks the cycles vpio-host keeps for its lifetime (endpoint → hooks → agent → endpoint), so
    /// every object and descriptor of this input is freed before the leak check.
    func tearDown() {
        endpoint.configWritten = nil
        endpoint.accessHook = nil
        endpoint.resetObserver = nil
        agent.capability.onRegistered = nil
        session = nil
    }
}

// MARK: - The stream: chunks as sendmsg calls would deliver them, and client actions between them.

private final class ScriptStream: ByteStream {
    enum Item {
        case chunk([UInt8], [OwnedDescriptor])
        /// Runs when the server next reads, i.e. after every earlier message was served.
        case action(() -> Void)
    }

    var items: [Item] = []
    private var next = 0
    private(set) var outbound: [UInt8] = []

    func receiveAvailable(maxBytes: Int, maxDescriptors: Int) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])? {
        while next < items.count, case let .action(run) = items[next] {
            items[next] = .chunk([], [])  // drop the closure (and what it holds) once it has run
            next += 1
            run()
        }
        guard next < items.count, case let .chunk(bytes, descriptors) = items[next] else { return nil }
        let taken = Array(bytes.prefix(maxBytes))
        items[next] = .chunk(Array(bytes.dropFirst(taken.count)), [])
        if taken.count == bytes.count { next += 1 }
        if descriptors.count > maxDescriptors {
            // As UnixSocket does: more than allowed arrive, all are closed, the bytes stay in step.
            throw UnixSocket.ReceiveError.tooManyDescriptors(bytes: taken, received: descriptors.count, limit: maxDescriptors)
        }
        return (taken, descriptors)
    }

    func sendAvailable(_ bytes: ArraySlice<UInt8>) throws -> Int {
        outbound += bytes
        return bytes.count
    }

    /// Everything the server sent must be whole reply messages: a client must be able to frame them.
    func checkReplies() {
        var rest = outbound[...]
        while !rest.isEmpty {
            guard let header = try? MessageHeader(decoding: rest.prefix(MessageHeader.size), maxMessageSize: 1 << 20),
                  header.isReply, Int(header.size) <= rest.count else {
                fatalError("server sent bytes that are not a reply message: \(Array(rest.prefix(32)))")
            }
            if traceReplies { print("reply id \(header.messageID) command \(header.command) error \(header.error) size \(header.size)") }
            rest = rest.dropFirst(Int(header.size))
        }
    }
}

// MARK: - The client: turns input bytes into messages, descriptors and out-of-band actions.

private final class Client {
    let stream: ScriptStream
    unowned let host: Host
    /// Our own copy of every memory file sent, so later ops can shrink or rewrite it (as QEMU's guest
    /// RAM changes under the server). Closed when the input ends.
    private var files: [OwnedDescriptor] = []
    private var nextID: UInt16 = 1
    private let pageSize: UInt64 = 4096

    init(stream: ScriptStream, host: Host) {
        self.stream = stream
        self.host = host
    }

    func version() {
        send(.version, VersionMessage(major: 0, minor: 1, capabilities: Capabilities()).encode())
    }

    /// One op; the low 3 bits of its byte choose what, the rest is a parameter of it.
    func op(_ input: inout FuzzInput) {
        let op = input.u8()
        switch op & 7 {
        case 0: rawChunk(&input, descriptors: Int(op >> 3) & 0xF)
        case 1: freeMessage(&input, descriptors: Int(op >> 5))
        case 2: dmaMap(&input, descriptorCount: op >> 3 == 0 ? 1 : Int(op >> 3) % 3)
        case 3: dmaUnmap(&input)
        case 4: setIRQs(&input)
        case 5: regionAccess(&input)
        case 6: register(&input)
        default: outOfBand(&input)
        }
    }

    // Messages.

    private func send(_ command: Command, _ payload: [UInt8], flags: MessageHeader.Flags = [],
                      descriptors: [OwnedDescriptor] = []) {
        send(raw: command.rawValue, payload, flags: flags, descriptors: descriptors)
    }

    private func send(raw command: UInt16, _ payload: [UInt8], flags: MessageHeader.Flags, descriptors: [OwnedDescriptor]) {
        nextID &+= 1
        stream.items.append(.chunk(MessageHeader.message(id: nextID, command: command, flags: flags, payload: payload),
                                   descriptors))
    }

    /// Bytes as they come: partial headers, lying sizes, several messages in one chunk.
    private func rawChunk(_ input: inout FuzzInput, descriptors: Int) {
        let count = Int(input.u8())
        stream.items.append(.chunk(input.take(count), makeDescriptors(&input, count: descriptors)))
    }

    /// A well-framed message with any command number, flags and payload.
    private func freeMessage(_ input: inout FuzzInput, descriptors: Int) {
        let command = UInt16(input.u8() % 20)
        let flags = MessageHeader.Flags(rawValue: UInt32(input.u8()))
        let payload = input.take(Int(input.u8()) * (input.bool() ? 1 : 16))
        send(raw: command, payload, flags: flags, descriptors: makeDescriptors(&input, count: descriptors))
    }

    private func dmaMap(_ input: inout FuzzInput, descriptorCount: Int) {
        let address = UInt64(input.u8() % 16) * pageSize | (input.bool() ? UInt64(input.u8()) : 0)
        let size = UInt64(input.u8() % 10) * pageSize
        let fileOffset = UInt64(input.u8() % 4) * pageSize
        let flags = DMAMapRequest.Flags(rawValue: UInt32(input.u8() % 4))
        let request = DMAMapRequest(flags: flags, fileOffset: fileOffset, address: address, size: size)
        let descriptors = (0..<descriptorCount).compactMap { _ in memoryFile(&input) }
        send(.dmaMap, request.encode(), descriptors: descriptors)
    }

    private func dmaUnmap(_ input: inout FuzzInput) {
        let all = input.u8() % 8 == 0
        let request = DMAUnmapRequest(flags: all ? 2 : 0, address: UInt64(input.u8() % 16) * pageSize,
                                      size: UInt64(input.u8() % 10) * pageSize)
        send(.dmaUnmap, request.encode())
    }

    private func setIRQs(_ input: inout FuzzInput) {
        let index = UInt32(input.u8() % 6)
        let action = input.pick([SetIRQsRequest.Action.mask, .unmask, .trigger])
        let count = UInt32(input.u8() % 3)
        let data: SetIRQsRequest.DataType = switch input.u8() % 3 {
        case 0: .none
        case 1: .bool((0..<count).map { _ in input.bool() })
        default: .eventfd
        }
        let fds = data == .eventfd ? Int(count) + (input.u8() % 8 == 0 ? 1 : 0) : 0
        let request = SetIRQsRequest(index: index, start: UInt32(input.u8() % 2), count: count, data: data, action: action)
        send(.deviceSetIRQs, request.encode(), descriptors: (0..<fds).compactMap { _ in eventfd() })
    }

    /// A BAR0 or config-space access of any width, or a batch of writes: what the guest's driver does.
    private func regionAccess(_ input: inout FuzzInput) {
        let region = input.pick([UInt32(0), 0, 0, 7, 7, 1, 8])
        let offset = UInt64(input.u8()) % (region == 7 ? 0x100 : 0x24)
        let count = input.pick([1, 2, 4, 1, 3, 8])
        switch input.u8() % 3 {
        case 0:
            let read = RegionReadRequest(access: RegionAccess(offset: offset, region: region, count: UInt32(count)))
            send(.regionRead, read.encode())
        case 1:
            send(.regionWrite, RegionWriteRequest(offset: offset, region: region, data: input.take(count)).encode())
        default:
            let writes = (0..<Int(input.u8() % 4) + 1).map { _ in
                RegionWriteRequest(offset: UInt64(input.u8() % 0x20), region: 0, data: input.take(1))
            }
            send(.regionWriteMulti, RegionWriteMultiRequest(writes: writes).encode())
        }
    }

    /// The agent's registration through the vendor capability: page count, pages (usually inside what
    /// was mapped) and the command word, in one config write as the agent does it.
    private func register(_ input: inout FuzzInput) {
        let first = UInt64(input.u8() % 16) * pageSize
        let pageCount = input.u8() % 8 == 0 ? UInt32(input.u8() % 10) : UInt32(VPIORing.pages)
        var data = le(UInt32(input.u8() % 8 == 0 ? 2 : 1)) + le(pageCount)
        for i in 0..<VPIOCapability.maxPages {
            data += le(input.u8() % 8 == 0 ? UInt64(input.u8()) * 0x800 : first + UInt64(i) * pageSize)
        }
        let offset = UInt64(VPIOCapability.offset + VPIOCapability.Field.command)
        send(.regionWrite, RegionWriteRequest(offset: offset, region: PCIEndpoint.configRegion, data: data).encode())
    }

    // Between messages.

    private func outOfBand(_ input: inout FuzzInput) {
        let choice = input.u8() % 6
        switch choice {
        case 3:
            stream.items.append(.action { [unowned host] in host.session?.resampled() })
        case 4:
            let frame = input.take(Int(input.u16() % 1600))
            stream.items.append(.action { [unowned host] in _ = host.receiveGate.receive(frame: frame) })
        default:
            guard !files.isEmpty else { return }
            let file = files[Int(input.u8()) % files.count]
            switch choice {
            case 0: shrink(&input, file)
            case 1: writeRingHeader(&input, file)
            case 2: writeRecords(&input, file)
            default: writeBytes(&input, file)
            }
        }
    }

    /// The file behind a mapping shrinks (or grows) after DMA_MAP: reads past its end must fail, not fault.
    private func shrink(_ input: inout FuzzInput, _ file: OwnedDescriptor) {
        let size = Int64(input.u8() % 8) * 4096 + Int64(input.u8() % 2) * 100
        stream.items.append(.action { _ = ftruncate(file.rawValue, Int(size)) })
    }

    /// Arbitrary bytes anywhere in the first 256 KiB of guest RAM.
    private func writeBytes(_ input: inout FuzzInput, _ file: OwnedDescriptor) {
        let at = Int64(input.u16()) * 4
        let bytes = input.take(Int(input.u8()))
        stream.items.append(.action { _ = pwriteAll(file, bytes, at: at) })
    }

    /// A compatible ring header at the start of a memory file (page 0 of a ring), with input-chosen
    /// counters: what registration and every DMA-start check read.
    private func writeRingHeader(_ input: inout FuzzInput, _ file: OwnedDescriptor) {
        let header = RingHeader(agentPID: UInt32(input.u8()), head: input.u64() % 512, accessesSeen: UInt64(input.u8()),
                                intentsWritten: UInt64(input.u8() % 4), unseenSites: UInt64(input.u8() % 2))
        let at = Int64(input.u8() % 4) * 4096
        stream.items.append(.action { _ = pwriteAll(file, header.encode(), at: at) })
    }

    /// Intent records in the slots after the header page, with sequences near the start of the ring.
    private func writeRecords(_ input: inout FuzzInput, _ file: OwnedDescriptor) {
        let first = UInt64(input.u8() % 8)
        var bytes: [UInt8] = []
        for claim in first..<first + UInt64(input.u8() % 4 + 1) {
            let kind = input.pick(IntentKind.allCases)
            let record = RingRecord(sequence: claim + UInt64(input.u8() % 2), body: .dmaIntent(
                kind: kind, command: input.u8(), start: UInt32(input.u16()), count: UInt32(input.u16()),
                intentIndex: claim, accessIndex: UInt64(input.u8())))
            bytes += record.encode()
        }
        let at = 4096 + Int64(first) * 64
        stream.items.append(.action { _ = pwriteAll(file, bytes, at: at) })
    }

    // Descriptors, created in-process so DMA_MAP reaches a real file and SET_IRQS real eventfds.

    private func makeDescriptors(_ input: inout FuzzInput, count: Int) -> [OwnedDescriptor] {
        (0..<count).compactMap { _ in input.bool() ? memoryFile(&input) : eventfd() }
    }

    /// A memfd of 0–9 pages (so a mapping can be longer than its file); we keep a duplicate.
    private func memoryFile(_ input: inout FuzzInput) -> OwnedDescriptor? {
        guard let file = try? OwnedDescriptor.memoryFile(name: "fuzz-ram", length: Int64(input.u8() % 10) * 4096) else { return nil }
        files.append(file)
        let copy = dup(file.rawValue)
        return copy < 0 ? nil : OwnedDescriptor(FileDescriptor(rawValue: copy))
    }

    /// A fresh eventfd as a peer would send it (a duplicate; the EventFD closes its own at once).
    private func eventfd() -> OwnedDescriptor? {
        guard let event = try? EventFD() else { return nil }
        let copy = dup(event.descriptor.rawValue)
        return copy < 0 ? nil : OwnedDescriptor(FileDescriptor(rawValue: copy))
    }
}

private func pwriteAll(_ file: OwnedDescriptor, _ bytes: [UInt8], at offset: Int64) -> Bool {
    bytes.withUnsafeBytes { pwrite(file.rawValue, $0.baseAddress, $0.count, Int(offset)) == $0.count }
}

private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
