import AgentLink
import DeviceBus
import DeviceSharing
import Enforcement
import Foundation
import Logging
import NE2000
import PCIFunction
import VFIOUserServer
import VPIOMonitor

/// One guest of a shared NE2000 as the host names it.
public struct SharedGuestSpec: Sendable {
    public var name: String
    public var mac: [UInt8]
    public var mode: Mode
    /// The access trace of this guest (`--record`), if any.
    public var recordPath: String?

    public init(name: String, mac: [UInt8], mode: Mode, recordPath: String? = nil) {
        self.name = name
        self.mac = mac
        self.mode = mode
        self.recordPath = recordPath
    }
}

/// One NE2000, several guests (SHARING.md): the device and its switcher, and per guest everything a
/// single guest has — ledger, PCI endpoint and vfio-user server (its accesses admitted by the switcher),
/// agent monitor, enforcer, DMA gate and receive gate — with its own PROM view. The wire's frames reach
/// the guests through `demux`. Everything runs on the server loop's thread.
public final class SharedDevice {
    public let nic: NE2000
    public let switcher: DeviceSwitcher
    public let guests: [SharedGuest]
    public let demux: FrameDemux
    let routing: OwnerRouting
    /// Frames a guest transmitted with another source address than its own, dropped.
    public var spoofedFrames: Int { routing.spoofedFrames }

    public init(specs: [SharedGuestSpec], deviceMAC: [UInt8], policy: SharingPolicy = SharingPolicy(), live: Bool,
                logger: Logger, transmit: @escaping FrameSink) throws {
        precondition(!specs.isEmpty)
        let ledgers = try specs.map { try GuestLedger(enforced: $0.mode, recordPath: $0.recordPath, live: live, logger: logger) }
        let intxs = specs.map { _ in INTxRouter() }
        let lines = zip(intxs, ledgers).map { intx, ledger in
            InterruptLine {
                intx.lineChanged($0)
                ledger.interrupt($0)
            }
        }
        routing = OwnerRouting(lines: lines, macs: specs.map(\.mac), wire: transmit)
        let routing = self.routing
        nic = NE2000(mac: deviceMAC, interrupt: InterruptLine { routing.deviceLine($0) }, transmit: { routing.transmit($0) })
        switcher = DeviceSwitcher(device: nic, layout: .rtl8029, guests: specs.count, policy: policy, observer: routing, now: .now)
        var made: [SharedGuest] = []
        for (index, spec) in specs.enumerated() {
            made.append(SharedGuest(index: index, spec: spec, nic: nic, switcher: switcher, line: lines[index], intx: intxs[index],
                                    ledger: ledgers[index], logger: logger))
        }
        guests = made
        demux = FrameDemux(guests: made.map { ($0.spec.mac, $0.receiveGate) }, switcher: switcher)
    }
}

/// What the device does to the outside, routed by its owner: the interrupt line goes to the owner's
/// (a guest that loses the device sees its line low), and a transmitted frame reaches the wire only with
/// the owner's own source address — a guest cannot speak on the wire as another.
final class OwnerRouting: SwitchObserver {
    let lines: [InterruptLine]
    let macs: [[UInt8]]
    let wire: FrameSink
    private var owner: Int?
    private var level = false
    /// Frames the device transmitted with another source address than its owner's, dropped.
    private(set) var spoofedFrames = 0

    init(lines: [InterruptLine], macs: [[UInt8]], wire: @escaping FrameSink) {
        self.lines = lines
        self.macs = macs
        self.wire = wire
    }

    func deviceLine(_ asserted: Bool) {
        level = asserted
        if let owner { lines[owner].set(asserted) }
    }

    func transmit(_ frame: [UInt8]) {
        guard let owner, frame.count >= 12, Array(frame[6..<12]) == macs[owner] else {
            spoofedFrames += 1
            return
        }
        wire(frame)
    }

    func switched(from: Int?, to: Int) {
        if let from { lines[from].set(false) }
        owner = to
        lines[to].set(level)
    }
}

/// One guest's side of the shared device.
public final class SharedGuest {
    public let index: Int
    public let spec: SharedGuestSpec
    public let ledger: GuestLedger
    public let endpoint: PCIEndpoint
    public let server: VFIOUserServer
    public let agent: AgentMonitor
    public let enforcer: Enforcer
    public let receiveGate: ReceiveGate
    let admission: GuestAdmission

    init(index: Int, spec: SharedGuestSpec, nic: NE2000, switcher: DeviceSwitcher, line: InterruptLine, intx: INTxRouter,
         ledger: GuestLedger, logger: Logger) {
        self.index = index
        self.spec = spec
        self.ledger = ledger
        let view = GuestPROM(device: nic, mac: spec.mac)
        enforcer = Enforcer(mode: spec.mode)
        receiveGate = ReceiveGate(nic: nic, enforcer: enforcer, arrivals: ledger)
        endpoint = PCIEndpoint(identity: .rtl8029, device: view, interruptLine: line, intx: intx)
        admission = GuestAdmission(index: index, switcher: switcher, window: RegisterWindow(device: nic), prom: view)
        var guestLogger = logger
        guestLogger[metadataKey: "guest"] = "\(spec.name)"
        let server = VFIOUserServer(endpoint: endpoint, admission: admission, logger: guestLogger)
        self.server = server
        let agent = GuestWiring.agentMonitor(endpoint: endpoint, server: server)
        self.agent = agent
        let gate = DMAGate(ledger: ledger, agent: agent, enforcer: enforcer, device: view, logger: guestLogger, turn: admission)
        endpoint.accessHook = { gate.filter($0) }
        let admission = self.admission
        endpoint.resetObserver = {
            ledger.reset()
            admission.reset()
        }
    }
}

/// What the switcher says about one guest's accesses, for its vfio-user server and its DMA gate.
final class GuestAdmission: AccessAdmission, GuestTurn {
    let index: Int
    let switcher: DeviceSwitcher
    let window: RegisterWindow
    let prom: GuestPROM
    /// The access being served waited for the device (its guest did not own it when it came).
    private var wasHeld = false

    init(index: Int, switcher: DeviceSwitcher, window: RegisterWindow, prom: GuestPROM) {
        self.prom = prom
        self.index = index
        self.switcher = switcher
        self.window = window
    }

    func mayAccess() -> Bool {
        let proceeds = switcher.request(index, at: .now) == .proceed
        if !proceeds { wasHeld = true }
        return proceeds
    }

    /// The device went to another guest during this access (a switch point): the reply waits.
    func mayReply() -> Bool { switcher.owner == index }

    func circumstances(of access: BusAccess) -> AccessCircumstances {
        defer { wasHeld = false }
        return AccessCircumstances(held: wasHeld, switchWanted: switcher.owner == index && switcher.ownerShouldYield(at: .now),
                                   hostAnswers: prom.answered(access),
                                   probePending: prom.awaitingProbe)
    }

    func commandTrapped(_ value: UInt8) {
        _ = switcher.commandWritten(index, value: value, window: window, at: .now)
    }

    func reset() { switcher.reset(index) }
}

/// Between poll rounds: the switcher's quiet and hold-bound switches, the owner's queued frames, the
/// live ledger lines. While a guest waits, the loop wakes at least every quiet period.
public final class SharedDeviceTick: ServerLoopTick {
    let shared: SharedDevice
    let window: RegisterWindow

    public init(shared: SharedDevice) {
        self.shared = shared
        window = RegisterWindow(device: shared.nic)
    }

    public func afterRound() {
        shared.switcher.tick(window: window, at: .now)
        shared.demux.deliverQueued()
        for guest in shared.guests { guest.ledger.tick() }
    }


    public var millisecondsToNextTick: Int32? {
        guard shared.switcher.hasWaiting else { return nil }
        let quiet = shared.switcher.policy.quiet / .milliseconds(1)
        let bound = shared.switcher.nextDeadline.map { ($0 - .now) / .milliseconds(1) } ?? quiet
        return Int32(clamping: Int(max(1, min(quiet, bound).rounded(.up))))
    }
}

/// The live ledger line of each guest, between poll rounds.
public final class LedgerTick: ServerLoopTick {
    let ledgers: [GuestLedger]
    public init(ledgers: [GuestLedger]) { self.ledgers = ledgers }
    public func afterRound() { for ledger in ledgers { ledger.tick() } }
    public var millisecondsToNextTick: Int32? { nil }
}
