import DeviceBus

extension RTL8139 {
    /// The ring space one packet of the largest frame takes (header, frame, CRC, alignment).
    public static let largestPacket = RTL8139.packetLength(frame: 1514)

    /// Header (4), the frame, its CRC (4), rounded up to 4 bytes: how far CBR moves.
    static func packetLength(frame: Int) -> Int { (4 + frame + 4 + 3) & ~3 }

    /// Room for a largest frame, or the receiver is off (frames are then dropped, as on the wire), or
    /// the driver has the overflow interrupt enabled: then a frame that finds the ring full is dropped
    /// with RxOverflow raised, as on a real wire. Without that a full ring would deadlock 8139too: its
    /// receive loop acknowledges RxOK after each packet, so packets left in the ring when it stops at its
    /// NAPI budget have no RxOK; the next poll sees none and re-enables interrupts, and with back-pressure
    /// no frame would arrive to raise one (measured: the guest stalled with 21 packets in a full ring).
    public var canReceiveFrame: Bool {
        !s.receiveEnabled || s.ringLength - s.ringUsed > Self.largestPacket || s.imr & RTL8139Interrupt.receiveOverflow != 0
    }

    /// A frame from the wire: filtered by RCR, then written at RBSTART + CBR with its header and CRC.
    @discardableResult
    public func receive(frame: [UInt8]) -> Bool {
        defer { updateInterruptLine() }
        // Longer than Ethernet allows (the chip would flag it too long): dropped, never stored.
        guard s.receiveEnabled, frame.count <= 1514, let match = addressMatch(frame) else {
            counters.framesDropped += 1
            return false
        }
        let padded = frame.count < 60 ? frame + [UInt8](repeating: 0, count: 60 - frame.count) : frame
        let length = Self.packetLength(frame: padded.count)
        // Never onto the packet the driver reads next: the used part plus this one must stay short of the ring.
        guard s.ringLength - s.ringUsed > length else {
            counters.framesDropped += 1
            s.missedPackets &+= 1
            s.isr |= RTL8139Interrupt.receiveOverflow
            return false
        }
        let packet = Self.header(status: RTL8139ReceiveStatus.ok | match, length: padded.count + 4) + padded
            + Self.littleEndian(EthernetCRC.checksum(padded))
        guard writeToRing(packet + [UInt8](repeating: 0, count: length - packet.count)) else {
            counters.receivesRefused += 1
            counters.framesDropped += 1
            s.isr |= RTL8139Interrupt.receiveError
            return false
        }
        s.cbr = UInt16((Int(s.cbr) + length) % s.ringLength)
        counters.framesReceived += 1
        s.isr |= RTL8139Interrupt.receiveOK
        return true
    }

    /// Writes `packet` at CBR: contiguous past the ring's end with WRAP set (the driver keeps room
    /// there), else the rest from the ring's start. Both pieces must be in guest memory before
    /// either is written.
    private func writeToRing(_ packet: [UInt8]) -> Bool {
        let start = UInt64(s.rbstart) + UInt64(s.cbr)
        let room = s.ringLength - Int(s.cbr)
        guard s.rcr & RTL8139ReceiveConfig.noWrap == 0, packet.count > room else {
            return memory.write(guestAddress: start, bytes: packet)
        }
        let head = Array(packet[..<room]), tail = Array(packet[room...])
        guard memory.read(guestAddress: UInt64(s.rbstart), count: tail.count) != nil,
              memory.read(guestAddress: start, count: head.count) != nil else { return false }
        return memory.write(guestAddress: start, bytes: head) && memory.write(guestAddress: UInt64(s.rbstart), bytes: tail)
    }

    /// The RCR filter's verdict: the header's match bits, or nil when the frame is not for us.
    private func addressMatch(_ frame: [UInt8]) -> UInt16? {
        guard frame.count >= 14 else { return nil }
        let destination = Array(frame[0..<6])
        let accept = s.rcr
        if destination == [UInt8](repeating: 0xFF, count: 6) {
            return accept & (RTL8139ReceiveConfig.acceptBroadcast | RTL8139ReceiveConfig.acceptAll) != 0 ? RTL8139ReceiveStatus.broadcast : nil
        }
        if destination[0] & 1 == 1 {
            let bit = EthernetCRC.multicastHashBit(destination)
            let hashed = s.mar[bit / 8] & (1 << UInt8(bit % 8)) != 0
            return accept & RTL8139ReceiveConfig.acceptAll != 0 || (accept & RTL8139ReceiveConfig.acceptMulticast != 0 && hashed)
                ? RTL8139ReceiveStatus.multicast : nil
        }
        let ours = destination == s.idr && accept & RTL8139ReceiveConfig.acceptPhysical != 0
        return ours || accept & RTL8139ReceiveConfig.acceptAll != 0 ? RTL8139ReceiveStatus.physical : nil
    }

    static func header(status: UInt16, length: Int) -> [UInt8] {
        littleEndian16(status) + littleEndian16(UInt16(length))
    }

    static func littleEndian16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    static func littleEndian(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}

/// IEEE 802.3 CRC-32 (reflected, polynomial 0xEDB88320): the frame check sequence, and the multicast
/// filter's hash.
enum EthernetCRC {
    /// The CRC register after `bytes` (initial all ones, no final inversion).
    static func register(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return crc
    }

    /// The FCS, least significant byte first on the wire.
    static func checksum(_ bytes: [UInt8]) -> UInt32 { ~register(bytes) }

    /// The MAR bit a multicast address selects: the top 6 bits of the bit-reversed register, the
    /// big-endian CRC the chip computes (Linux's `ether_crc(6, addr) >> 26`).
    static func multicastHashBit(_ address: [UInt8]) -> Int {
        var reversed: UInt32 = 0, crc = register(address)
        for _ in 0..<32 { reversed = reversed << 1 | crc & 1; crc >>= 1 }
        return Int(reversed >> 26)
    }
}
