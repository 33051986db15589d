/// What a DMA moves, seen from the device's buffer memory.
public enum DMAKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Remote read: buffer memory → host, through the data port.
    case remoteRead = "remote-read"
    /// Remote write: host → buffer memory, through the data port.
    case remoteWrite = "remote-write"
    /// Transmit: the DP8390 reads TBCR bytes at TPSR and sends them on the wire.
    case transmit
}

/// A DMA the guest is about to start: the full model's output at a DMA-starting command.
public struct DMAIntent: Sendable, Hashable {
    public var kind: DMAKind
    /// Buffer-memory address the DMA starts at (RSAR, or TPSR × 256).
    public var start: UInt16
    /// Bytes programmed (RBCR or TBCR).
    public var count: UInt16

    public init(kind: DMAKind, start: UInt16, count: UInt16) {
        self.kind = kind
        self.start = start
        self.count = count
    }
}

/// Why a checking function denied a transition.
public enum DenialReason: String, Sendable, Hashable, Codable {
    /// The DMA would touch buffer memory outside what the guest may use.
    case outsideGrant = "outside-grant"
    /// A remote DMA started without RSAR0/1 and RBCR0/1 written since the previous one: the device would
    /// continue from where the data port left the address and count, which the model does not follow.
    case notProgrammed = "not-programmed"
    /// A data-port access while no remote DMA of that direction is in progress.
    case strayDataPort = "stray-data-port"
}

/// A checking function's answer for one transition.
public enum Verdict: Sendable, Hashable {
    case allowed
    case denied(DenialReason)

    public var isAllowed: Bool { self == .allowed }
}

/// A DMA start as a monitor judged it.
public struct DMADecision: Sendable, Hashable {
    public var kind: DMAKind
    public var start: UInt16
    /// The programmed count; nil when the monitor cannot know it (the reduced model: RBCR and TBCR are
    /// write-only).
    public var count: UInt16?
    public var verdict: Verdict

    public init(kind: DMAKind, start: UInt16, count: UInt16?, verdict: Verdict) {
        self.kind = kind
        self.start = start
        self.count = count
        self.verdict = verdict
    }
}

/// The buffer memory a guest may reach by DMA. A parameter so that SRAM can later be split between guests.
///
/// Writes and transmits must stay inside `owned`. Reads may also cover `readOnly` (the station-address
/// PROM, which `ne2k-pci` reads once at probe).
public struct BufferGrant: Sendable, Hashable {
    public var owned: Range<Int>
    public var readOnly: Range<Int>

    /// One guest: all of SRAM, and the PROM for reading.
    public static let wholeDevice = BufferGrant(owned: BufferMap.sram, readOnly: BufferMap.prom)

    public init(owned: Range<Int>, readOnly: Range<Int> = BufferMap.prom) {
        self.owned = owned
        self.readOnly = readOnly
    }

    /// Whether every segment lies where `kind` may go. Each segment is inside 0..<0x10000.
    func permits(_ kind: DMAKind, _ segments: RemoteSpan) -> Bool {
        segments.allSatisfy { segment in
            if segment.isEmpty { return true }
            let inOwned = owned.contains(segment.lowerBound) && segment.upperBound <= owned.upperBound
            if inOwned { return true }
            let inReadOnly = readOnly.contains(segment.lowerBound) && segment.upperBound <= readOnly.upperBound
            return kind == .remoteRead && inReadOnly
        }
    }

    /// Whether reading the segments could expose SRAM the guest does not own. The PROM and undecoded
    /// addresses (which read as 0xFF) expose nothing.
    func exposesForeignSRAM(_ segments: RemoteSpan) -> Bool {
        !segments.allSatisfy { segment in
            let sram = segment.clamped(to: BufferMap.sram)
            return sram.isEmpty || owned.contains(sram.lowerBound) && sram.upperBound <= owned.upperBound
        }
    }
}

/// The addresses a remote DMA touches, as up to three contiguous segments.
///
/// The NE2000 advances the remote address by one per byte and, while PSTART < PSTOP, jumps from
/// PSTOP × 256 back to PSTART × 256 (drivers read frames that wrap the receive ring in one go); otherwise
/// the 16-bit address wraps to 0. So from any start the walk is: up to PSTOP (or 0x10000), then (from 0)
/// up to PSTOP, then the ring over and over.
/// Stored inline (no allocation): a model update must stay cheap.
struct RemoteSpan: Equatable {
    private var first = 0..<0, second = 0..<0, third = 0..<0
    private var count = 0

    private mutating func append(_ segment: Range<Int>) {
        switch count {
        case 0: first = segment
        case 1: second = segment
        default: third = segment
        }
        count += 1
    }

    /// Whether `body` holds for every segment.
    func allSatisfy(_ body: (Range<Int>) -> Bool) -> Bool {
        (count < 1 || body(first)) && (count < 2 || body(second)) && (count < 3 || body(third))
    }

    /// - Parameter count: bytes moved; nil for "any number": the data port keeps advancing past RBCR, and
    ///   the reduced model cannot read RBCR at all.
    init(start: UInt16, count: UInt16?, pstart: UInt8, pstop: UInt8) {
        let ringLow = Int(pstart) * BufferMap.pageSize
        let ringHigh = Int(pstop) * BufferMap.pageSize
        let ringValid = pstart < pstop
        var address = Int(start)
        var left = count.map(Int.init) ?? Int.max
        // At most: start → PSTOP or top, 0 → PSTOP, then one full ring pass covers every later lap.
        for _ in 0..<3 where left > 0 {
            let limit = ringValid && address < ringHigh ? ringHigh : BufferMap.addressSpace
            let take = min(left, limit - address)
            append(address..<address + take)
            left -= take
            address += take
            if ringValid && address == ringHigh {
                address = ringLow
                if left >= ringHigh - ringLow || count == nil {
                    append(ringLow..<ringHigh)
                    return
                }
            } else if address == BufferMap.addressSpace {
                address = 0
            }
        }
    }

    init(transmitPage: UInt8, count: Int) {
        let start = Int(transmitPage) * BufferMap.pageSize
        append(start..<start + count)
    }
}
