import VPIOSystem

/// Turns the device's level-triggered INTx line into eventfd signals the way vfio-pci does:
/// a signal masks the line (automasked) until the client unmasks it; an unmask while the line is
/// still high signals again. QEMU unmasks after the guest's next BAR access (its EOI path).
public final class INTxRouter {
    private var trigger: EventFD?
    public private(set) var masked = false
    public private(set) var level = false
    /// Set from the PCI command register's Interrupt Disable bit.
    public var disabled = false {
        didSet { deliverIfDue() }
    }
    public private(set) var signalsSent = 0
    /// Failed eventfd writes (the client closed its end); counted, never fatal.
    public private(set) var signalFailures = 0

    public init() {}

    /// Installs or removes (nil) the client's trigger eventfd.
    public func setTrigger(_ eventfd: EventFD?) {
        trigger = eventfd
        masked = false
        deliverIfDue()
    }

    public func lineChanged(_ asserted: Bool) {
        level = asserted
        deliverIfDue()
    }

    public func mask() { masked = true }

    public func unmask() {
        masked = false
        deliverIfDue()
    }

    /// A client-requested loopback trigger (SET_IRQS with DATA_NONE/BOOL): signal regardless of level.
    public func signalOnce() {
        guard !disabled, trigger != nil else { return }
        masked = true
        send()
    }

    private func deliverIfDue() {
        guard level, !masked, !disabled, trigger != nil else { return }
        masked = true
        send()
    }

    private func send() {
        guard let trigger else { return }
        do {
            try trigger.signal()
            signalsSent += 1
        } catch {
            signalFailures += 1
        }
    }
}
