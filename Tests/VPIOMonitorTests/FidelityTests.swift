import AccessTrace
import Foundation
import NE2000Model
import Testing
import VPIOMonitor

/// The first place where a monitor fed only its trapped accesses disagrees with the reference (the full
/// model fed the complete stream), or nil. Compared: every DMA decision (kind, start, count, verdict) at
/// the event that starts it, and `reusable` after every event — a VMM may be asked at any moment.
func firstDivergence(_ events: [DeviceEvent], hooks: HookSet, grant: BufferGrant = .wholeDevice) -> String? {
    var reference = ShadowMonitor(mode: .emulated, grant: grant)
    var candidate = ShadowMonitor(hooks: hooks, grant: grant)
    var readback = DeviceReadback()
    for (index, event) in events.enumerated() {
        let expected = reference.observe(event, readback: readback)
        let got = candidate.observe(event, readback: readback)
        readback.apply(event)
        if expected != got { return "event \(index) \(event): decision \(String(describing: got)), reference \(String(describing: expected))" }
        if reference.reusable != candidate.reusable {
            return "event \(index) \(event): reusable \(String(describing: candidate.reusable)), reference \(String(describing: reference.reusable))"
        }
    }
    return nil
}

/// The traces recorded from real guest runs (see Fixtures/README.md).
enum Fixtures {
    static let names = ["boot-download-64k", "boot-ssh"]
    /// Read from the source tree: resource-bundle lookups of subpaths are not reliable on Linux.
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func events(_ name: String) throws -> [DeviceEvent] {
        let url = directory.appendingPathComponent("\(name).vptrace")
        return try TraceDecoder.decode(Array(try Data(contentsOf: url)))
    }

    static func liveLedger(_ name: String) throws -> ExitLedger {
        let url = directory.appendingPathComponent("\(name).ledger.json")
        return try JSONDecoder().decode(ExitLedger.self, from: Data(contentsOf: url))
    }

    static func allEvents() throws -> [[DeviceEvent]] { try names.map(events) }
}

@Suite struct FidelityTests {
    static let seeds: [UInt64] = [1, 2, 3, 0xDEAD_BEEF, 42, 7, 2024, 99]

    @Test(arguments: seeds) func vmmModelMatchesReferenceOnDriverLikeSequences(seed: UInt64) {
        let events = DriverSequence.random(seed: seed, steps: 120)
        #expect(firstDivergence(events, hooks: HookSet(mode: .vmmModel)) == nil)
    }

    @Test(arguments: Fixtures.names) func vmmModelMatchesReferenceOnRecordedTraces(name: String) throws {
        let events = try Fixtures.events(name)
        #expect(events.count > 1000)
        #expect(firstDivergence(events, hooks: HookSet(mode: .vmmModel)) == nil)
    }

    /// Minimality: without any one hook point the vmm-model monitor goes wrong somewhere — judged with
    /// SRAM split between two guests, where the ring a DMA wraps in decides its verdict (with one guest
    /// owning all of SRAM every DMA is allowed, and PSTART/PSTOP would not matter).
    @Test(arguments: HookPoint.vmmModel) func everyHookPointIsNeeded(point: HookPoint) throws {
        let hooks = HookSet(vmmModelPoints: HookPoint.vmmModel.filter { $0 != point })
        let split = BufferGrant(owned: 0x4000..<0x6000)
        var streams = try Fixtures.allEvents().map { ($0, split) }
        streams += Self.seeds.map { (DriverSequence.random(seed: $0, steps: 120), split) }
        // A read across PSTOP = 0x60: where it wraps to (PSTART) decides whether it stays in the grant.
        streams.append((Self.readAcrossRingEnd(), split))
        streams.append((Self.readAcrossRingEnd(), BufferGrant(owned: 0x5000..<0x6000)))
        let divergence = streams.lazy.compactMap { firstDivergence($0.0, hooks: hooks, grant: $0.1) }.first
        #expect(divergence != nil, "dropping \(point) changed nothing")
    }

    static func readAcrossRingEnd() -> [DeviceEvent] {
        var sequence = DriverSequence(seed: 9)
        sequence.initialize()
        sequence.out(0x01, 0x46)
        sequence.out(0x02, 0x60)
        sequence.remote(count: 0x200, address: 0x5F00, command: 0x0A)
        return sequence.events
    }

    @Test func vmmModelTrapsFarFewerAccessesThanEmulation() {
        let events = DriverSequence.random(seed: 5, steps: 200)
        let ledger = GuestMonitors.replay(events)
        let vmm = ledger[.vmmModel]!, coop = ledger[.cooperative]!
        #expect(ledger[.emulated]!.exits == ledger.accesses)
        #expect(vmm.exits * 10 < ledger.accesses)
        #expect(coop.exits < vmm.exits)
        #expect(ledger[.passthrough]!.exits == 0)
        #expect(coop.dmaIntents == ledger[.emulated]!.dmaIntents)
    }
}

@Suite struct CooperativeTests {
    /// Every DMA the real driver performed is allowed, by the reduced and by the full model.
    @Test(arguments: Fixtures.names) func realDriverDMAsAreAllowed(name: String) throws {
        let ledger = GuestMonitors.replay(try Fixtures.events(name))
        #expect(ledger[.cooperative]!.dmaIntents > 10)
        #expect(ledger[.cooperative]!.denials == 0)
        #expect(ledger[.emulated]!.denials == 0)
        #expect(ledger[.vmmModel]!.denials == 0)
    }

    @Test(arguments: FidelityTests.seeds) func driverLikeDMAsAreAllowed(seed: UInt64) {
        let ledger = GuestMonitors.replay(DriverSequence.random(seed: seed, steps: 120))
        #expect(ledger[.cooperative]!.denials == 0)
        #expect(ledger[.emulated]!.denials == 0)
    }

    /// With SRAM split (a guest owning 0x4000–0x5FFF), a write that leaves the ring at the top is denied.
    @Test func bogusWriteLeavingTheGrantIsDenied() {
        var sequence = DriverSequence(seed: 1)
        sequence.initialize()
        sequence.out(0x02, 0x50) // PSTOP below the start: no wrap
        sequence.remote(count: 0x2000, address: 0x5000, command: 0x12)
        var monitor = ShadowMonitor(mode: .cooperative, grant: BufferGrant(owned: 0x4000..<0x6000))
        var readback = DeviceReadback()
        var decisions: [DMADecision] = []
        for event in sequence.events {
            if let decision = monitor.observe(event, readback: readback).remote { decisions.append(decision) }
            readback.apply(event)
        }
        #expect(decisions.map(\.verdict) == [.denied(.outsideGrant)])
        #expect(decisions.first?.start == 0x5000)
    }
}

@Suite struct ReplayTests {
    /// `vpio replay` of a committed trace gives the ledger vpio-host wrote live while recording it (for
    /// every mode the live ledger has: on-demand came after these recordings).
    @Test(arguments: Fixtures.names) func replayEqualsLiveLedger(name: String) throws {
        let live = try Fixtures.liveLedger(name)
        let replayed = GuestMonitors.replay(try Fixtures.events(name), enforced: live.enforced)
        #expect(replayed.accesses == live.accesses && replayed.interruptEdges == live.interruptEdges && replayed.resets == live.resets)
        for mode in live.modes { #expect(replayed[mode.mode] == mode) }
        #expect(replayed[.onDemand] != nil)
    }

    @Test func ledgerRoundTripsThroughJSON() throws {
        let ledger = GuestMonitors.replay(DriverSequence.random(seed: 3, steps: 20), enforced: .vmmModel)
        let data = try JSONEncoder().encode(ledger)
        #expect(try JSONDecoder().decode(ExitLedger.self, from: data) == ledger)
        #expect(ledger.table.count == Mode.allCases.count + 2)
    }
}

/// Issue 12: a mode's exits are what its I/O permission bitmap traps — port and direction (and the
/// register page, which a VMM tracks from the CR writes it traps) — never filtered by the value written.
/// Counted here independently of `HookSet`, from the hook lists, over the committed real traces.
@Suite struct BitmapExitTests {
    /// (direction, page, port) triples a mode traps, built from its hook points.
    static func trapSet(_ points: [HookPoint]) -> Set<[UInt8]> {
        var set = Set<[UInt8]>()
        for point in points {
            for page in point.page.map({ [$0] }) ?? [0, 1, 2, 3] {
                for port in point.offsets { set.insert([point.direction.rawValue, page, port]) }
            }
        }
        return set
    }

    /// Exits of a trap set over `events`: an access exits when any port it covers is in the set for
    /// the page selected by the last CR write (0 after a reset: the DP8390 resets CR to page 0).
    static func bitmapExits(_ events: [DeviceEvent], traps: (AccessDirection, UInt8, UInt8) -> Bool) -> Int {
        var page: UInt8 = 0
        var exits = 0
        for event in events {
            guard case .access(let access) = event else {
                if event == .reset { page = 0 }
                continue
            }
            if access.ports.contains(where: { traps(access.direction, page, UInt8($0)) }) { exits += 1 }
            if access.direction == .write, access.offset == 0 { page = UInt8(truncatingIfNeeded: access.value) >> 6 }
            if access.direction == .read, access.ports.contains(where: { $0 >= 0x18 }) { page = 0 }
        }
        return exits
    }

    @Test(arguments: Fixtures.names) func everyModesExitsAreItsBitmapsOnARecordedTrace(name: String) throws {
        let events = try Fixtures.events(name)
        let ledger = GuestMonitors.replay(events)
        let vmm = Self.trapSet(HookPoint.vmmModel)
        let expected: [Mode: Int] = [
            .emulated: Self.bitmapExits(events) { _, _, _ in true },
            .vmmModel: Self.bitmapExits(events) { vmm.contains([$0.rawValue, $1, $2]) },
            .cooperative: Self.bitmapExits(events) { direction, _, port in direction == .write && port == 0 },
            // A guest alone with all of SRAM: the host never needs the trap (no switch is wanted).
            .onDemand: 0,
            .passthrough: 0,
        ]
        for mode in Mode.allCases {
            #expect(ledger[mode]?.exits == expected[mode], "\(name), \(mode): ledger \(ledger[mode]?.exits ?? -1), bitmap \(expected[mode]!)")
        }
        // The CR port, every write of it: what cooperative traps is exactly the trace's CR writes.
        #expect(ledger[.cooperative]?.exits == ledger[.emulated]?.exitsByPort["0x00w"])
        #expect(ledger[.cooperative]!.actedOn < ledger[.cooperative]!.exits, "acted on narrows, and is not the exit count")
    }
}
