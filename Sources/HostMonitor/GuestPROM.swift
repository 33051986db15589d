import DeviceBus
import DeviceSharing
import DP8390

/// One guest's view of a shared NE2000 whose PROM holds another station address: the guest's remote
/// reads of the PROM are answered from its own PROM image, everything else goes to the device as it
/// is. A remote read is known to start in the PROM at its CR write (which every mode traps) from CRDA;
/// its data-port reads are then intercepted until it leaves the PROM (traps armed on demand, at probe
/// time only). The device still moves its remote DMA, so its CRDA, count and RDC stay true.
public final class GuestPROM: BusDevice {
    let device: BusDevice
    let image: [UInt8]
    private let window: RegisterWindow
    /// The PROM address the running remote read is at, while it reads the PROM.
    private var address: Int? {
        didSet { if oldValue != nil, address == nil { awaitingProbe = false } }
    }
    /// From a function reset until the guest's first PROM read has ended: what the driver's probe does.
    public private(set) var awaitingProbe = true

    /// Whether the last read was answered from the guest's image.
    private var answeredLastRead = false

    /// Whether `access`, a read this view has just served, was a PROM read answered from the guest's image
    /// (monitors see a read after the device returned it).
    public func answered(_ access: BusAccess) -> Bool { access.direction == .read && answeredLastRead }

    public init(device: BusDevice, mac: [UInt8]) {
        self.device = device
        image = StationPROM.image(mac: mac)
        window = RegisterWindow(device: device)
    }

    public var regionSizes: [UInt32: UInt32] { device.regionSizes }

    public func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 {
        let value = device.read(region: region, offset: offset, width: width)
        if region == 0, BAR0.decode(offset: offset, width: width) == .resetPort { address = nil }
        answeredLastRead = false
        guard let at = address, region == 0, BAR0.decode(offset: offset, width: width) == .dataPort else { return value }
        answeredLastRead = true
        let moved = RemoteAddress.bytesPerAccess(width, dataConfiguration: window.dataConfiguration())
        address = at + moved < BufferMap.prom.upperBound ? at + moved : nil
        return (0..<width.rawValue).reduce(UInt32(0)) { $0 | UInt32(image[(at + $1) % image.count]) << (8 * UInt32($1)) }
    }

    public func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        device.write(region: region, offset: offset, width: width, value: value)
        guard region == 0, BAR0.decode(offset: offset, width: width) == .register(CR.offset) else { return }
        let effect = CommandEffect(command: UInt8(truncatingIfNeeded: value), wasRunning: true)
        if effect.startsRemote == .remoteRead {
            let start = Int(window.currentRemoteAddress())
            address = BufferMap.prom.contains(start) ? start : nil
        } else if effect.endsRemote {
            address = nil
        }
    }

    public func reset() {
        address = nil
        awaitingProbe = true
        device.reset()
    }
}
