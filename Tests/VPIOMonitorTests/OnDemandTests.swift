import NE2000Model
import Testing
import VPIOMonitor

/// on-demand's exits on recorded traces: the CR writes made while its trap is armed, one kick per arming
/// of a running vCPU, and the held accesses every mode takes on a shared device.
@Suite struct OnDemandTests {
    /// Feeds a trace with the circumstances `at(accessIndex)` gives each access.
    static func ledger(_ events: [DeviceEvent], grant: BufferGrant = .wholeDevice,
                       at circumstances: (Int) -> AccessCircumstances) -> ExitLedger {
        var monitors = GuestMonitors(enforced: .onDemand, grant: grant)
        var index = 0
        for event in events {
            if case .access = event {
                monitors.observe(event, circumstances: circumstances(index))
                index += 1
            } else {
                monitors.observe(event)
            }
        }
        return monitors.ledger
    }

    static func isCRWrite(_ event: DeviceEvent) -> Bool {
        guard case .access(let access) = event else { return false }
        return access.direction == .write && access.offset == 0
    }

    /// The accesses of a trace, in order.
    static func accesses(_ events: [DeviceEvent]) -> [DeviceEvent] {
        events.filter { if case .access = $0 { true } else { false } }
    }

    @Test(arguments: Fixtures.names) func aSplitGrantKeepsTheTrapArmedAsCooperativeDoes(name: String) throws {
        let events = try Fixtures.events(name)
        let ledger = Self.ledger(events, grant: BufferGrant(owned: 0x4000..<0x6000)) { _ in .alone }
        #expect(ledger[.onDemand]!.exits == ledger[.cooperative]!.exits)
        #expect(ledger[.onDemand]!.actedOn == ledger[.cooperative]!.actedOn)
        #expect(ledger[.onDemand]!.arms == 0 && ledger[.onDemand]!.kicks == 0, "armed from the start, never re-armed")
    }

    @Test(arguments: Fixtures.names) func aWantedSwitchArmsTheTrapUntilTheWantIsGone(name: String) throws {
        let events = try Fixtures.events(name)
        let accesses = Self.accesses(events)
        let window = accesses.count / 3..<accesses.count / 2
        let ledger = Self.ledger(events) { AccessCircumstances(switchWanted: window.contains($0)) }
        let crWritesInWindow = accesses[window].filter(Self.isCRWrite).count
        let onDemand = ledger[.onDemand]!
        #expect(crWritesInWindow > 0)
        #expect(onDemand.exits == crWritesInWindow + 1, "the CR writes while armed and the kick that armed it")
        #expect(onDemand.arms == 1 && onDemand.kicks == 1 && onDemand.disarms == 1)
        #expect(onDemand.exitsByPort["0x00w"] == crWritesInWindow)
        #expect(ledger[.cooperative]!.exits == accesses.filter(Self.isCRWrite).count, "the other modes do not change")
    }

    @Test(arguments: Fixtures.names) func heldAccessesAreExitsInEveryMode(name: String) throws {
        let events = try Fixtures.events(name)
        let accesses = Self.accesses(events)
        let held = Set(stride(from: 5, to: accesses.count, by: 97))
        let alone = GuestMonitors.replay(events, enforced: .onDemand)
        let ledger = Self.ledger(events) { AccessCircumstances(held: held.contains($0)) }
        let heldCRWrites = held.filter { Self.isCRWrite(accesses[$0]) }.count
        for mode in Mode.allCases { #expect(ledger[mode]!.heldExits == held.count, "\(mode)") }
        #expect(ledger[.emulated]!.exits == alone[.emulated]!.exits, "emulated traps them anyway")
        #expect(ledger[.passthrough]!.exits == held.count)
        #expect(ledger[.onDemand]!.exits == held.count)
        #expect(ledger[.cooperative]!.exits == alone[.cooperative]!.exits + held.count - heldCRWrites)
    }

    /// Arming at a held access (the guest is already out of guest mode) costs no kick.
    @Test func armingInsideAHeldAccessTakesNoKick() {
        var arming = OnDemandArming(grant: .wholeDevice)
        #expect(!arming.armed)
        let heldKick = arming.update(AccessCircumstances(held: true, switchWanted: true))
        #expect(!heldKick && arming.armed && arming.arms == 1 && arming.kicks == 0)
        let disarmKick = arming.update(.alone)
        #expect(!disarmKick && !arming.armed && arming.disarms == 1)
        let runningKick = arming.update(AccessCircumstances(switchWanted: true))
        #expect(runningKick && arming.kicks == 1)
    }
}
