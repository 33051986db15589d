/// The values of the DP8390 registers a host can read back (see `ReadbackRegister`): what the reduced
/// model may use besides the trapped command.
public struct ReadbackValues: Sendable, Hashable {
    /// CRDA (page 0, 0x08–0x09): where the remote DMA will start.
    public var crda: UInt16 = 0
    /// PSTART and PSTOP (page 2, 0x01–0x02): the ring the remote address wraps in.
    public var pstart: UInt8 = 0
    public var pstop: UInt8 = 0
    /// TPSR (page 2, 0x04): the transmit start page.
    public var tpsr: UInt8 = 0

    public init(crda: UInt16 = 0, pstart: UInt8 = 0, pstop: UInt8 = 0, tpsr: UInt8 = 0) {
        self.crda = crda
        self.pstart = pstart
        self.pstop = pstop
        self.tpsr = tpsr
    }
}

/// The cooperative host's reduced model: it sees only DMA-starting commands, reads back CRDA, PSTART,
/// PSTOP and TPSR, and decides whether the DMA stays inside the guest's grant.
///
/// RBCR and TBCR are write-only on the DP8390, so the count is unknown. The model therefore checks the
/// DMA's *envelope*, every address it could reach with any count — which also covers the data port
/// reading past RBCR (the NE2000 keeps advancing):
/// - remote write: the envelope must lie in `grant.owned`. A start inside the ring, or below it with
///   PSTOP at the top of the owned range, wraps back to PSTART before it can leave, whatever the count.
/// - remote read: the envelope must not reach SRAM the guest does not own; the PROM and undecoded
///   addresses (read as 0xFF) expose nothing. Stricter is impossible without the count: `ne2k-pci`'s
///   probe reads the PROM with the ring not yet set, so its envelope is the whole address space.
/// - transmit: TPSR × 256 up to `maximumTransmitLength` bytes must lie in `grant.owned`. A guest that
///   programs a longer TBCR is not caught here: closing that needs the count from the guest agent or a
///   hook on TBCR writes.
public struct ReducedModel: Sendable {
    public let grant: BufferGrant
    /// The transmit length assumed in place of TBCR: a maximal Ethernet frame rounded up to whole pages.
    public let maximumTransmitLength: Int

    public init(grant: BufferGrant = .wholeDevice, maximumTransmitLength: Int = 1536) {
        self.grant = grant
        self.maximumTransmitLength = maximumTransmitLength
    }

    /// Whether a CR value starts a DMA: the accesses the cooperative hook set traps.
    public static func startsDMA(command value: UInt8) -> Bool {
        (value & CR.abort == 0 && CR.remoteKind(value) != nil) || value & CR.transmit != 0
    }

    /// Judges a DMA-starting command; nil when `command` starts none.
    public func decide(command: UInt8, readback: ReadbackValues) -> DMADecision? {
        if command & CR.transmit != 0 {
            let span = RemoteSpan(transmitPage: readback.tpsr, count: maximumTransmitLength)
            let verdict: Verdict = grant.permits(.transmit, span) ? .allowed : .denied(.outsideGrant)
            return DMADecision(kind: .transmit, start: UInt16(readback.tpsr) << 8, count: nil, verdict: verdict)
        }
        guard command & CR.abort == 0, let kind = CR.remoteKind(command) else { return nil }
        let envelope = RemoteSpan(start: readback.crda, count: nil, pstart: readback.pstart, pstop: readback.pstop)
        let allowed = kind == .remoteWrite ? grant.permits(.remoteWrite, envelope) : !grant.exposesForeignSRAM(envelope)
        return DMADecision(kind: kind, start: readback.crda, count: nil, verdict: allowed ? .allowed : .denied(.outsideGrant))
    }
}

/// What the readable registers of the device hold, followed from the complete access stream.
///
/// A host reads these from the device when it traps a DMA start (switching to page 2 and back while the
/// guest is stalled). This testbed follows them from the stream instead, because a replayed trace has no
/// device: they are plain latches except CRDA, which advances here exactly as the NE2000 advances it
/// (which needs the remaining byte count too: the device drops data-port writes once it is zero).
public struct DeviceReadback: Sendable {
    public private(set) var values = ReadbackValues()
    private var page: UInt8 = 0
    private var wordMode = false
    private var remaining: UInt16 = 0

    public init() {}

    public mutating func apply(_ event: DeviceEvent) {
        switch event {
        case .access(let access): apply(access)
        case .interrupt: break
        case .reset: self = DeviceReadback()
        }
    }

    public mutating func apply(_ access: PortAccess) {
        switch access.port {
        case .register(let index):
            guard access.direction == .write else { return }
            let value = UInt8(truncatingIfNeeded: access.value)
            if index == CR.offset {
                page = value >> CR.pageShift
                return
            }
            guard page == 0 else { return }
            switch index {
            case Page0Write.pstart: values.pstart = value
            case Page0Write.pstop: values.pstop = value
            case Page0Write.tpsr: values.tpsr = value
            case Page0Write.rsar0: values.crda = values.crda & 0xFF00 | UInt16(value)
            case Page0Write.rsar1: values.crda = values.crda & 0x00FF | UInt16(value) << 8
            case Page0Write.rbcr0: remaining = remaining & 0xFF00 | UInt16(value)
            case Page0Write.rbcr1: remaining = remaining & 0x00FF | UInt16(value) << 8
            case Page0Write.dcr: wordMode = value & DCR.wordTransfer != 0
            default: break
            }
        case .dataPort:
            // A write with no bytes left is dropped by the device and does not advance; a read always does.
            if access.direction == .write && remaining == 0 { return }
            let bytes = access.width == .dword ? 4 : wordMode ? 2 : 1
            remaining = Int(remaining) <= bytes ? 0 : remaining - UInt16(bytes)
            advance(by: bytes)
        case .resetPort:
            if access.direction == .read { self = DeviceReadback() }
        case .ignored:
            break
        }
    }

    private mutating func advance(by bytes: Int) {
        for _ in 0..<bytes {
            values.crda &+= 1
            if values.pstart < values.pstop && values.crda == UInt16(values.pstop) << 8 {
                values.crda = UInt16(values.pstart) << 8
            }
        }
    }
}
