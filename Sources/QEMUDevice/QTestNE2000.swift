import DeviceBus

/// One qtest connection: a line out, a line back within the link's time bound.
public protocol QTestLink: AnyObject {
    func send(_ line: String) throws
    /// The next line from QEMU (without its newline); throws when none comes within the bound.
    func receiveLine() throws -> String
}

/// The device's network side, QEMU's `-netdev stream`: frames each way.
public protocol FrameLink: AnyObject {
    func send(_ frame: [UInt8]) throws
    /// Every whole frame QEMU has sent so far, without waiting.
    func receiveAvailable() throws -> [[UInt8]]
    /// Bytes sent that QEMU has not read yet.
    func unreadBytes() throws -> Int
}

/// Why the backend stopped serving: QEMU died, hung or answered nonsense. Accesses after it read all
/// ones and drop writes, as an absent device would.
public struct QTestFailure: Error, Equatable, CustomStringConvertible {
    public var what: String
    public var description: String { "QEMU's ne2k_pci over qtest: \(what)" }
}

/// QEMU's `ne2k_pci` as a `NetworkBusDevice`: every BAR access becomes a qtest port access in a
/// device-only QEMU (`-accel qtest`, no firmware), which the constructor finds on PCI bus 0 and
/// programs itself: BAR0 at `ioBase`, I/O decoding on, its INTA routed to `irq` and intercepted.
/// Transmitted frames are collected after each access (QEMU sends them before it answers the write).
public final class QTestNE2000: NetworkBusDevice {
    public let regionSizes: [UInt32: UInt32] = [0: 0x20]
    public private(set) var failure: QTestFailure?
    private let link: QTestLink
    private let frames: FrameLink
    private let interrupt: InterruptLine
    private let sink: FrameSink
    private let ioBase: UInt16
    private let irq: Int

    /// - Parameters: `slot`, the PCI slot QEMU was told (`-device ne2k_pci,addr=SLOT`).
    public init(link: QTestLink, frames: FrameLink, interrupt: InterruptLine, sink: @escaping FrameSink,
                slot: Int, ioBase: UInt16 = 0xC000, irq: Int = 11) throws {
        self.link = link
        self.frames = frames
        self.interrupt = interrupt
        self.sink = sink
        self.ioBase = ioBase
        self.irq = irq
        try configure(slot: slot)
        if let failure { throw failure }
    }

    /// The firmware's part: identify the function, place BAR0, enable I/O, route and intercept INTA.
    private func configure(slot: Int) throws {
        let id = configRead(slot: slot, register: 0)
        guard id == 0x8029_10EC else { throw QTestFailure(what: "slot \(slot) holds \(String(id, radix: 16)), not 10ec:8029") }
        configWrite(slot: slot, register: 0x10, value: UInt32(ioBase) | 1)
        configWrite(slot: slot, register: 0x04, value: 0x0001)
        // PIIX3 (slot 1) PIRQA–D route registers 0x60–0x63: every PIRQ to `irq`, so INTA reaches it whatever the swizzle.
        configWrite(slot: 1, register: 0x60, value: UInt32(irq) * 0x0101_0101)
        roundTrip(.interceptInterrupts(path: "ioapic"))
    }

    private func configRead(slot: Int, register: Int) -> UInt32 {
        roundTrip(.write(port: PCIConfigCycle.addressPort, width: .dword, value: PCIConfigCycle.address(slot: slot, register: register)))
        return roundTrip(.read(port: PCIConfigCycle.dataPort, width: .dword)).map { UInt32(truncatingIfNeeded: $0) } ?? 0xFFFF_FFFF
    }

    private func configWrite(slot: Int, register: Int, value: UInt32) {
        roundTrip(.write(port: PCIConfigCycle.addressPort, width: .dword, value: PCIConfigCycle.address(slot: slot, register: register)))
        roundTrip(.write(port: PCIConfigCycle.dataPort, width: .dword, value: value))
    }

    public func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
        guard region == 0, offset < 0x20 else { return width.mask }
        let value = roundTrip(.read(port: ioBase + UInt16(offset), width: width)).map { UInt32(truncatingIfNeeded: $0) & width.mask }
        collectTransmitted()
        return value ?? width.mask
    }

    public func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        guard region == 0, offset < 0x20 else { return }
        roundTrip(.write(port: ioBase + UInt16(offset), width: width, value: value))
        collectTransmitted()
    }

    /// A function reset: the NE2000's own reset port (QEMU's ne2k_pci has no FLR), read then written.
    public func reset() {
        let value = read(region: 0, offset: 0x1F, width: .byte)
        write(region: 0, offset: 0x1F, width: .byte, value: value)
    }

    /// QEMU's ne2k_pci keeps frames it cannot take in its own queue: the wire never waits here.
    public var canReceiveFrame: Bool { failure == nil }

    /// The shortest Ethernet frame without FCS: a wire never carries less.
    static let minimumFrameLength = 60

    /// Round trips a frame may wait for QEMU to read it; a frame still unread then is one QEMU's NIC cannot
    /// take now (its ring is full): it stays in the socket and QEMU takes it when the ring has room.
    static let roundTripsToRead = 50

    /// Sends the frame to QEMU and waits until it has been handled: qtest round trips (each lets QEMU's
    /// main loop run) until QEMU has read the frame off the socket, then one more, because QEMU handles
    /// the frame and a qtest command of the same loop iteration in either order. A short frame is padded
    /// with zeros first, as the wire would: QEMU's ne2k_pci leaves that to its netdev (tap pads, `-netdev
    /// stream` does not), and a 42-byte ARP reply stored as it came is a length error to Linux's driver.
    /// Returns whether the link took it.
    @discardableResult
    public func receive(frame: [UInt8]) -> Bool {
        guard failure == nil else { return false }
        let padding = max(0, Self.minimumFrameLength - frame.count)
        do {
            try frames.send(frame + [UInt8](repeating: 0, count: padding))
            var trips = 0
            while try frames.unreadBytes() > 0, trips < Self.roundTripsToRead, failure == nil {
                roundTrip(.read(port: 0x80, width: .byte))
                trips += 1
            }
        } catch {
            fail("sending a frame: \(error)")
            return false
        }
        roundTrip(.read(port: 0x80, width: .byte))
        collectTransmitted()
        return failure == nil
    }

    /// One command and its reply's value (nil for replies without one, and after a failure);
    /// interrupt messages before the reply set the line.
    @discardableResult
    private func roundTrip(_ command: QTestCommand) -> UInt64? {
        guard failure == nil else { return nil }
        do {
            try link.send(command.line)
            while true {
                switch try QTestMessage.parse(link.receiveLine()) {
                case let .ok(value): return value
                case let .fail(reason): fail("QEMU refused `\(command.line)`: \(reason)"); return nil
                case let .interrupt(line, raised): if line == irq { interrupt.set(raised) }
                }
            }
        } catch {
            fail("`\(command.line)`: \(error)")
            return nil
        }
    }

    private func collectTransmitted() {
        guard failure == nil else { return }
        do {
            for frame in try frames.receiveAvailable() { sink(frame) }
        } catch {
            fail("reading transmitted frames: \(error)")
        }
    }

    /// Records the first failure and drops the interrupt line: an absent device asserts nothing.
    private func fail(_ what: String) {
        guard failure == nil else { return }
        failure = QTestFailure(what: what)
        interrupt.set(false)
    }
}
