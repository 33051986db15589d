import DeviceBus

/// How the device is shared: fair round robin over the guests that want it, each owner keeping it for a
/// quantum, nobody held past the bound.
public struct SharingPolicy: Sendable, Hashable {
    /// The owner is switched out at its next switch point once it has made this many accesses...
    public var quantumAccesses = 2_000
    /// ...or owned the device this long, while another guest waits.
    public var quantum: Duration = .milliseconds(20)
    /// An owner this long without a device access is idle: switched out without waiting for a switch point.
    public var quiet: Duration = .milliseconds(20)
    /// No guest's access is held longer: then the owner is switched out even if not reusable (forced).
    /// Well below QEMU's `x-msg-timeout` (5 s).
    public var holdBound: Duration = .seconds(1)

    public init() {}
}

/// One switch, as the host checked and did it.
public struct SwitchRecord: Sendable, Hashable {
    public enum Reason: String, Sendable, Hashable {
        /// The owner's CR write with RD = 100 (switch point A).
        case switchPoint = "switch point"
        /// The owner made no access for the quiet period (switch point B).
        case quiet
        /// A waiting guest reached the hold bound.
        case forced
        /// Nobody owned the device.
        case idleDevice = "idle device"
    }

    public var from: Int?
    public var to: Int
    public var reason: Reason
    /// What the host read before switching `from` out (nil when nobody owned the device).
    public var evidence: SwitchEvidence?
    /// Device accesses the save and the restore made.
    public var accesses: Int
    /// How long the save and the restore took (measured, not modelled).
    public var duration: Duration
}

/// Told of every change of owner, after the incoming guest's context is on the device.
public protocol SwitchObserver: AnyObject {
    func switched(from: Int?, to: Int)
}

/// Whether a guest's device access may go to the device now, or waits (its vfio-user reply held).
public enum Admission: Sendable, Hashable {
    case proceed
    case hold
}

/// One NE2000, N guests (0..<N), one owner at a time. Pure: the caller says what the guests do and what
/// time it is; the switcher saves and restores contexts on the device (`ContextTransfer`) and decides who
/// owns it. A guest is switched out only where the host can show the device is reusable (`SwitchEvidence`),
/// or forced at the hold bound; SHARING.md has the reasoning.
public final class DeviceSwitcher {
    public let policy: SharingPolicy
    public private(set) var owner: Int?
    public private(set) var switches: [SwitchRecord] = []
    /// Switches that were due but refused because the device was not reusable, by obstacle.
    public private(set) var refused: [String: Int] = [:]
    private var transfer: ContextTransfer
    private var guests: [GuestState]
    private var ownedSince: ContinuousClock.Instant
    private var accessesThisTurn = 0
    private var lastAccess: ContinuousClock.Instant
    private var nextInLine = 0
    private let observer: SwitchObserver?

    /// A guest's side of the sharing.
    struct GuestState {
        var context: DeviceContext
        var tracker = RemoteDMATracker()
        /// Since when the guest has wanted the device (a held access, or frames for it), if it does.
        var waitingSince: ContinuousClock.Instant?
        var heldFor: [Duration] = []
    }

    public init(device: BusDevice, layout: BufferLayout, guests: Int, policy: SharingPolicy = SharingPolicy(),
                observer: SwitchObserver? = nil, now: ContinuousClock.Instant) {
        precondition(guests > 0)
        self.policy = policy
        self.observer = observer
        transfer = ContextTransfer(device: device, layout: layout)
        self.guests = Array(repeating: GuestState(context: .reset(layout: layout)), count: guests)
        ownedSince = now
        lastAccess = now
    }

    /// How long each of `guest`'s held accesses waited, in order.
    public func holdTimes(of guest: Int) -> [Duration] { guests[guest].heldFor }

    /// A guest's device access arrives. The owner's proceeds; anyone else's waits, unless nobody owns the
    /// device, which is then switched to it.
    public func request(_ guest: Int, at now: ContinuousClock.Instant) -> Admission {
        if owner == guest {
            accessesThisTurn += 1
            lastAccess = now
            return .proceed
        }
        guard owner == nil else {
            if guests[guest].waitingSince == nil { guests[guest].waitingSince = now }
            return .hold
        }
        switchIn(guest, reason: .idleDevice, evidence: nil, at: now)
        return request(guest, at: now)
    }

    /// Frames arrived for `guest` while it does not own the device: it wants the device too.
    public func wants(_ guest: Int, at now: ContinuousClock.Instant) {
        guard owner != guest, guests[guest].waitingSince == nil else { return }
        guests[guest].waitingSince = now
    }

    /// The owner's CR write has reached the device (it traps in every mode). Returns true when the device
    /// was switched away at this switch point: the write's reply then waits until `guest` owns it again.
    public func commandWritten(_ guest: Int, value: UInt8, window: RegisterWindow, at now: ContinuousClock.Instant) -> Bool {
        guard owner == guest else { return false }
        guests[guest].tracker.commandWritten(value)
        guard SwitchPoint.isSwitchPoint(command: value), turnIsOver(at: now), let next = nextWaiting() else { return false }
        guard trySwitch(to: next, reason: .switchPoint, window: window, at: now) else { return false }
        guests[guest].waitingSince = now
        return true
    }

    /// The device was reset for `guest` (a function reset): nothing of its remote DMA is open.
    public func reset(_ guest: Int) { guests[guest].tracker.reset() }

    /// Called between accesses: switches a quiet owner out, or any owner once a waiting guest has been
    /// held for the bound. Returns the new owner when the device changed hands.
    @discardableResult
    public func tick(window: RegisterWindow, at now: ContinuousClock.Instant) -> Int? {
        guard let next = nextWaiting() else { return nil }
        if owner == nil {
            switchIn(next, reason: .idleDevice, evidence: nil, at: now)
            return next
        }
        if now - lastAccess >= policy.quiet, trySwitch(to: next, reason: .quiet, window: window, at: now) { return next }
        if let since = guests[next].waitingSince, now - since >= policy.holdBound {
            forceSwitch(to: next, window: window, at: now)
            return next
        }
        return nil
    }

    /// Whether the owner's turn is over and another guest waits: the owner should get no new work (frames)
    /// so that it reaches a reusable state soon.
    public func ownerShouldYield(at now: ContinuousClock.Instant) -> Bool {
        owner != nil && turnIsOver(at: now) && nextWaiting() != nil
    }

    /// Whether a guest other than the owner wants the device.
    public var hasWaiting: Bool { nextWaiting() != nil }

    /// When the next held access falls due for the hold bound (nil: nobody waits).
    public var nextDeadline: ContinuousClock.Instant? {
        guests.compactMap(\.waitingSince).min().map { $0 + policy.holdBound }
    }

    private func turnIsOver(at now: ContinuousClock.Instant) -> Bool {
        accessesThisTurn >= policy.quantumAccesses || now - ownedSince >= policy.quantum
    }

    /// The waiting guest after the owner in round-robin order.
    private func nextWaiting() -> Int? {
        let count = guests.count
        return (0..<count).map { (nextInLine + $0) % count }.first { $0 != owner && guests[$0].waitingSince != nil }
    }

    /// Switches to `next` if the device is reusable; counts the refusal otherwise.
    private func trySwitch(to next: Int, reason: SwitchRecord.Reason, window: RegisterWindow, at now: ContinuousClock.Instant) -> Bool {
        guard let current = owner else { return false }
        let evidence = SwitchEvidence(reading: window, remoteOpen: guests[current].tracker.open)
        guard evidence.reusable else {
            for obstacle in evidence.obstacles { refused[obstacle, default: 0] += 1 }
            return false
        }
        let before = (transfer.accesses, ContinuousClock.now)
        switchOut(current)
        switchIn(next, reason: reason, evidence: evidence, at: now, since: before)
        return true
    }

    /// At the hold bound: the owner goes even though the device is not reusable; its open remote DMA is
    /// dropped (the restore aborts it) and its pending interrupt bits are lost, nothing of it left behind.
    private func forceSwitch(to next: Int, window: RegisterWindow, at now: ContinuousClock.Instant) {
        guard let current = owner else { return }
        let evidence = SwitchEvidence(reading: window, remoteOpen: guests[current].tracker.open)
        let before = (transfer.accesses, ContinuousClock.now)
        switchOut(current)
        guests[current].tracker.reset()
        guests[current].waitingSince = now
        switchIn(next, reason: .forced, evidence: evidence, at: now, since: before)
    }

    private func switchOut(_ guest: Int) {
        guests[guest].context = transfer.save(writeOnly: WriteOnlyRegisters())
    }

    /// Restores `guest`'s context; the record counts the device accesses and time since `before` (the save's too).
    private func switchIn(_ guest: Int, reason: SwitchRecord.Reason, evidence: SwitchEvidence?, at now: ContinuousClock.Instant,
                          since before: (accesses: Int, at: ContinuousClock.Instant)? = nil) {
        let before = before ?? (transfer.accesses, ContinuousClock.now)
        transfer.restore(guests[guest].context)
        if let since = guests[guest].waitingSince { guests[guest].heldFor.append(now - since) }
        guests[guest].waitingSince = nil
        switches.append(SwitchRecord(from: owner, to: guest, reason: reason, evidence: evidence, accesses: transfer.accesses - before.accesses,
                                     duration: ContinuousClock.now - before.at))
        let previous = owner
        owner = guest
        nextInLine = (guest + 1) % guests.count
        ownedSince = now
        lastAccess = now
        accessesThisTurn = 0
        observer?.switched(from: previous, to: guest)
    }
}

/// A shared device's per-guest files (ledger, trace): `PATH` becomes `PATH-NAME` before its extension.
/// vpio-host writes them, `vpio run` reads them: one rule for both.
public enum PerGuestFile {
    public static func path(_ path: String, guest name: String) -> String {
        let dot = path.lastIndex(of: "."), slash = path.lastIndex(of: "/")
        guard let dot, slash.map({ $0 < dot }) ?? true else { return "\(path)-\(name)" }
        return "\(path[..<dot])-\(name)\(path[dot...])"
    }
}
