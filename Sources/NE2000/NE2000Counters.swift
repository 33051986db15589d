import DP8390

/// What the device did, for the ledger and for tests. These are the model's own statistics, not the
/// DP8390 tally registers, and are not part of `NE2000State`.
public struct NE2000Counters: Equatable, Codable, Sendable {
    /// Frames written into the receive ring (from the wire or looped back).
    public var framesReceived: UInt64 = 0
    /// Frames that passed the filter but did not fit in the ring (also counted in CNTR2).
    public var framesDroppedNoRoom: UInt64 = 0
    /// Frames discarded because the receiver was stopped, in monitor mode, the ring was unusable,
    /// the frame was longer than 1518 bytes, or the address filter rejected it.
    public var framesDiscarded: UInt64 = 0
    /// Frames handed to the transmit sink.
    public var framesTransmitted: UInt64 = 0
    /// Frames sent in loopback mode (delivered to the receive path, not the sink).
    public var framesLoopedBack: UInt64 = 0
    /// Transmit commands aborted because TPSR/TBCR did not describe a frame inside SRAM.
    public var transmitsAborted: UInt64 = 0
    /// Data-port accesses outside a remote DMA of their direction (no command, count exhausted, or the
    /// other direction): reads returned the filler, writes were dropped.
    public var dataPortOutsideDMA: UInt64 = 0
    /// Accesses the model does not decode: other regions, out-of-range offsets, register accesses wider
    /// than a byte, page 3 (RTL8029 configuration) and unmodelled page 2 registers.
    public var unhandledAccesses: UInt64 = 0

    /// All zero.
    public init() {}
}

/// Sees every byte of buffer memory a DMA moves, as the device moves it: the oracle of the adversarial
/// property tests (every byte must lie where the enforced mode judged and allowed).
public protocol BufferAccessObserver: AnyObject {
    /// `kind` moved the byte at buffer address `address` (remote read or write through the data port,
    /// a transmit reading it, a receive storing it). Undecoded addresses are reported too.
    func moved(_ kind: DMAKind, address: UInt16)
}
