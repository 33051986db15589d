// libFuzzer target: the NE2000 behind its bus interface, driven by arbitrary bytes as a root guest and
// the wire would drive it — every offset and width, reads and writes, resets, frames of any length.
// Nothing the guest or the wire does may trap; every buffer byte a DMA moves must be a real address.
// Built with the DeviceBus, DP8390 and NE2000 sources in one module by fuzz/run.

private final class Moved: BufferAccessObserver {
    var count = 0
    func moved(_ kind: DMAKind, address: UInt16) { count &+= 1 }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // SAFETY: libFuzzer hands `size` readable bytes at `data` for the duration of the call.
    var input = Array(UnsafeBufferPointer(start: data, count: size))[...]
    let nic = NE2000(mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56], interrupt: InterruptLine(), transmit: { _ in }, observer: Moved())
    while let op = input.popFirst() {
        let widths: [AccessWidth] = [.byte, .word, .dword]
        let width = widths[Int(op >> 6) % 3]
        let offset = UInt64(op & 0x1F)
        let value = (0..<4).reduce(UInt32(0)) { v, i in v | UInt32(input.popFirst() ?? 0) << (8 * UInt32(i)) }
        switch op & 0x20 == 0 ? value % 8 : 8 {
        case 0...5: nic.write(region: 0, offset: offset, width: width, value: value)
        case 6: _ = nic.read(region: 0, offset: offset, width: width)
        case 7: nic.receive(frame: Array(input.prefix(Int(value % 1600))))
        default: _ = nic.read(region: UInt32(value % 3), offset: UInt64(value), width: width)
        }
    }
    return 0
}
