/// What a host reads from the device's own readable registers at a trapped DMA-starting CR write: the
/// reduced model's only inputs besides the command. RBCR and TBCR cannot be read on the DP8390.
public struct ReadbackValues: Sendable, Hashable {
    /// CRDA (page 0, 0x08–0x09) right after the command reached the device: a remote command loads it from
    /// RSAR, so this is where the remote DMA starts. (The host reads it before returning to the guest,
    /// so no data-port access can have moved it.)
    public var crda: UInt16
    /// PSTART and PSTOP (page 2, 0x01–0x02): the ring the remote DMA latched and the receive ring.
    public var pstart: UInt8
    public var pstop: UInt8
    /// TPSR (page 2, 0x04): the transmit start page.
    public var tpsr: UInt8
    /// TCR (page 2, 0x0D): in loopback a transmit is also a receive into the ring.
    public var tcr: UInt8
    /// Whether the NIC was running before the command (ISR.RST, page 0, 0x07, clear).
    public var running: Bool

    public init(crda: UInt16 = 0, pstart: UInt8 = 0, pstop: UInt8 = 0, tpsr: UInt8 = 0, tcr: UInt8 = 0, running: Bool = false) {
        self.crda = crda
        self.pstart = pstart
        self.pstop = pstop
        self.tpsr = tpsr
        self.tcr = tcr
        self.running = running
    }
}

/// The cooperative host's reduced model: it sees only DMA-starting commands, reads back CRDA, PSTART,
/// PSTOP, TPSR, TCR and the run state, and decides whether the DMA stays inside the guest's grant.
///
/// RBCR and TBCR are write-only, so the count is unknown: the model checks the DMA's *envelope*, every
/// address it could reach with any count. What steers the DMA afterwards cannot change it: the device
/// latches CRDA, the count and the ring at the command, and a transmit runs within the command.
/// - remote read or write: from CRDA, wrapping in the latched ring. A start inside the ring, or below it
///   with PSTOP at the top of SRAM, wraps back before it can leave it, whatever the count.
/// - transmit: from TPSR × 256 to the end of SRAM (a longer TBCR makes the NE2000 abort the frame); in
///   loopback also the receive ring.
public struct ReducedModel: Sendable {
    public let grant: BufferGrant

    public init(grant: BufferGrant = .wholeDevice) {
        self.grant = grant
    }

    /// Whether a CR value might start a DMA, whatever the run state: the trapped writes the host acts on.
    public static func mayStartDMA(command value: UInt8) -> Bool {
        CommandEffect(command: value, wasRunning: true).startsDMA
    }

    /// Judges a trapped CR write.
    public func decide(command: UInt8, readback: ReadbackValues) -> DMAStarts {
        let effect = CommandEffect(command: command, wasRunning: readback.running)
        var starts = DMAStarts()
        if let kind = effect.startsRemote {
            let envelope = RemoteSpan(start: readback.crda, count: nil, pstart: readback.pstart, pstop: readback.pstop)
            starts.remote = DMADecision(kind: kind, start: readback.crda, count: nil, verdict: grant.verdict(envelope))
        }
        if effect.startsTransmit {
            var verdict = grant.verdict(RemoteSpan(transmitPage: readback.tpsr, count: nil))
            if readback.tcr & TCR.loopbackMask != 0, verdict.isAllowed {
                verdict = grant.verdict(RemoteSpan(ringStart: readback.pstart, ringStop: readback.pstop))
            }
            starts.transmit = DMADecision(kind: .transmit, start: UInt16(readback.tpsr) << 8, count: nil, verdict: verdict)
        }
        return starts
    }

    /// Judges storing a received frame: the device stores into the ring PSTART..<PSTOP at CURR.
    public func decideReceive(pstart: UInt8, pstop: UInt8, curr: UInt8) -> DMADecision {
        DMADecision(kind: .receive, start: UInt16(curr) << 8, count: nil,
                    verdict: grant.verdict(RemoteSpan(ringStart: pstart, ringStop: pstop)))
    }
}

/// What the readable registers of the device show at each CR write, followed from the complete access
/// stream — for offline replay of a trace, which has no device to read. A live host reads them from the
/// device instead (vpio-host's gate). It follows the NE2000 exactly: RSAR is loaded into CRDA by a
/// remote command, and the data port advances CRDA only while that DMA runs, in its latched ring.
public struct DeviceReadback: Sendable {
    private var registers = ReadbackValues()
    private var page: UInt8 = 0
    private var dcr: UInt8 = 0
    private var rsar: UInt16 = 0
    private var rbcr: UInt16 = 0
    private var remote: (kind: DMAKind, remaining: UInt16, ringStart: UInt8, ringStop: UInt8)?

    public init() {}

    /// The values a host reads when it traps the CR write `command` (CRDA as that command leaves it).
    public func values(atCommand command: UInt8) -> ReadbackValues {
        var values = registers
        if CommandEffect(command: command, wasRunning: registers.running).startsRemote != nil { values.crda = rsar }
        return values
    }

    public mutating func apply(_ event: DeviceEvent) {
        switch event {
        case .access(let access): apply(access)
        case .interrupt: break
        case .reset: self = DeviceReadback()
        }
    }

    public mutating func apply(_ access: PortAccess) {
        switch access.port {
        case .register(let index) where access.direction == .write:
            write(index, UInt8(truncatingIfNeeded: access.value))
        case .dataPort:
            dataPort(access)
        case .resetPort where access.direction == .read:
            self = DeviceReadback()
        case .register, .resetPort, .ignored:
            break
        }
    }

    private mutating func write(_ index: UInt8, _ value: UInt8) {
        if index == CR.offset { return command(value) }
        guard page == 0 else { return }
        switch Page0Write(rawValue: index) {
        case .pstart?: registers.pstart = value
        case .pstop?: registers.pstop = value
        case .tpsr?: registers.tpsr = value
        case .rsar0?: rsar = rsar & 0xFF00 | UInt16(value)
        case .rsar1?: rsar = rsar & 0x00FF | UInt16(value) << 8
        case .rbcr0?: rbcr = rbcr & 0xFF00 | UInt16(value)
        case .rbcr1?: rbcr = rbcr & 0x00FF | UInt16(value) << 8
        case .tcr?: registers.tcr = value
        case .dcr?: dcr = value
        default: break
        }
    }

    private mutating func command(_ value: UInt8) {
        let effect = CommandEffect(command: value, wasRunning: registers.running)
        page = effect.page
        registers.running = effect.runningAfter
        if effect.endsRemote { remote = nil }
        if let kind = effect.startsRemote {
            registers.crda = rsar
            remote = rbcr > 0 ? (kind, rbcr, registers.pstart, registers.pstop) : nil
        }
    }

    private mutating func dataPort(_ access: PortAccess) {
        guard var dma = remote, (dma.kind == .remoteRead) == (access.direction == .read) else { return }
        for _ in 0..<RemoteAddress.bytesPerAccess(access.width, dataConfiguration: dcr) where dma.remaining > 0 {
            registers.crda = RemoteAddress.next(after: registers.crda, ringStart: dma.ringStart, ringStop: dma.ringStop)
            dma.remaining -= 1
        }
        remote = dma.remaining > 0 ? dma : nil
    }
}
