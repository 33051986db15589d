// libFuzzer target: PCI configuration space as the guest reaches it through vfio-user region 7 —
// reads and writes of any size at any offset — with the agent's vendor capability attached, its
// registration command reading a ring from guest RAM, and the host updating the capability's
// read-only words in between (mode, violations, anomalies, fallback).
//
// Invariants, after every write: every byte neither the guest may write nor the host publishes keeps
// its first value (vendor/device id, class, header, capability list pointers, the capability's id,
// length and version); BAR0 stays an I/O BAR aligned to its size; the capability's command word
// reads 0 once handled; the registered bit agrees with the channel; INTx is disabled exactly when the
// command register says so; an access is refused exactly when it leaves the 256 bytes.
// Built by fuzz/run against the package's modules.
import AgentLink
import DeviceBus
import Glibc
import PCIFunction
import VFIOUserServer
import VPIOProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let function = Function(ringAt: input.bool())
    while !input.isEmpty { function.op(&input) }
    function.tearDown()
    return 0
}

/// A BAR the endpoint needs; config space is what is fuzzed here, so the device does nothing.
private final class IdleDevice: BusDevice {
    let regionSizes: [UInt32: UInt32] = [0: 32]
    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 { 0 }
    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {}
    func reset() {}
}

/// Guest RAM: 8 pages at `base`, holding a compatible ring header in page 0 when asked, so that a
/// registration can succeed.
private final class GuestRAM: GuestMemory {
    static let base: UInt64 = 0x10_0000
    var bytes = [UInt8](repeating: 0, count: 8 * VPIORing.pageSize)

    init(ring: Bool) {
        if ring { bytes.replaceSubrange(0..<VPIORing.HeaderOffset.size, with: RingHeader(agentPID: 7).encode()) }
    }

    func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        guard guestAddress >= Self.base, count >= 0, count <= bytes.count, guestAddress - Self.base <= UInt64(bytes.count - count) else { return nil }
        let at = Int(guestAddress - Self.base)
        return Array(bytes[at..<at + count])
    }
}

private final class Function {
    let endpoint = PCIEndpoint(identity: .rtl8029, device: IdleDevice(), interruptLine: InterruptLine(), intx: INTxRouter())
    let capability: AgentCapability
    let memory: GuestRAM
    /// The config bytes as first built: what every byte not flagged in `mayChange` must still hold.
    let initial: [UInt8]
    static let mayChange = changeable()

    init(ringAt ring: Bool) {
        memory = GuestRAM(ring: ring)
        capability = AgentCapability(endpoint: endpoint, channel: AgentChannel())
        let capability = capability, memory = memory
        endpoint.configWritten = { offset, count in capability.configWritten(offset: offset, count: count, memory: memory) }
        initial = endpoint.config.load(offset: 0, count: PCIConfigSpace.size)
    }

    /// Bytes the guest may write (command, cache line, latency, interrupt line, BAR0, the capability's
    /// command/page words) or the host publishes (the capability's status, violations, last error, anomalies).
    /// One flag per config byte (an array: the check runs after every write).
    static func changeable() -> [Bool] {
        let base = VPIOCapability.offset
        var flags = [Bool](repeating: false, count: PCIConfigSpace.size)
        for i in [0x04, 0x05, 0x0C, 0x0D, 0x3C] + Array(0x10..<0x14)
            + Array(base + VPIOCapability.Field.status..<base + VPIOCapability.length) { flags[i] = true }
        return flags
    }

    /// Breaks the endpoint → hook → capability → endpoint cycle so the input's objects are freed.
    func tearDown() { endpoint.configWritten = nil }

    func op(_ input: inout FuzzInput) {
        let op = input.u8()
        switch op % 8 {
        case 0, 1, 2: write(&input, offset: offset(&input), count: count(&input))
        case 3: read(&input)
        case 4: registerRing(&input)
        case 5: hostUpdate(&input)
        case 6: memory.bytes[Int(input.u16()) % memory.bytes.count] = input.u8()
        default: write(&input, offset: VPIOCapability.offset + Int(input.u8() % UInt8(VPIOCapability.length)), count: count(&input))
        }
    }

    /// Usually inside the 256 bytes, sometimes past them (the endpoint must refuse, not trap).
    private func offset(_ input: inout FuzzInput) -> Int {
        input.u8() % 16 == 0 ? Int(input.u16()) : Int(input.u8())
    }

    private func count(_ input: inout FuzzInput) -> Int {
        input.pick([1, 2, 4, 1, 2, 4, 3, 8, 0, 256, 16, 48]) + (input.u8() % 8 == 0 ? Int(input.u8()) : 0)
    }

    private func write(_ input: inout FuzzInput, offset: Int, count: Int) {
        let data = input.take(count)
        let fits = !data.isEmpty && offset + data.count <= PCIConfigSpace.size
        let accepted = (try? endpoint.write(region: PCIEndpoint.configRegion, offset: UInt64(offset), data: data)) != nil
        precondition(accepted == fits, "config write of \(data.count) at \(offset): accepted \(accepted)")
        checkInvariants()
    }

    private func read(_ input: inout FuzzInput) {
        let offset = offset(&input), count = count(&input)
        let bytes = try? endpoint.read(region: PCIEndpoint.configRegion, offset: UInt64(offset), count: count)
        let fits = count > 0 && offset + count <= PCIConfigSpace.size
        precondition((bytes != nil) == fits && (bytes?.count ?? count) == count, "config read of \(count) at \(offset)")
    }

    /// What the agent writes: command, page count and pages in one write (pages mostly in guest RAM).
    private func registerRing(_ input: inout FuzzInput) {
        let command = UInt32(input.pick([1, 1, 1, 2, 0, 3]))
        let count = input.u8() % 4 == 0 ? UInt32(input.u8() % 12) : UInt32(VPIORing.pages)
        var data = le(command) + le(count)
        for i in 0..<VPIOCapability.maxPages {
            let page = GuestRAM.base + UInt64(i) * UInt64(VPIORing.pageSize)
            data += le(input.u8() % 8 == 0 ? input.u64() : page)
        }
        let at = VPIOCapability.offset + VPIOCapability.Field.command
        precondition((try? endpoint.write(region: PCIEndpoint.configRegion, offset: UInt64(at), data: data)) != nil)
        checkInvariants()
    }

    /// The host's own updates of the capability, which the guest's writes must not undo.
    private func hostUpdate(_ input: inout FuzzInput) {
        switch input.u8() % 4 {
        case 0: capability.setEnforcedMode(input.u32())
        case 1: capability.recordViolation()
        case 2: capability.recordAnomaly()
        default: capability.setFallback(input.bool())
        }
        checkInvariants()
    }

    private func checkInvariants() {
        let config = endpoint.config
        let now = config.load(offset: 0, count: PCIConfigSpace.size)
        for i in 0..<PCIConfigSpace.size where !Self.mayChange[i] {
            precondition(now[i] == initial[i], "read-only config byte 0x\(String(i, radix: 16)) changed")
        }
        let bar0 = u32(now, PCIConfigSpace.Offset.bar0)
        precondition(bar0 & 0x3 == 0x1 && (bar0 & ~0x3) % config.bar0Size == 0, "BAR0 0x\(String(bar0, radix: 16))")
        let base = VPIOCapability.offset
        precondition(u32(now, base + VPIOCapability.Field.command) == 0, "capability command word not cleared")
        let registered = u32(now, base + VPIOCapability.Field.status) & VPIOCapability.Status.registered.rawValue != 0
        precondition(registered == capability.channel.isRegistered, "registered bit disagrees with the channel")
        precondition(endpoint.intx.disabled == config.interruptDisabled, "INTx disable out of step with the command register")
    }
}

private func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
}

private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
}
