import DP8390

// The receive path: address filter, then the frame into the ring at CURR behind a 4-byte header.

extension NE2000 {
    /// The largest frame (without FCS) the 8390 driver accepts; longer ones it drops as length errors.
    static let maximumFrameLength = 1518
    /// Shorter frames are padded with zeros: the driver drops anything under 60 bytes.
    static let minimumFrameLength = 60

    /// False while a running receiver's ring lacks room for a maximum-sized frame, and, for an
    /// interrupt-driven driver, while the last received frame is still unacknowledged (ISR.PRX set).
    /// The second rule is the wire's flow control toward such a driver: Linux's 8390 driver takes at
    /// most 9 frames per interrupt and then clears PRX, so frames that landed while it was busy would
    /// wait, unannounced, in a ring too full for the frame that would announce them — a deadlock under
    /// back-pressure. One frame per PRX cannot strand any. It holds while the driver masks IMR for a
    /// moment (Linux does, around every transmit: a rule that followed IMR let frames pile up then and
    /// stalled a CI download). A driver that never enabled the receive interrupt since the last reset
    /// polls (iPXE's ns8390: IMR = 0, reads the ring by CURR and BNRY, never acknowledges PRX); there the
    /// ring's room alone paces the wire. A stopped receiver, monitor mode or an unusable ring says true:
    /// the frame will be discarded, as on hardware, and holding the peer back would not make room.
    public var canReceiveFrame: Bool {
        guard s.isRunning, s.receiveConfiguration & RCR.monitor == 0,
              let ring = s.receiveRing else { return true }
        let unacknowledged = receiveInterruptUsed && s.interruptStatus & ISR.packetReceived != 0
        return !unacknowledged && ring.fits(frameLength: NE2000.maximumFrameLength)
    }

    /// Delivers one frame from the wire (no FCS). Returns false when it was discarded (receiver stopped,
    /// monitor mode, unusable ring, longer than 1518 bytes, filtered out) or dropped for lack of room.
    @discardableResult
    public func receive(frame: [UInt8]) -> Bool {
        deliver(frame)
    }

    /// The receive path shared by the wire and loopback.
    @discardableResult
    func deliver(_ frame: [UInt8]) -> Bool {
        guard s.isRunning, frame.count <= NE2000.maximumFrameLength else {
            counters.framesDiscarded &+= 1
            return false
        }
        let padded = frame.count >= NE2000.minimumFrameLength
            ? frame
            : frame + [UInt8](repeating: 0, count: NE2000.minimumFrameLength - frame.count)
        guard accepts(destinationOf: padded) else {
            counters.framesDiscarded &+= 1
            return false
        }
        if s.receiveConfiguration & RCR.monitor != 0 {
            // Monitor mode checks and counts frames but buffers none.
            s.receiveStatus = RSR.missedPacket | RSR.disabled
            tallyMissedPacket()
            counters.framesDiscarded &+= 1
            return false
        }
        guard let ring = s.receiveRing else {
            counters.framesDiscarded &+= 1
            return false
        }
        guard ring.fits(frameLength: padded.count) else {
            // QEMU drops silently; the DP8390 counts a missed packet. Raising OVW instead would send the
            // driver through its stop/loopback/restart recovery for a frame the host could have held back.
            s.receiveStatus = RSR.missedPacket
            tallyMissedPacket()
            counters.framesDroppedNoRoom &+= 1
            return false
        }
        store(padded, in: ring)
        return true
    }

    /// Writes header and data at CURR, wrapping from PSTOP to PSTART, and advances CURR past the frame.
    private func store(_ frame: [UInt8], in ring: ReceiveRing) {
        let pageSize = BufferMap.pageSize
        let ringStart = ring.pageStart * pageSize - BufferMap.sram.lowerBound
        let ringEnd = ring.pageStop * pageSize - BufferMap.sram.lowerBound
        let headerOffset = ring.currentPage * pageSize - BufferMap.sram.lowerBound

        var nextPage = ring.currentPage + ReceiveRing.pagesNeeded(forFrameLength: frame.count)
        if nextPage >= ring.pageStop { nextPage -= ring.pageCount }
        // The count covers header and data: the driver takes pkt_len = count − 4.
        let count = frame.count + 4
        let status = RSR.receivedOK | (frame[0] & 0x01 != 0 ? RSR.multicast : 0)

        // The header starts a page, so it never wraps.
        s.sram[headerOffset] = status
        s.sram[headerOffset + 1] = UInt8(nextPage)
        s.sram[headerOffset + 2] = UInt8(truncatingIfNeeded: count)
        s.sram[headerOffset + 3] = UInt8(truncatingIfNeeded: count >> 8)

        let dataOffset = headerOffset + 4
        let firstPart = min(frame.count, ringEnd - dataOffset)
        s.sram.replaceSubrange(dataOffset..<dataOffset + firstPart, with: frame[0..<firstPart])
        let rest = frame.count - firstPart
        s.sram.replaceSubrange(ringStart..<ringStart + rest, with: frame[firstPart...])
        let endOffset = rest > 0 ? ringStart + rest : dataOffset + firstPart

        if let observer { report(to: observer, ringStart: ringStart, ringEnd: ringEnd, from: headerOffset, bytes: count) }
        s.localAddress = UInt16(endOffset + BufferMap.sram.lowerBound)
        s.currentPage = UInt8(nextPage)
        s.receiveStatus = status
        counters.framesReceived &+= 1
        raise(ISR.packetReceived)
    }

    /// Tells the observer each SRAM byte a stored frame (header and data) occupies, wrapping in the ring.
    private func report(to observer: BufferAccessObserver, ringStart: Int, ringEnd: Int, from offset: Int, bytes: Int) {
        var at = offset
        for _ in 0..<bytes {
            observer.moved(.receive, address: UInt16(at + BufferMap.sram.lowerBound))
            at += 1
            if at == ringEnd { at = ringStart }
        }
    }

    /// The DP8390 address filter on the (padded) frame's destination.
    private func accepts(destinationOf frame: [UInt8]) -> Bool {
        let rcr = s.receiveConfiguration
        if rcr & RCR.promiscuous != 0 { return true }
        if frame[0..<6].allSatisfy({ $0 == 0xFF }) {
            return rcr & RCR.acceptBroadcast != 0
        }
        if frame[0] & 0x01 != 0 {
            guard rcr & RCR.acceptMulticast != 0 else { return false }
            let index = NE2000.multicastHashIndex(frame[0..<6])
            return s.multicastFilter[index >> 3] & (1 << (index & 7)) != 0
        }
        return frame[0..<6].elementsEqual(s.physicalAddress)
    }

    /// The MAR bit a multicast address selects: the top 6 bits of the Ethernet CRC-32 of the address,
    /// computed most-significant-bit first without the final inversion (Linux's `ether_crc`).
    static func multicastHashIndex(_ address: ArraySlice<UInt8>) -> Int {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in address {
            var bits = byte
            for _ in 0..<8 {
                let feedback = (crc >> 31) ^ UInt32(bits & 1)
                crc <<= 1
                bits >>= 1
                if feedback != 0 { crc ^= 0x04C1_1DB7 }
            }
        }
        return Int(crc >> 26)
    }
}
