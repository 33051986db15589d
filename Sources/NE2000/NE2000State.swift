import DP8390

/// Everything the NE2000 remembers: the DP8390 registers, the remote DMA channel and the 16 KiB of SRAM.
///
/// A plain value, so it can be saved, compared and restored when the device is switched between guests.
/// The station-address PROM is not part of it: it is the identity of the card (its MAC), not state.
public struct NE2000State: Equatable, Codable, Sendable {
    /// CR as last written (page, remote DMA command, STA/STP); TXP reads back clear once a transmit is done.
    public var command: UInt8
    /// True after a start command, false after a stop or reset. CR alone cannot tell: a write with both
    /// STA and STP clear (as Linux's interrupt handler issues) leaves the NIC as it was.
    public var isRunning: Bool
    /// PSTART, PSTOP: the receive ring is pages PSTART ..< PSTOP.
    public var pageStart: UInt8
    public var pageStop: UInt8
    /// BNRY: the last ring page the driver has consumed; the NIC never writes into it.
    public var boundary: UInt8
    /// CURR: the ring page the next received frame starts in.
    public var currentPage: UInt8
    /// TPSR, TBCR: the frame to transmit starts at page TPSR and is TBCR bytes long.
    public var transmitPageStart: UInt8
    public var transmitByteCount: UInt16
    /// TSR, RSR: status of the last transmit and receive.
    public var transmitStatus: UInt8
    public var receiveStatus: UInt8
    /// ISR, IMR.
    public var interruptStatus: UInt8
    public var interruptMask: UInt8
    /// RCR, TCR, DCR.
    public var receiveConfiguration: UInt8
    public var transmitConfiguration: UInt8
    public var dataConfiguration: UInt8
    /// RSAR and RBCR as programmed (write-only): what the next remote DMA command latches.
    public var remoteStartAddress: UInt16
    public var remoteByteCount: UInt16
    /// CRDA: the current remote DMA address (loaded from RSAR by a remote command, advanced by the data port).
    public var remoteAddress: UInt16
    /// The remote DMA in progress, between a Remote Read/Write command and its byte count reaching zero.
    public var remoteDMA: ActiveRemoteDMA?
    /// CLDA: where the local (receive or transmit) DMA last stopped.
    public var localAddress: UInt16
    /// PAR0–5 (6 bytes) and MAR0–7 (8 bytes).
    public var physicalAddress: [UInt8]
    public var multicastFilter: [UInt8]
    /// CNTR0–2: frame alignment errors, CRC errors, missed packets.
    public var tallyCounters: [UInt8]
    /// The 16 KiB buffer memory at 0x4000–0x7FFF.
    public var sram: [UInt8]

    /// The state after a hardware reset (the reset port or a PCI function reset). Registers the datasheet
    /// leaves undefined are zero so that a reset device is deterministic; SRAM contents are kept by the
    /// device itself and start zeroed here.
    public static let powerOn = NE2000State(
        command: CR.stop | RemoteCommand.abort.rawValue << CR.remoteShift, isRunning: false,
        pageStart: 0, pageStop: 0, boundary: 0, currentPage: 0,
        transmitPageStart: 0, transmitByteCount: 0, transmitStatus: 0, receiveStatus: 0,
        interruptStatus: ISR.reset, interruptMask: 0,
        receiveConfiguration: 0, transmitConfiguration: 0, dataConfiguration: 0,
        remoteStartAddress: 0, remoteByteCount: 0, remoteAddress: 0, remoteDMA: nil, localAddress: 0,
        physicalAddress: [UInt8](repeating: 0, count: 6),
        multicastFilter: [UInt8](repeating: 0, count: 8),
        tallyCounters: [UInt8](repeating: 0, count: 3),
        sram: [UInt8](repeating: 0, count: BufferMap.sram.count))

    /// Checks what a restored device relies on. Every state the device reaches by itself passes, except one
    /// that is running its receiver over a ring the guest programmed inconsistently: restoring that would
    /// bring back a NIC that silently discards every frame, so it is refused.
    public func validate() throws(NE2000StateError) {
        guard physicalAddress.count == 6 else { throw .wrongSize(field: "physicalAddress", expected: 6) }
        guard multicastFilter.count == 8 else { throw .wrongSize(field: "multicastFilter", expected: 8) }
        guard tallyCounters.count == 3 else { throw .wrongSize(field: "tallyCounters", expected: 3) }
        guard sram.count == BufferMap.sram.count else {
            throw .wrongSize(field: "sram", expected: BufferMap.sram.count)
        }
        if let dma = remoteDMA, dma.remaining == 0 { throw .remoteDMAWithoutBytes }
        // A transmit completes within the CR write that starts it.
        guard command & CR.transmit == 0 else { throw .transmitInProgress }
        let stopBit = command & CR.stop != 0
        let startOnly = command & (CR.start | CR.stop) == CR.start
        guard !(stopBit && isRunning), !(startOnly && !isRunning) else { throw .runStateContradictsCommand }
        // RST is set on entering the stopped state and cleared only by a start command.
        guard (interruptStatus & ISR.reset != 0) == !isRunning else { throw .resetBitContradictsRunState }
        if isRunning && receiveConfiguration & RCR.monitor == 0 && receiveRing == nil {
            throw .receiveRingInvalid(pageStart: pageStart, pageStop: pageStop,
                                      boundary: boundary, currentPage: currentPage)
        }
    }

    /// The receive ring, if PSTART, PSTOP, CURR and BNRY describe one inside SRAM; nil otherwise.
    var receiveRing: ReceiveRing? {
        ReceiveRing(pageStart: pageStart, pageStop: pageStop, boundary: boundary, currentPage: currentPage)
    }
}

/// A remote DMA in progress: what its command latched. RSAR, RBCR, PSTART and PSTOP writes made while
/// it runs do not steer it — the host judged it with the values it latched.
public struct ActiveRemoteDMA: Equatable, Codable, Sendable {
    public var kind: DMAKind
    /// Bytes still to move; the DMA ends (RDC) when this reaches zero.
    public var remaining: UInt16
    /// PSTART and PSTOP at the command: the ring the address wraps in.
    public var ringStart: UInt8
    public var ringStop: UInt8
}

/// Why a state cannot be restored.
public enum NE2000StateError: Error, Equatable, Sendable {
    /// A fixed-size buffer has the wrong length.
    case wrongSize(field: String, expected: Int)
    /// A remote DMA is recorded as running with no bytes left: it would have ended.
    case remoteDMAWithoutBytes
    /// CR has TXP set, which the model never leaves behind.
    case transmitInProgress
    /// `isRunning` disagrees with CR's STP/STA bits.
    case runStateContradictsCommand
    /// ISR.RST must be set exactly while the NIC is stopped.
    case resetBitContradictsRunState
    /// The receiver is on but the ring is not PSTART < PSTOP inside SRAM with CURR in the ring and BNRY in
    /// the ring (or PSTART − 1, which Linux writes after consuming a frame that ended at PSTOP).
    case receiveRingInvalid(pageStart: UInt8, pageStop: UInt8, boundary: UInt8, currentPage: UInt8)
}

/// A receive ring that has passed its consistency checks, with the DP8390's free-space rule.
struct ReceiveRing {
    let pageStart: Int
    let pageStop: Int
    let boundary: Int
    let currentPage: Int

    init?(pageStart: UInt8, pageStop: UInt8, boundary: UInt8, currentPage: UInt8) {
        let start = Int(pageStart), stop = Int(pageStop)
        guard start >= Int(BufferMap.firstPage), start < stop, stop <= Int(BufferMap.endPage),
              (start..<stop).contains(Int(currentPage)) else { return nil }
        // Linux sets BNRY to "next frame − 1", which is PSTART − 1 when the next frame starts at PSTART;
        // it means the page before PSTART in ring order, i.e. PSTOP − 1.
        let bnry = Int(boundary) == start - 1 ? stop - 1 : Int(boundary)
        guard (start..<stop).contains(bnry) else { return nil }
        self.pageStart = start
        self.pageStop = stop
        self.boundary = bnry
        self.currentPage = Int(currentPage)
    }

    var pageCount: Int { pageStop - pageStart }

    /// Pages from CURR up to (not including) BNRY. CURR == BNRY reads as an empty ring, which is how a
    /// driver that initialises both to PSTART expects it; the receive path never lets CURR reach BNRY.
    var freePages: Int {
        let distance = (boundary - currentPage + pageCount) % pageCount
        return distance == 0 ? pageCount : distance
    }

    /// Pages a frame of `length` bytes occupies: the 4-byte header, the data, and 4 bytes the DP8390
    /// reserves for the FCS. Linux's next-page sanity check accepts exactly this rounding.
    static func pagesNeeded(forFrameLength length: Int) -> Int {
        (length + 4 + 4 + BufferMap.pageSize - 1) / BufferMap.pageSize
    }

    /// Whether a frame of `length` bytes fits without CURR reaching BNRY.
    func fits(frameLength length: Int) -> Bool {
        Self.pagesNeeded(forFrameLength: length) < freePages
    }
}
