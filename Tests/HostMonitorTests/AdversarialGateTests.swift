import SeededRandom
import AgentLink
import DeviceBus
import Enforcement
import Foundation
import HostMonitor
import Logging
import NE2000
import NE2000Model
import PCIFunction
import Testing
import VFIOUserServer
import VPIOMonitor
import VPIOProtocol

/// The oracle: every buffer byte any DMA moved, checked against the grant as it is moved.
final class MovedBytes: BufferAccessObserver {
    let owned: Range<Int>
    private(set) var moved = 0
    private(set) var violations: [String] = []

    init(owned: Range<Int>) { self.owned = owned }

    func moved(_ kind: DMAKind, address: UInt16) {
        moved += 1
        let a = Int(address)
        if BufferMap.sram.contains(a) && !owned.contains(a) && violations.count < 8 {
            violations.append("\(kind.rawValue) moved SRAM byte 0x\(String(a, radix: 16)) outside the grant \(owned)")
        }
    }
}

/// Guest RAM holding one agent ring at page-aligned addresses, and nothing else.
final class RingMemory: GuestMemory {
    static let base: UInt64 = 0x40_0000
    var bytes = [UInt8](repeating: 0, count: VPIORing.bytes)
    var header = RingHeader() { didSet { put(header.encode(), at: 0) } }

    init() { put(header.encode(), at: 0) }

    var pages: [UInt64] { (0..<VPIORing.pages).map { Self.base + UInt64($0 * VPIORing.pageSize) } }

    func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        guard guestAddress >= Self.base, count >= 0 else { return nil }
        let offset = guestAddress - Self.base
        guard offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset else { return nil }
        return Array(bytes[Int(offset)..<Int(offset) + count])
    }

    func put(_ data: [UInt8], at offset: Int) { bytes.replaceSubrange(offset..<offset + data.count, with: data) }

    /// Commits a record as the agent's producers do (seq = claim + 1).
    func produce(_ body: RingRecord.Body) {
        let n = header.head
        put(RingRecord(sequence: n &+ 1, body: body).encode(), at: VPIORing.recordOffset(slot: Int(n % UInt64(VPIORing.capacity))))
        header.head = n &+ 1
    }
}

/// A root guest's program against the real NE2000, PCIEndpoint, agent link, ledger, enforcer and gates:
/// random accesses at every offset and width, biased toward what steers DMAs, with an honest agent's
/// intents and forged ring records interleaved, frames arriving from the wire.
struct HostileGuest {
    var rng: SplitMix64
    let nic: NE2000
    let endpoint: PCIEndpoint
    let receive: ReceiveGate
    let memory = RingMemory()
    let enforcer: Enforcer
    /// What an honest agent's probes shadow (page, RSAR, TPSR, run state) to write its intents.
    var page: UInt8 = 0, rsar: UInt16 = 0, tpsr: UInt8 = 0, running = false
    var intents: UInt64 = 0
    var honest = true
    /// False for programs whose ring only ever holds the honest agent's intents.
    var forging = true

    init(seed: UInt64, mode: Mode, owned: Range<Int>, oracle: MovedBytes) throws {
        rng = SplitMix64(seed: seed)
        let line = InterruptLine()
        nic = NE2000(mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56], interrupt: line, transmit: { _ in }, observer: oracle)
        endpoint = PCIEndpoint(identity: .rtl8029, device: nic, interruptLine: line, intx: INTxRouter())
        let capability = AgentCapability(endpoint: endpoint, channel: AgentChannel())
        let memory = self.memory
        let agent = AgentMonitor(capability: capability) { memory }
        endpoint.configWritten = { capability.configWritten(offset: $0, count: $1, memory: memory) }
        enforcer = Enforcer(mode: mode)
        let grant = BufferGrant(owned: owned)
        let gate = DMAGate(ledger: try GuestLedger(enforced: mode, grant: grant, recordPath: nil, live: false), agent: agent,
                           enforcer: enforcer, device: nic, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        endpoint.accessHook = { gate.filter($0) }
        receive = ReceiveGate(nic: nic, enforcer: enforcer, grant: grant)
    }

    mutating func register() throws {
        for (i, page) in memory.pages.enumerated() {
            try endpoint.write(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.pages + 8 * i),
                               data: (0..<8).map { UInt8(truncatingIfNeeded: page >> (8 * UInt64($0))) })
        }
        try endpoint.write(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.pageCount), data: [UInt8(VPIORing.pages), 0, 0, 0])
        try endpoint.write(region: 7, offset: UInt64(VPIOCapability.offset + VPIOCapability.Field.command), data: [1, 0, 0, 0])
    }

    /// One step of the program.
    mutating func step() throws {
        switch rng.next() % 16 {
        case 0...5: try out(Self.steeringRegisters[Int(rng.next() % UInt64(Self.steeringRegisters.count))], boundaryValue())
        case 6, 7: try out(0, Self.commands[Int(rng.next() % UInt64(Self.commands.count))] | UInt8(rng.next() % 4) << 6)
        case 8, 9: try dataPort()
        case 10: try access(offset: rng.next() % 0x20, width: [.byte, .word, .dword][Int(rng.next() % 3)], write: rng.next() % 2 == 0)
        case 11: deliverFrame()
        case 12: if forging { forge() }
        case 13: try access(offset: 0x1F, width: .byte, write: false)  // reset port
        default: try out(UInt8(rng.next() % 16), UInt8(truncatingIfNeeded: rng.next()))
        }
    }

    static let steeringRegisters: [UInt8] = [0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0E, 0x07]
    static let commands: [UInt8] = [0x0A, 0x12, 0x16, 0x26, 0x24, 0x22, 0x21, 0x20, 0x1A, 0x0E, 0x3A, 0x02, 0x06]

    /// Values near the boundaries that matter: SRAM's pages, the PROM, the top of the address space.
    mutating func boundaryValue() -> UInt8 {
        let pool: [UInt8] = [0x00, 0x01, 0x20, 0x40, 0x46, 0x4C, 0x50, 0x5F, 0x60, 0x7F, 0x80, 0xC0, 0xFF]
        return rng.next() % 4 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : pool[Int(rng.next() % UInt64(pool.count))]
    }

    mutating func out(_ offset: UInt8, _ value: UInt8) throws {
        try access(offset: UInt64(offset), width: .byte, write: true, value: UInt32(value))
    }

    mutating func dataPort() throws {
        let write = rng.next() % 2 == 0, width: AccessWidth = [.byte, .word, .dword][Int(rng.next() % 3)]
        for _ in 0..<(1 + rng.next() % 64) {
            try access(offset: 0x10 + rng.next() % 8, width: width, write: write)
        }
    }

    /// One access as QEMU forwards it, after the honest agent's probe counted it (and wrote its intents).
    mutating func access(offset: UInt64, width: AccessWidth, write: Bool, value: UInt32? = nil) throws {
        let value = value ?? UInt32(truncatingIfNeeded: rng.next()) & width.mask
        let bytes = (0..<width.rawValue).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
        guard UInt64(width.rawValue) + offset <= 0x20 else { return }
        if honest { probe(offset: offset, width: width, write: write, value: value) }
        memory.header.accessesSeen &+= 1
        if write {
            try endpoint.write(region: 0, offset: offset, data: bytes)
        } else {
            _ = try endpoint.read(region: 0, offset: offset, count: width.rawValue)
        }
    }

    /// The honest agent's shadow and intents, by the one CR rule.
    mutating func probe(offset: UInt64, width: AccessWidth, write: Bool, value: UInt32) {
        let block = BAR0.decode(offset: offset, width: width)
        if !write {
            if block == .resetPort { (page, running, rsar, tpsr) = (0, false, 0, 0) }
            return
        }
        guard case .register = block else { return }
        let v = UInt8(truncatingIfNeeded: value)
        if offset == 0 {
            let effect = CommandEffect(command: v, wasRunning: running)
            if let kind = effect.startsRemote { intent(kind == .remoteRead ? .remoteRead : .remoteWrite, UInt32(rsar), v) }
            if effect.startsTransmit { intent(.transmit, UInt32(tpsr) << 8, v) }
            (page, running) = (effect.page, effect.runningAfter)
        } else if page == 0 {
            if offset == 0x04 { tpsr = v }
            if offset == 0x08 { rsar = rsar & 0xFF00 | UInt16(v) }
            if offset == 0x09 { rsar = rsar & 0x00FF | UInt16(v) << 8 }
        }
    }

    mutating func intent(_ kind: IntentKind, _ start: UInt32, _ command: UInt8) {
        memory.produce(.dmaIntent(kind: kind, command: command, start: start, count: 0, intentIndex: intents, accessIndex: 0))
        intents &+= 1
        memory.header.intentsWritten = intents
    }

    /// A forged record, a header rewritten with extreme numbers, or the agent turning dishonest.
    mutating func forge() {
        switch rng.next() % 4 {
        case 0:
            memory.produce(.dmaIntent(kind: [.remoteRead, .remoteWrite, .transmit][Int(rng.next() % 3)], command: 0x12,
                                      start: UInt32(truncatingIfNeeded: rng.next()), count: UInt32(truncatingIfNeeded: rng.next()),
                                      intentIndex: rng.next() % 2 == 0 ? intents : rng.next(), accessIndex: rng.next()))
        case 1:
            memory.header.head = [0, UInt64.max, rng.next()][Int(rng.next() % 3)]
            memory.header.accessesSeen = rng.next()
        case 2:
            memory.put((0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                       at: VPIORing.recordOffset(slot: Int(rng.next() % UInt64(VPIORing.capacity))))
        default:
            honest.toggle()
        }
    }

    mutating func deliverFrame() {
        let length = 14 + Int(rng.next() % 1500)
        var frame = [UInt8](repeating: 0xEE, count: length)
        frame.replaceSubrange(0..<6, with: rng.next() % 2 == 0 ? [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] : nic.mac)
        receive.receive(frame: frame)
    }
}


@Suite struct AdversarialGateTests {
    /// Programs per mode: a fixed budget in CI; `VPIO_PROPERTY_PROGRAMS=N` for the long campaign.
    static let programs = ProcessInfo.processInfo.environment["VPIO_PROPERTY_PROGRAMS"].flatMap(Int.init) ?? 1000
    static let steps = 400
    static let grants: [Range<Int>] = [0x4000..<0x8000, 0x4000..<0x6000, 0x6000..<0x8000, 0x4600..<0x8000]

    struct Campaign { var programs = 0, steps = 0, bytesMoved = 0, denied = 0, endedInConfiguredMode = 0, violations: [String] = [] }

    static func campaign(mode: Mode, programs: Int) throws -> Campaign {
        var result = Campaign()
        for seed in 0..<programs {
            let owned = grants[seed % grants.count]
            let oracle = MovedBytes(owned: owned)
            var guest = try HostileGuest(seed: UInt64(seed) &* 7919 &+ UInt64(Mode.allCases.firstIndex(of: mode)!), mode: mode,
                                         owned: owned, oracle: oracle)
            if seed % 3 != 0 { try guest.register() }
            guest.forging = seed % 3 != 1
            for _ in 0..<steps { try guest.step() }
            result.programs += 1
            result.steps += steps
            result.bytesMoved += oracle.moved
            result.denied += guest.enforcer.report.denied + guest.enforcer.report.receivesDenied
            if guest.enforcer.current == mode { result.endedInConfiguredMode += 1 }
            result.violations += oracle.violations.map { "seed \(seed): \($0)" }
        }
        return result
    }

    /// No byte of SRAM outside the grant is moved by any DMA, whatever the guest does, in every enforced mode
    /// (on-demand's trap is armed for the split grants, and nothing needs it for the whole one).
    @Test(arguments: [Mode.emulated, .vmmModel, .cooperative, .onDemand])
    func noDMAMovesSRAMOutsideTheGrant(mode: Mode) throws {
        let result = try Self.campaign(mode: mode, programs: Self.programs)
        print("adversarial \(mode.rawValue): \(result.programs) programs, \(result.steps) steps, \(result.bytesMoved) bytes moved, "
              + "\(result.denied) DMAs denied, \(result.endedInConfiguredMode) programs still in \(mode.rawValue) at the end, "
              + "oracle violations \(result.violations.count)")
        #expect(result.violations.isEmpty, "\(result.violations.prefix(4))")
        #expect(result.denied > 0, "the programs never provoked a denial: they test nothing")
        #expect(result.endedInConfiguredMode > 0, "no program was judged by \(mode.rawValue) to its end")
    }

    /// The oracle can fail: with nothing enforced the same programs move foreign SRAM.
    @Test func passthroughViolatesTheGrant() throws {
        let result = try Self.campaign(mode: .passthrough, programs: 40)
        #expect(!result.violations.isEmpty)
    }
}
