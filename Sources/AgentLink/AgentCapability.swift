import DeviceBus
import VFIOUserServer
import VPIOProtocol

/// The vendor capability in the NIC's config space, as the host serves it: the guest writes page
/// addresses and a command; the host validates them through the `AgentChannel` and answers in the
/// read-only status words.
public final class AgentCapability {
    public let channel: AgentChannel
    /// Unowned: the endpoint owns its config space and, through its hooks, this capability; a strong
    /// reference back made a cycle that kept every device graph alive (LeakSanitizer).
    unowned let endpoint: PCIEndpoint
    /// The last command's outcome (registered or rejected). The fallback bit is kept apart: it is the
    /// enforcer's state, which a guest's register or unregister command must not clear.
    private var registration = VPIOCapability.Status()
    private var fallback = false
    private var mode: UInt32 = 0
    private var violations: UInt32 = 0
    private var anomalies: UInt32 = 0
    /// Called after a registration was accepted, with the header read then.
    public var onRegistered: ((RingHeader) -> Void)?

    static let base = VPIOCapability.offset

    /// Adds the capability to `endpoint`'s config space; the guest may write command, page count
    /// and pages, nothing else.
    public init(endpoint: PCIEndpoint, channel: AgentChannel) {
        self.endpoint = endpoint
        self.channel = channel
        endpoint.updateConfig { config in
            config.addCapability(id: VPIOCapability.id, at: Self.base, length: VPIOCapability.length,
                                 writable: VPIOCapability.Field.command..<VPIOCapability.Field.violations)
            config.store(offset: Self.base + 3, data: [VPIOCapability.version])
        }
    }

    /// The mode the host enforces, shown to the agent in status bits 8–11.
    public func setEnforcedMode(_ value: UInt32) {
        mode = value & 0xF
        publish(lastError: nil)
    }

    public func recordViolation() {
        violations &+= 1
        publish(lastError: nil)
    }

    /// Counts a device access that is hostile but harmless, so it was served rather than denied
    /// (a data-port access outside a remote DMA, a remote DMA outside SRAM that touched nothing a
    /// guest owns, a wide access across register blocks): the guest sees it in `anomalies`.
    public func recordAnomaly() {
        anomalies &+= 1
        publish(lastError: nil)
    }

    /// Handles a guest config write; only a write touching the command word does anything.
    public func configWritten(offset: Int, count: Int, memory: GuestMemory?) {
        let command = Self.base + VPIOCapability.Field.command
        guard offset < command + 4, command < offset + count else { return }
        let config = endpoint.config
        let value = u32(config.load(offset: command, count: 4))
        switch VPIOCapability.Command(rawValue: value) {
        case .register?:
            let count = Int(u32(config.load(offset: Self.base + VPIOCapability.Field.pageCount, count: 4)))
            let pages = (0..<min(count, VPIOCapability.maxPages)).map {
                u64(config.load(offset: Self.base + VPIOCapability.Field.pages + 8 * $0, count: 8))
            }
            // Without a DMA map there is no guest RAM to hold a ring: every page is "outside".
            let error = channel.register(pages: count <= VPIOCapability.maxPages ? pages : [], memory: memory ?? NoMemory())
            registration = channel.isRegistered ? [.registered] : []
            if error != .none { registration.insert(.rejected) }
            publish(lastError: error)
            if error == .none, let header = channel.headerAtRegistration { onRegistered?(header) }
        case .unregister?:
            channel.unregister()
            registration = []
            publish(lastError: VPIOCapability.RegistrationError.none)
        case nil:
            break
        }
        endpoint.updateConfig { $0.store(offset: command, data: [0, 0, 0, 0]) }
    }

    /// Marks that the host enforces a heavier mode than configured (the enforcer's fallback).
    public func setFallback(_ on: Bool) {
        fallback = on
        publish(lastError: nil)
    }

    private func publish(lastError: VPIOCapability.RegistrationError?) {
        let flags = fallback ? registration.union(.fallback) : registration
        let word = flags.rawValue | mode << VPIOCapability.Status.modeShift
        endpoint.updateConfig { config in
            config.store(offset: Self.base + VPIOCapability.Field.status, data: bytes32(word))
            config.store(offset: Self.base + VPIOCapability.Field.violations, data: bytes32(violations))
            config.store(offset: Self.base + VPIOCapability.Field.anomalies, data: bytes32(anomalies))
            if let lastError {
                config.store(offset: Self.base + VPIOCapability.Field.lastError, data: bytes32(lastError.rawValue))
            }
        }
    }
}

private final class NoMemory: GuestMemory {
    func read(guestAddress: UInt64, count: Int) -> [UInt8]? { nil }
}

private func u32(_ b: [UInt8]) -> UInt32 { b.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) } }
private func u64(_ b: [UInt8]) -> UInt64 { b.enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) } }
private func bytes32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
