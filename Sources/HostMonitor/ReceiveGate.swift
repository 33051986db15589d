import DeviceBus
import DeviceSharing
import Enforcement
import NE2000Model

/// Stands between the wire and the NIC: each frame is judged before the device stores it into its ring
/// (the receive DMA), from PSTART and PSTOP as the device's readable registers show them at that moment.
/// A refused frame is not delivered; the peer's back-pressure is the NIC's own. `arrivals` hears each
/// delivered frame before the NIC does (the trace records it there).
public final class ReceiveGate: NetworkBusDevice {
    let nic: NetworkBusDevice
    let enforcer: Enforcer
    let reduced: ReducedModel
    private let window: RegisterWindow
    private let arrivals: FrameArrivalObserver?

    public init(nic: NetworkBusDevice, enforcer: Enforcer, grant: BufferGrant = .wholeDevice, arrivals: FrameArrivalObserver? = nil) {
        self.nic = nic
        self.enforcer = enforcer
        self.arrivals = arrivals
        self.reduced = ReducedModel(grant: grant)
        self.window = RegisterWindow(device: nic)
    }

    public var regionSizes: [UInt32: UInt32] { nic.regionSizes }
    public func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 { nic.read(region: region, offset: offset, width: width) }
    public func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        nic.write(region: region, offset: offset, width: width, value: value)
    }
    public func reset() { nic.reset() }
    public var canReceiveFrame: Bool { nic.canReceiveFrame }

    @discardableResult
    public func receive(frame: [UInt8]) -> Bool {
        let ring = window.receiveRing()
        guard enforcer.judgeReceive(reduced.decideReceive(pstart: ring.pstart, pstop: ring.pstop, curr: ring.curr)) else {
            return false
        }
        arrivals?.frameArrived(frame)
        return nic.receive(frame: frame)
    }
}
