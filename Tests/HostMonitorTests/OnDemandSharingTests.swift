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

    @Test func theTrapIsArmedOnlyWhileAnotherGuestWaits() throws {
        let shared = try Self.shared()
        let (a, b) = (shared.guests[0], shared.guests[1])
        // a alone, its turn long over: no RD = 100 write traps or switches, nobody wants the device.
        for _ in 0..<5 { #expect(try Self.out(a, 0x00, 0x22)) }
        #expect(shared.switcher.owner == 0 && shared.switcher.switches.count == 1)
        #expect(a.ledger.monitors.ledger[.onDemand]!.exits == 0)
        #expect(a.ledger.monitors.ledger[.cooperative]!.exits == 5)
        // b's access is held: b now waits, a's next access arms the trap (a kick), its RD = 100 write switches.
        #expect(try !Self.out(b, 0x00, 0x22))
        #expect(try Self.out(a, 0x07, 0xFF))
        #expect(a.ledger.monitors.onDemandArmed)
        #expect(try Self.out(a, 0x00, 0x22))
        #expect(shared.switcher.owner == 1 && shared.switcher.switches.last?.reason == .switchPoint)
        let ledgerA = a.ledger.monitors.ledger[.onDemand]!
        #expect(ledgerA.exits == 2 && ledgerA.kicks == 1 && ledgerA.arms == 1, "the kick and the switch-point write: \(ledgerA)")
        // b's held access goes in: an exit in every mode. a now waits (its write's reply is held) and b's
        // quantum is 0, so b's trap is armed at once — inside that exit, without a kick.
        #expect(try Self.out(b, 0x00, 0x22))
        let ledgerB = b.ledger.monitors.ledger
        #expect(ledgerB[.onDemand]!.exits == 1 && ledgerB[.onDemand]!.heldExits == 1 && ledgerB[.passthrough]!.exits == 1)
        #expect(b.ledger.monitors.onDemandArmed && ledgerB[.onDemand]!.arms == 1 && ledgerB[.onDemand]!.kicks == 0)
    }

    /// A quiet owner whose trap never armed is switched out on what the device shows: CR with a remote
    /// command that no RD = 100 write ended is refused as an open remote DMA.
    @Test func aQuietSwitchReadsTheRemoteStateFromTheDevice() throws {
        let shared = try Self.shared()
        let (a, b) = (shared.guests[0], shared.guests[1])
        #expect(try Self.out(a, 0x00, 0x0A))  // remote read of 0 bytes, unseen by the host
        #expect(try Self.out(a, 0x07, 0x40))  // RDC acknowledged
        #expect(try !Self.out(b, 0x00, 0x22))
        let window = RegisterWindow(device: shared.nic)
        #expect(shared.switcher.tick(window: window, at: .now + .milliseconds(25)) == nil)
        #expect(shared.switcher.refused["remote DMA open"] == 1, "\(shared.switcher.refused)")
    }
}
