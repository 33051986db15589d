import DeviceBus
import Glibc
import HostMonitor
import Logging
import RTL8139
import RTL8139Model
import Testing
import VFIOUserServer
import VFIOUserWire
import VPIOMonitor
import VPIOSystem

/// vpio-host's RTL8139 wiring, driven through its PCI endpoint as the vfio-user server would: guest RAM
/// is a memfd mapped at 1 MiB (1 MiB of it), so every address outside 0x10_0000..<0x20_0000 is memory
/// the guest does not own.
final class RTL8139GuestRig {
    static let ram: Range<UInt64> = 0x10_0000..<0x20_0000
    let guest: RTL8139Guest
    let ramFile: OwnedDescriptor
    var memory: FileDescriptor { ramFile.descriptor }
    var sent: [[UInt8]] = []

    init(mode: Mode, busMaster: Bool = true) throws {
        var sink: (([UInt8]) -> Void)?
        guest = RTL8139Guest(mode: mode, mac: [0x52, 0x54, 0, 0x81, 0x39, 1],
                             logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) { sink?($0) }
        ramFile = try OwnedDescriptor.memoryFile(name: "rtl8139-guest-ram", length: Int64(Self.ram.count))
        try guest.server.dma.map(DMAMapRequest(flags: [.readable, .writable], fileOffset: 0, address: Self.ram.lowerBound,
                                               size: UInt64(Self.ram.count)), descriptor: try memory.duplicate())
        sink = { [unowned self] in sent.append($0) }
        if busMaster { try guest.endpoint.write(region: 7, offset: 4, data: [0x05, 0]) }  // I/O space + bus master
        try out(RTL8139Register.cr, UInt32(RTL8139Command.reset))
        try out(RTL8139Register.rbstart, UInt32(Self.ram.lowerBound), .dword)  // enabling the receiver checks the ring
        try out(RTL8139Register.cr, UInt32(RTL8139Command.receiveEnable | RTL8139Command.transmitEnable))
    }

    func out(_ offset: UInt64, _ value: UInt32, _ width: AccessWidth = .byte, region: UInt32 = 0) throws {
        try guest.endpoint.write(region: region, offset: offset,
                                 data: (0..<width.rawValue).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) })
    }

    func inp(_ offset: UInt64, _ width: AccessWidth = .dword) throws -> UInt32 {
        try guest.endpoint.read(region: 0, offset: offset, count: width.rawValue).enumerated()
            .reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    /// A 60-byte frame placed in guest RAM at `address` (when it is RAM), then TSAD0 and TSD0 written.
    func transmit(from address: UInt32, region: UInt32 = 0) throws {
        if Self.ram.contains(UInt64(address)) {
            _ = try memory.writeAll(toAbsoluteOffset: Int64(UInt64(address) - Self.ram.lowerBound), [UInt8](repeating: 0xAB, count: 60))
        }
        try out(RTL8139Register.tsad, address, .dword, region: region)
        try out(RTL8139Register.tsd, 60, .dword, region: region)
    }

    var enforced: ModeLedger { guest.gate.ledger.modes.first { $0.mode == guest.gate.monitors.enforced }! }
    func ledger(_ mode: Mode) -> ModeLedger { guest.gate.ledger.modes.first { $0.mode == mode }! }
}

@Suite struct RTL8139GuestTests {
    @Test(arguments: [Mode.emulated, .vmmModel, .cooperative, .passthrough])
    func aBufferInTheGuestsMemoryIsSent(mode: Mode) throws {
        let rig = try RTL8139GuestRig(mode: mode)
        try rig.transmit(from: 0x18_0000)
        #expect(rig.sent == [[UInt8](repeating: 0xAB, count: 60)])
        #expect(try rig.inp(RTL8139Register.tsd) & RTL8139TransmitStatus.ok != 0)
        #expect(rig.enforced.denials == 0)
    }

    /// The seed's DMA slide: the address is checked before the device reads it, and a transmit from
    /// memory the guest does not own ends aborted (TABT, TER) without the device touching it.
    @Test(arguments: [Mode.emulated, .vmmModel, .cooperative], [UInt32(0xA0000), 0x20_0000, 0x1F_FFF0, 0xFFFF_FFF0])
    func aBufferOutsideTheGuestsMemoryIsDenied(mode: Mode, address: UInt32) throws {
        let rig = try RTL8139GuestRig(mode: mode)
        try rig.transmit(from: address)
        #expect(rig.sent.isEmpty)
        let status = try rig.inp(RTL8139Register.tsd)
        #expect(status & RTL8139TransmitStatus.aborted != 0 && status & RTL8139TransmitStatus.own != 0)
        #expect(try rig.inp(RTL8139Register.isr, .word) & UInt32(RTL8139Interrupt.transmitError) != 0)
        #expect(rig.enforced.denials == 1)
        #expect(rig.guest.nic.counters.transmitsRefused == 0, "the host stopped it; the device never tried")
        // The NIC stays usable: the next transmit from RAM goes out.
        try rig.out(RTL8139Register.isr, 0xFFFF, .word)
        try rig.transmit(from: 0x18_0000)
        #expect(rig.sent.count == 1)
    }

    /// Passthrough checks nothing: the device's own bounds check against the DMA map is all that stands.
    @Test func passthroughLeavesTheRefusalToTheDevice() throws {
        let rig = try RTL8139GuestRig(mode: .passthrough)
        try rig.transmit(from: 0x20_0000)
        #expect(rig.sent.isEmpty)
        #expect(rig.enforced.denials == 0)
        #expect(rig.guest.nic.counters.transmitsRefused == 1)
        #expect(try rig.inp(RTL8139Register.tsd) & RTL8139TransmitStatus.aborted != 0)
    }

    /// With bus mastering off in the command register the device reaches no memory at all.
    @Test func withoutBusMasterNothingIsRead() throws {
        let rig = try RTL8139GuestRig(mode: .cooperative, busMaster: false)
        try rig.transmit(from: 0x18_0000)
        #expect(rig.sent.isEmpty)
        #expect(rig.guest.memory.refusedWhileDisabled > 0)
        #expect(rig.enforced.denials == 0, "the address itself is the guest's")
    }

    /// A ring set up outside the guest's memory is denied: RBSTART keeps its old value and frames from
    /// the wire are not stored anywhere.
    @Test(arguments: [Mode.emulated, .vmmModel, .cooperative])
    func aRingOutsideTheGuestsMemoryIsDenied(mode: Mode) throws {
        let rig = try RTL8139GuestRig(mode: mode)
        try rig.out(RTL8139Register.rbstart, 0x1F_F000, .dword)  // 8 KiB + 16 would run past the end
        #expect(try rig.inp(RTL8139Register.rbstart) == 0x10_0000)
        #expect(rig.enforced.denials == 1)
        try rig.out(RTL8139Register.rcr, RTL8139ReceiveConfig.acceptAll, .dword)
        #expect(rig.guest.gate.receive(frame: [UInt8](repeating: 0xCD, count: 64)))
        var stored = [UInt8](repeating: 0, count: 4)
        #expect(pread(rig.memory.rawValue, &stored, 4, 4) == 4 && stored == [0xCD, 0xCD, 0xCD, 0xCD], "stored in the old ring")
    }

    /// Exits are what each mode's trap set catches: every access emulated; the steering registers and
    /// starts in vmm-model; only what starts or steers DMA in cooperative (TSAD is read back from the
    /// device at the TSD write, not trapped); nothing in passthrough.
    @Test func eachModeCountsItsOwnExits() throws {
        let rig = try RTL8139GuestRig(mode: .cooperative)
        let before = Dictionary(uniqueKeysWithValues: RTL8139Monitors.modes.map { ($0, rig.ledger($0).exits) })
        try rig.transmit(from: 0x18_0000)  // TSAD0 write, TSD0 write
        _ = try rig.inp(RTL8139Register.tsd)  // a status read
        #expect(rig.ledger(.emulated).exits - before[.emulated]! == 3)
        #expect(rig.ledger(.vmmModel).exits - before[.vmmModel]! == 2)
        #expect(rig.ledger(.cooperative).exits - before[.cooperative]! == 1)
        #expect(rig.ledger(.passthrough).exits == 0)
        #expect(rig.ledger(.cooperative).exitsByPort["0x10w"] == 1)
        #expect(rig.ledger(.cooperative).exitsByPort["0x20w"] == nil)
        #expect(rig.ledger(.vmmModel).exitsByPort["0x20w"] == 1)
    }

    /// The MMIO BAR is one page: a mode that traps any of its registers traps every access there, and
    /// the checks apply to MMIO writes just as to port writes.
    @Test func theMemoryBARTrapsEveryAccessAndIsChecked() throws {
        let rig = try RTL8139GuestRig(mode: .cooperative)
        try rig.guest.endpoint.write(region: 7, offset: 4, data: [0x06, 0])  // memory space + bus master
        let before = rig.ledger(.cooperative).exits
        try rig.transmit(from: 0x20_0000, region: 1)
        _ = try rig.guest.endpoint.read(region: 1, offset: RTL8139Register.isr, count: 2)
        #expect(rig.ledger(.cooperative).exits - before == 3)
        #expect(rig.ledger(.cooperative).exitsByPort["m0x20w"] == 1)
        #expect(rig.ledger(.passthrough).exits == 0)
        #expect(rig.sent.isEmpty && rig.enforced.denials == 1)
    }
}
