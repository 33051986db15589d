/// The buffer memory a guest may reach by DMA. A parameter so that SRAM can be split between guests.
///
/// The rule is the same for every kind: a DMA may not touch SRAM outside `owned`. Outside SRAM it can
/// do no harm — the PROM is read-only and public (the MAC), undecoded addresses read as the filler and
/// drop writes — so a driver probing memory there is allowed (and the host counts it, see
/// `DMADecision.isAnomaly`).
public struct BufferGrant: Sendable, Hashable {
    public var owned: Range<Int>

    /// One guest: all of SRAM.
    public static let wholeDevice = BufferGrant(owned: BufferMap.sram)

    public init(owned: Range<Int>) {
        self.owned = owned
    }

    /// Whether part of SRAM is someone else's: then every DMA start must be judged.
    public var leavesSRAMToOthers: Bool {
        owned.lowerBound > BufferMap.sram.lowerBound || owned.upperBound < BufferMap.sram.upperBound
    }

    /// Whether every segment keeps to `owned` wherever it is in SRAM.
    func permits(_ segments: RemoteSpan) -> Bool {
        segments.allSatisfy { segment in
            let sram = segment.clamped(to: BufferMap.sram)
            return sram.isEmpty || owned.contains(sram.lowerBound) && sram.upperBound <= owned.upperBound
        }
    }

    func verdict(_ segments: RemoteSpan) -> Verdict {
        permits(segments) ? .allowed : .denied(.outsideGrant)
    }
}

/// The addresses a DMA touches, as up to three contiguous segments.
///
/// The remote DMA walks as `RemoteAddress.next` says: up to PSTOP × 256 (or 0x10000), then (from 0) up to
/// PSTOP, then the ring over and over. A transmit reads TBCR bytes from TPSR × 256 without wrapping (the
/// NE2000 aborts a frame that leaves SRAM); a receive stores into the ring. Stored inline (no allocation):
/// a model update must stay cheap.
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

    /// A remote DMA of `count` bytes from `start` in the ring PSTART..<PSTOP latched at its command; nil
    /// count: any number (the reduced model cannot read RBCR).
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

    /// A transmit of `count` bytes from page `transmitPage`; nil count: any length, i.e. up to the end of
    /// SRAM (a frame that would leave SRAM is aborted before a byte is read).
    init(transmitPage: UInt8, count: Int?) {
        let start = Int(transmitPage) * BufferMap.pageSize
        guard BufferMap.sram.contains(start) else { return }
        let end = count.map { start + $0 } ?? BufferMap.sram.upperBound
        guard end <= BufferMap.sram.upperBound else { return }
        append(start..<end)
    }

    /// A receive into the ring PSTART..<PSTOP: the device stores only into a ring inside SRAM, anywhere in it.
    init(ringStart: UInt8, ringStop: UInt8) {
        guard ringStart < ringStop else { return }
        append(Int(ringStart) * BufferMap.pageSize..<Int(ringStop) * BufferMap.pageSize)
    }
}
