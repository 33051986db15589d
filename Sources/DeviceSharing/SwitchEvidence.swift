import DP8390

/// What the host read and tracked right before a switch: it switches a guest out only when this says
/// the device is reusable (or the hold bound forces it, which is recorded as such).
public struct SwitchEvidence: Sendable, Hashable, CustomStringConvertible {
    /// CR as read back.
    public var command: UInt8
    public var interruptStatus: UInt8
    public var interruptMask: UInt8
    /// The host saw a remote DMA start since the last CR write with RD = 100, or reset.
    public var remoteOpen: Bool

    /// CR reads back a remote read or write command that no RD = 100 write has ended (the device keeps
    /// RD through an RD = 000 write): the same fact as `remoteOpen`, from the device alone — what a host
    /// that did not trap every CR write (on-demand) has.
    public var commandShowsRemote: Bool { CommandEffect(command: command, wasRunning: true).startsRemote != nil }

    public init(command: UInt8, interruptStatus: UInt8, interruptMask: UInt8, remoteOpen: Bool) {
        self.command = command
        self.interruptStatus = interruptStatus
        self.interruptMask = interruptMask
        self.remoteOpen = remoteOpen
    }

    /// Reads CR, ISR and IMR through the register interface (CR left as it was).
    public init(reading window: RegisterWindow, remoteOpen: Bool) {
        let (status, mask) = window.interruptState()
        self.init(command: window.readCR(), interruptStatus: status, interruptMask: mask, remoteOpen: remoteOpen)
    }

    /// Why the device is not reusable now; empty when it is.
    public var obstacles: [String] {
        var found: [String] = []
        if remoteOpen || commandShowsRemote { found.append("remote DMA open") }
        if command & CR.transmit != 0 { found.append("transmit in flight (CR.TXP)") }
        if interruptStatus & interruptMask & ISR.sources != 0 {
            found.append("interrupt pending (ISR 0x\(String(interruptStatus, radix: 16)) & IMR 0x\(String(interruptMask, radix: 16)))")
        }
        if interruptStatus & ISR.remoteDMAComplete != 0 { found.append("remote DMA completion unacknowledged (ISR.RDC)") }
        return found
    }

    public var reusable: Bool { obstacles.isEmpty }

    public var description: String {
        reusable ? "reusable" : obstacles.joined(separator: ", ")
    }
}

/// The host's own record of whether a guest's remote DMA may still be moving, from the CR writes it
/// traps in every mode: a start opens it; an RD = 100 write (abort, or "no DMA" as drivers write it
/// between operations) or a reset closes it.
public struct RemoteDMATracker: Sendable, Hashable {
    public private(set) var open = false

    public init() {}

    public mutating func commandWritten(_ value: UInt8) {
        let effect = CommandEffect(command: value, wasRunning: true)
        if effect.startsRemote != nil { open = true } else if effect.endsRemote { open = false }
    }

    public mutating func reset() { open = false }
}
