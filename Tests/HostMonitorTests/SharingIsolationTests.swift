import DeviceBus
import DeviceSharing
import Foundation
@testable import HostMonitor
import Logging
import SeededRandom
import Testing
import VPIOMonitor

/// Two root guests share one NE2000 and program it at random — every register, remote DMAs of both
/// kinds, transmits, resets, frames arriving for each — while the switcher hands the device back and
/// forth (switch points, quiet and forced switches). Each guest writes only bytes of its own tag into
/// buffer memory (0xA0–0xAF for guest 0, 0xB0–0xBF for guest 1; frames for it carry its tag too); the
/// oracle: no data-port read and no transmitted frame of one guest ever holds a byte of the other's tag.
@Suite struct SharingIsolationTests {
    static let programs = ProcessInfo.processInfo.environment["VPIO_SHARING_PROGRAMS"].flatMap(Int.init) ?? 30
    static let steps = 1_500
    static let macs: [[UInt8]] = [[0x52, 0x54, 0x00, 0x12, 0x34, 0x57], [0x52, 0x54, 0x00, 0x12, 0x34, 0x58]]

    static func tag(_ guest: Int) -> ClosedRange<UInt8> { guest == 0 ? 0xA0...0xAF : 0xB0...0xBF }

    /// What the device moved that one guest could see, checked against the other's tag.
    final class Oracle {
        var violations: [String] = []
        /// Reads and frames that held a byte of the other guest's tag (all of them; `violations` keeps 8).
        var foreignSeen = 0
        var bytesRead = 0
        var frames = 0
        var owner: () -> Int? = { nil }

        func saw(_ bytes: [UInt8], by guest: Int, what: String) {
            let foreign = SharingIsolationTests.tag(1 - guest)
            guard let byte = bytes.first(where: foreign.contains) else { return }
            foreignSeen += 1
            if violations.count < 8 {
                violations.append("guest \(guest) \(what) 0x\(String(byte, radix: 16)) of guest \(1 - guest)")
            }
        }
    }

    /// One access a guest's vCPU is stuck in: held before it was served, or its reply held after.
    enum Stuck { case access(offset: UInt8, width: AccessWidth, write: Bool, value: UInt32), reply }

    typealias Access = (offset: UInt8, width: AccessWidth, write: Bool, value: UInt32)

    struct Program {
        var rng: SplitMix64
        let shared: SharedDevice
        let oracle: Oracle
        let bypass: Bool
        var stuck: [Stuck?] = [nil, nil]
        /// What each guest's driver does next: a whole operation is queued, then made one access at a time,
        /// so switches fall anywhere inside it.
        var script: [[Access]] = [[], []]

        mutating func step() throws {
            let guest = Int(rng.next() % 2)
            if rng.next() % 32 == 0 { return deliver(to: guest) }
            if let held = stuck[guest] {
                guard admitted(guest) else { return }
                stuck[guest] = nil
                if case let .access(offset, width, write, value) = held { try perform(guest, offset, width, write, value) }
                return
            }
            if script[guest].isEmpty { script[guest] = operation(guest) }
            let access = script[guest].removeFirst()
            guard admitted(guest) else {
                stuck[guest] = .access(offset: access.offset, width: access.width, write: access.write, value: access.value)
                return
            }
            try perform(guest, access.offset, access.width, access.write, access.value)
        }

        func admitted(_ guest: Int) -> Bool { bypass || shared.guests[guest].admission.mayAccess() }

        mutating func page() -> UInt32 { [0x00, 0x20, 0x40, 0x46, 0x4C, 0x60, 0x7E, 0x7F, 0x80][Int(rng.next() % 9)] + UInt32(rng.next() % 2) }

        /// A driver's operation, sometimes cut short or garbled: a remote write of the guest's own tag, a
        /// remote read, a transmit, ring set-up, a reset, or a random register access.
        mutating func operation(_ guest: Int) -> [Access] {
            let tag = SharingIsolationTests.tag(guest)
            let count = UInt32(1 + rng.next() % 256)
            let width: AccessWidth = [.byte, .word, .dword][Int(rng.next() % 3)]
            let steps = Int(count) / Int(width.rawValue) + 1
            func out(_ offset: UInt8, _ value: UInt32) -> Access { (offset, .byte, true, value) }
            let setUp = [out(0x00, 0x22), out(0x0A, count & 0xFF), out(0x0B, count >> 8), out(0x08, UInt32(rng.next() % 256)), out(0x09, page())]
            var op: [Access]
            switch rng.next() % 9 {
            case 0, 1:
                op = setUp + [out(0x00, 0x12)] + (0..<steps).map { _ in
                    let value = (0..<4).reduce(UInt32(0)) { v, i in v | (UInt32(tag.lowerBound) + UInt32(rng.next() % 16)) << (8 * UInt32(i)) }
                    return (0x10, width, true, value & width.mask)
                }
            case 2, 3:
                op = setUp + [out(0x00, 0x0A)] + (0..<steps).map { _ in (0x10, width, false, 0) }
            case 4, 8:
                // A frame of its own written to a page and sent from there (others' source addresses never reach the wire).
                let at = 0x40 + UInt32(rng.next() % 0x3F), mac = SharingIsolationTests.macs[guest].map(UInt32.init)
                let frame = [UInt32](repeating: 0xFF, count: 6) + mac + (0..<48).map { _ in UInt32(tag.lowerBound) + UInt32(rng.next() % 16) }
                op = [out(0x00, 0x22), out(0x0E, 0x48), out(0x0D, 0x00), out(0x0A, UInt32(frame.count)), out(0x0B, 0), out(0x08, 0), out(0x09, at), out(0x00, 0x12)]
                    + frame.map { (0x10, .byte, true, $0) }
                    + [out(0x07, 0x40), out(0x00, 0x22), out(0x04, rng.next() % 4 == 0 ? page() : at), out(0x05, UInt32(frame.count)),
                       out(0x06, 0), out(0x00, 0x26), out(0x07, 0x0A)]
            case 5:
                op = [out(0x00, 0x21), out(0x01, page()), out(0x02, page()), out(0x03, page()), out(0x0E, 0x49), out(0x0C, UInt32(rng.next() % 32)),
                      out(0x00, 0x61), out(0x07, page()), out(0x00, 0x22), out(0x0F, 0xFF)]
            case 6:
                op = [(0x1F, .byte, false, 0), out(0x00, 0x21)]
            default:
                op = [(UInt8(rng.next() % 16), .byte, rng.next() % 2 == 0, UInt32(rng.next() % 256))]
            }
            if rng.next() % 6 == 0 { op = Array(op.prefix(Int(rng.next() % UInt64(op.count + 1)))) }
            return op.isEmpty ? [out(0x07, 0xFF)] : op
        }

        mutating func perform(_ guest: Int, _ offset: UInt8, _ width: AccessWidth, _ write: Bool, _ value: UInt32) throws {
            let endpoint = shared.guests[guest].endpoint
            if write {
                try endpoint.write(region: 0, offset: UInt64(offset), data: (0..<width.rawValue).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) })
                if !bypass, !shared.guests[guest].admission.mayReply() { stuck[guest] = .reply }
            } else {
                let bytes = try endpoint.read(region: 0, offset: UInt64(offset), count: width.rawValue)
                if offset == 0x10 {
                    oracle.bytesRead += bytes.count
                    oracle.saw(bytes, by: guest, what: "read")
                }
            }
        }

        /// A frame for `guest`, all of its bytes but the addresses its tag.
        mutating func deliver(to guest: Int) {
            let tag = SharingIsolationTests.tag(guest)
            let length = 60 + Int(rng.next() % 100)  // length bytes stay below the tags
            // Unicast only: a broadcast is every guest's to see.
            let destination = SharingIsolationTests.macs[guest]
            let body = (0..<(length - 12)).map { _ in tag.lowerBound + UInt8(rng.next() % 16) }
            _ = shared.demux.receive(frame: destination + SharingIsolationTests.macs[guest] + body)
        }
    }

    static func campaign(mode: Mode, programs: Int, bypass: Bool = false) throws -> (oracle: Oracle, switches: [String: Int]) {
        let oracle = Oracle()
        var switches: [String: Int] = [:]
        for seed in 0..<programs {
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            var policy = SharingPolicy()
            policy.quantumAccesses = 100
            policy.quiet = .microseconds(200)
            policy.holdBound = .milliseconds(20)
            var shared: SharedDevice!
            shared = try SharedDevice(
                specs: (0..<2).map { SharedGuestSpec(name: "g\($0)", mac: macs[$0], mode: mode) },
                deviceMAC: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56], policy: policy, live: false, logger: logger,
                transmit: { frame in
                    oracle.frames += 1
                    if let owner = shared.switcher.owner { oracle.saw(frame, by: owner, what: "transmitted") }
                })
            let tick = SharedDeviceTick(shared: shared)
            var program = Program(rng: SplitMix64(seed: UInt64(seed) &* 0x9E37 &+ 11), shared: shared, oracle: oracle, bypass: bypass)
            for step in 0..<steps {
                try program.step()
                if !bypass, step % 8 == 0 { tick.afterRound() }  // bypassed: no switch ever changes buffer memory
                // The hold bound is wall time: on a fast machine a program can end before any wait reaches it,
                // so twice per program a waiting guest is made to wait past it (the forced switch comes next round).
                if !bypass, step % 750 == 375, program.stuck.contains(where: { $0 != nil }) {
                    Thread.sleep(forTimeInterval: 0.021)
                }
            }
            for record in shared.switcher.switches { switches[record.reason.rawValue, default: 0] += 1 }
        }
        return (oracle, switches)
    }

    @Test(arguments: [Mode.onDemand, .cooperative])
    func noGuestSeesAnotherGuestsBytes(mode: Mode) throws {
        let (oracle, switches) = try Self.campaign(mode: mode, programs: Self.programs)
        print("sharing isolation \(mode.rawValue): \(Self.programs) programs × \(Self.steps) steps, \(oracle.bytesRead) data-port bytes read, "
              + "\(oracle.frames) frames transmitted, switches \(switches.sorted { $0.key < $1.key }), violations \(oracle.violations.count)")
        #expect(oracle.violations.isEmpty, "\(oracle.violations.prefix(4))")
        #expect(switches["switch point", default: 0] > 0 && switches["forced", default: 0] > 0, "every kind of switch happened: \(switches)")
        #expect(oracle.bytesRead > 5_000 && oracle.frames > 20, "the guests read buffer memory and transmitted")
    }

    /// The oracle can fail: the same programs on a device both guests reach at once see each other's bytes.
    @Test func withoutTheSwitcherGuestsSeeEachOther() throws {
        let (oracle, _) = try Self.campaign(mode: .passthrough, programs: 60, bypass: true)
        print("sharing isolation without the switcher: \(oracle.foreignSeen) reads or frames held the other guest's bytes")
        #expect(oracle.foreignSeen > 0)
    }
}
