/// The remote DMA command a CR write carries (RD2–0).
public enum RemoteCommand: UInt8, Sendable, Hashable {
    /// RD = 000, which the datasheet leaves "not allowed": a running remote DMA is left as it is. A host
    /// switching pages to read registers writes this, so its page switches start and end nothing.
    case none = 0
    /// RD = 001: Remote Read, buffer memory → data port.
    case read = 1
    /// RD = 010: Remote Write, data port → buffer memory.
    case write = 2
    /// RD = 011: Send Packet. The NE2000 does not wire it; it ends a running remote DMA and starts none.
    case sendPacket = 3
    /// RD2 set: abort / complete the remote DMA.
    case abort = 4
}

/// What one CR write does, given whether the NIC was running before it: the one rule for run state,
/// remote DMA start and transmit start. The device executes it; the models, the enforcement and the
/// agent's BPF program (through `DP8390CHeader`'s table) judge with it.
public struct CommandEffect: Sendable, Hashable {
    public var remote: RemoteCommand
    /// STA/STP after the write: STP wins; STA starts; neither leaves the run state unchanged (Linux's
    /// interrupt handler writes 0x20).
    public var runningAfter: Bool
    /// TXP is honoured only by a running NIC, after the same write's run-state change.
    public var startsTransmit: Bool
    public var page: UInt8

    public init(command value: UInt8, wasRunning: Bool) {
        switch (value & CR.remoteMask) >> CR.remoteShift {
        case 0: remote = .none
        case 1: remote = .read
        case 2: remote = .write
        case 3: remote = .sendPacket
        default: remote = .abort
        }
        if value & CR.stop != 0 {
            runningAfter = false
        } else if value & CR.start != 0 {
            runningAfter = true
        } else {
            runningAfter = wasRunning
        }
        startsTransmit = value & CR.transmit != 0 && runningAfter
        page = CR.page(value)
    }

    /// The remote DMA this write starts, if any.
    public var startsRemote: DMAKind? {
        switch remote {
        case .read: .remoteRead
        case .write: .remoteWrite
        case .none, .sendPacket, .abort: nil
        }
    }

    /// Whether the write ends a remote DMA in progress (a new start replaces it).
    public var endsRemote: Bool { remote != .none }

    /// Whether this write starts any DMA: what the cooperative host must judge before it reaches the device.
    public var startsDMA: Bool { startsRemote != nil || startsTransmit }
}

/// What a DMA moves, seen from the device's buffer memory.
public enum DMAKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Remote read: buffer memory → host, through the data port.
    case remoteRead = "remote-read"
    /// Remote write: host → buffer memory, through the data port.
    case remoteWrite = "remote-write"
    /// Transmit: the DP8390 reads TBCR bytes at TPSR and sends them on the wire.
    case transmit
    /// Receive: the DP8390 stores a frame from the wire into the ring at CURR.
    case receive
}
