import DeviceBus
import DeviceSharing
@testable import HostMonitor
import Logging
import Testing
import VPIOMonitor

/// on-demand on a shared device: the CR trap exists only while another guest waits for the device, the
/// switch still happens at the owner's next switch point, and the ledger counts what that cost.
@Suite struct OnDemandSharingTests {
    static let a: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x57]
    static let b: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x58]

    static func shared() throws -> SharedDevice {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var policy = SharingPolicy()
        policy.quantumAccesses = 0
        return try SharedDevice(specs: [SharedGuestSpec(name: "a", mac: a, mode: .onDemand), SharedGuestSpec(name: "b", mac: b, mode: .onDemand)],
                                deviceMAC: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], policy: policy, live: false, logger: logger,
                                transmit: { _ in })
    }

    /// One access of `guest`'s driver as its vfio-user session makes it: admitted (or held) first.
    static func out(_ guest: SharedGuest, _ offset: UInt8, _ value: UInt8) throws -> Bool {
        guard guest.admission.mayAccess() else { return false }
        try guest.endpoint.write(region: 0, offset: UInt64(offset), data: [value])
        return true
    }

    /// The driver's probe: a remote read of the 32-byte PROM, word by word (DCR in word mode).
    static func readPROM(_ guest: SharedGuest) throws -> [UInt8] {
        for (offset, value): (UInt8, UInt8) in [(0x00, 0x21), (0x0E, 0x49), (0x0A, 32), (0x0B, 0), (0x08, 0), (0x09, 0), (0x00, 0x0A)] {
            #expect(try out(guest, offset, value))
        }
        var prom: [UInt8] = []
        for _ in 0..<16 {
            #expect(guest.admission.mayAccess())
            prom += try guest.endpoint.read(region: 0, offset: 0x10, count: 2)
        }
        #expect(try out(guest, 0x07, 0x40))
        return prom
    }

    /// On a shared device the host answers PROM reads: from a reset until the guest has read its PROM, the
    /// CR trap is armed (to see that read start) and the PROM's data-port reads are exits of every mode.
    @Test func theProbeArmsTheTrapUntilThePROMIsRead() throws {
        let shared = try Self.shared()
        let a = shared.guests[0]
        let prom = try Self.readPROM(a)
        #expect(Array(prom[0..<12]) == Self.a.flatMap { [$0, $0] }, "a's own address, each byte doubled in word mode")
        let ledger = a.ledger.monitors.ledger
        #expect(ledger[.onDemand]!.exits == 2 + 16, "the two CR writes of the probe and the 16 PROM reads: \(ledger[.onDemand]!)")
        for mode in [Mode.vmmModel, .cooperative, .onDemand, .passthrough] { #expect(ledger[mode]!.hostAnsweredExits == 16, "\(mode)") }
        #expect(ledger[.emulated]!.hostAnsweredExits == 0, "emulated traps them anyway")
        #expect(try Self.out(a, 0x00, 0x22))
        #expect(!a.ledger.monitors.onDemandArmed && a.ledger.monitors.ledger[.onDemand]!.exits == 18, "disarmed once the read has ended")
    }

    @Test func theTrapIsArmedOnlyWhileAnotherGuestWaits() throws {
        let shared = try Self.shared()
        let (a, b) = (shared.guests[0], shared.guests[1])
        _ = try Self.readPROM(a)
        _ = try Self.out(a, 0x00, 0x22)
        let probe = a.ledger.monitors.ledger[.onDemand]!.exits
        // a alone, its turn long over: no RD = 100 write traps or switches, nobody wants the device.
        for _ in 0..<5 { #expect(try Self.out(a, 0x00, 0x22)) }
        #expect(shared.switcher.owner == 0 && shared.switcher.switches.count == 1)
        #expect(a.ledger.monitors.ledger[.onDemand]!.exits == probe)
        // b's access is held: b now waits, a's next access arms the trap (a kick), its RD = 100 write switches.
        #expect(try !Self.out(b, 0x00, 0x22))
        #expect(try Self.out(a, 0x07, 0xFF))
        #expect(a.ledger.monitors.onDemandArmed)
        #expect(try Self.out(a, 0x00, 0x22))
        #expect(shared.switcher.owner == 1 && shared.switcher.switches.last?.reason == .switchPoint)
        let ledgerA = a.ledger.monitors.ledger[.onDemand]!
        #expect(ledgerA.exits == probe + 2 && ledgerA.kicks == 1 && ledgerA.arms == 2, "the kick and the switch-point write: \(ledgerA)")
        // b's held access goes in: an exit in every mode. a now waits (its write's reply is held) and b's
        // quantum is 0, so b's trap is armed at once — inside that exit, without a kick.
        #expect(try Self.out(b, 0x00, 0x22))
        let ledgerB = b.ledger.monitors.ledger
        #expect(ledgerB[.onDemand]!.exits == 1 && ledgerB[.onDemand]!.heldExits == 1 && ledgerB[.passthrough]!.exits == 1)
        #expect(b.ledger.monitors.onDemandArmed && ledgerB[.onDemand]!.kicks == 0, "armed for its probe, and for a's wait")
    }

    /// A quiet owner whose trap never armed is switched out on what the device shows: CR with a remote
    /// command that no RD = 100 write ended is refused as an open remote DMA.
    @Test func aQuietSwitchReadsTheRemoteStateFromTheDevice() throws {
        let shared = try Self.shared()
        let (a, b) = (shared.guests[0], shared.guests[1])
        _ = try Self.readPROM(a)
        #expect(try Self.out(a, 0x00, 0x0A))  // remote read of 0 bytes, unseen by the host
        #expect(try Self.out(a, 0x07, 0x40))  // RDC acknowledged
        #expect(try !Self.out(b, 0x00, 0x22))
        let window = RegisterWindow(device: shared.nic)
        #expect(shared.switcher.tick(window: window, at: .now + .milliseconds(25)) == nil)
        #expect(shared.switcher.refused["remote DMA open"] == 1, "\(shared.switcher.refused)")
    }
}
