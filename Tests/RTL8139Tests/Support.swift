import DeviceBus
@testable import RTL8139

/// Guest RAM of `size` bytes at `base`; anything else is not memory. Counts every refused access.
final class FakeMemory: WritableGuestMemory {
    let base: UInt64
    var bytes: [UInt8]
    var refused = 0

    init(base: UInt64 = 0x10_0000, size: Int = 1 << 20) {
        self.base = base
        bytes = [UInt8](repeating: 0, count: size)
    }

    private func range(_ address: UInt64, _ count: Int) -> Range<Int>? {
        guard count >= 0, address >= base else { return nil }
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow, end <= base + UInt64(bytes.count) else { return nil }
        return Int(address - base)..<Int(end - base)
    }

    func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        guard let r = range(guestAddress, count) else { refused += 1; return nil }
        return Array(bytes[r])
    }

    func write(guestAddress: UInt64, bytes new: [UInt8]) -> Bool {
        guard let r = range(guestAddress, new.count) else { refused += 1; return false }
        bytes.replaceSubrange(r, with: new)
        return true
    }

    subscript(address: UInt64, count: Int) -> [UInt8] { Array(bytes[Int(address - base)..<Int(address - base) + count]) }
}

/// A NIC on fake memory with its line and wire captured, and the driver's register idioms.
final class Rig {
    let memory = FakeMemory()
    let line = InterruptLine()
    var sent: [[UInt8]] = []
    lazy var nic = RTL8139(mac: Self.mac, memory: memory, interrupt: line, transmit: { [unowned self] in self.sent.append($0) })
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x81, 0x39, 0x01]

    func r8(_ offset: UInt64) -> UInt8 { UInt8(nic.read(region: 0, offset: offset, width: .byte)) }
    func r16(_ offset: UInt64) -> UInt16 { UInt16(nic.read(region: 0, offset: offset, width: .word)) }
    func r32(_ offset: UInt64) -> UInt32 { nic.read(region: 0, offset: offset, width: .dword) }
    func w8(_ offset: UInt64, _ v: UInt8) { nic.write(region: 0, offset: offset, width: .byte, value: UInt32(v)) }
    func w16(_ offset: UInt64, _ v: UInt16) { nic.write(region: 0, offset: offset, width: .word, value: UInt32(v)) }
    func w32(_ offset: UInt64, _ v: UInt32) { nic.write(region: 0, offset: offset, width: .dword, value: v) }

    /// 8139too's hw_start: reset, enable, ring at `ring`, accept broadcast and our address.
    func start(ring: UInt64, rcr extra: UInt32 = 0) {
        w8(RTL8139Register.cr, RTL8139Command.reset)
        w8(RTL8139Register.cr, RTL8139Command.receiveEnable | RTL8139Command.transmitEnable)
        w32(RTL8139Register.rcr, RTL8139ReceiveConfig.acceptPhysical | RTL8139ReceiveConfig.acceptBroadcast | extra)
        w32(RTL8139Register.rbstart, UInt32(ring))
        w16(RTL8139Register.imr, 0xFFFF)
    }

    /// 8139too's rx loop: each packet at CAPR + 16, then CAPR moved past it; returns the frames.
    func drain(ring: UInt64, length: Int = 8192) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while r8(RTL8139Register.cr) & RTL8139Command.bufferEmpty == 0 {
            let offset = Int(r16(RTL8139Register.capr) &+ 16) % length
            let header = memory[ring + UInt64(offset), 4]
            let size = Int(header[2]) | Int(header[3]) << 8
            frames.append(memory[ring + UInt64(offset) + 4, size - 4])
            let next = (offset + size + 4 + 3) & ~3
            w16(RTL8139Register.capr, UInt16(truncatingIfNeeded: next - 16))
        }
        return frames
    }

    static func frame(to destination: [UInt8] = mac, size: Int = 60, fill: UInt8 = 0xA5) -> [UInt8] {
        destination + [2, 0, 0, 0, 0, 9] + [0x08, 0x00] + [UInt8](repeating: fill, count: max(0, size - 14))
    }
}
