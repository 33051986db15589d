import CVPIOAgentShim
import Glibc
import VPIOProtocol

/// The VPIO vendor capability in the NIC's config space, through sysfs (`<device>/config`).
public struct CapabilityPort {
    public let configPath: String
    public let offset: Int

    /// Finds the capability, or nil when the host does not offer it.
    public static func locate(device: PCIDevice) throws -> CapabilityPort? {
        let path = device.directory + "/config"
        let config: [UInt8]
        do {
            config = try AgentFile(path).readAll(limit: 256)
        } catch {
            throw AgentError("cannot read \(path): \(error)")
        }
        guard config.count >= 0x40 else { throw AgentError("\(path) has \(config.count) bytes, less than a config header") }
        guard let offset = PCICapabilities.vpioCapability(in: config) else { return nil }
        return CapabilityPort(configPath: path, offset: offset)
    }

    func write(_ bytes: [UInt8], at field: Int) throws {
        let written: Int
        do {
            written = try AgentFile(configPath, writable: true).write(bytes, at: offset + field)
        } catch {
            throw AgentError("write to \(configPath)+\(offset + field) failed: \(error)")
        }
        guard written == bytes.count else { throw AgentError("short write to \(configPath)+\(offset + field): \(written) of \(bytes.count) bytes") }
    }

    func read32(at field: Int) throws -> UInt32 {
        let bytes: [UInt8]
        do {
            bytes = try AgentFile(configPath).read(count: 4, at: offset + field)
        } catch {
            throw AgentError("read of \(configPath)+\(offset + field) failed: \(error)")
        }
        guard bytes.count == 4 else { throw AgentError("short read of \(configPath)+\(offset + field): \(bytes.count) of 4 bytes") }
        return Self.le32(bytes)
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    static func le32(_ bytes: [UInt8]) -> UInt32 { bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) } }

    /// Status and last error, as the host reports them.
    public struct Status: Sendable, CustomStringConvertible {
        public var status: UInt32
        public var lastError: UInt32
        public var violations: UInt32
        public var registered: Bool { status & UInt32(VPIO_STATUS_REGISTERED) != 0 }
        public var rejected: Bool { status & UInt32(VPIO_STATUS_REJECTED) != 0 }
        public var mode: UInt32 { (status >> UInt32(VPIO_STATUS_MODE_SHIFT)) & 0xf }
        public var description: String {
            let errors = ["none", "page count", "page address", "bad header"]
            let error = Int(lastError) < errors.count ? errors[Int(lastError)] : "\(lastError)"
            return "status=0x\(String(status, radix: 16)) (\(registered ? "registered" : rejected ? "rejected" : "not registered"), mode \(mode)) last_error=\(lastError) (\(error)) violations=\(violations)"
        }
    }

    public func status() throws -> Status {
        Status(status: try read32(at: VPIOCapability.Field.status), lastError: try read32(at: VPIOCapability.Field.lastError),
               violations: try read32(at: VPIOCapability.Field.violations))
    }

    /// Writes the page addresses (two dwords each), page_count, then the command last.
    public func register(pages: [UInt64]) throws -> Status {
        guard pages.count <= Int(VPIO_CAP_MAX_PAGES) else { throw AgentError("\(pages.count) ring pages, the capability holds \(VPIO_CAP_MAX_PAGES)") }
        for (i, page) in pages.enumerated() {
            try write(Self.le32(UInt32(truncatingIfNeeded: page)), at: VPIOCapability.Field.pages + 8 * i)
            try write(Self.le32(UInt32(truncatingIfNeeded: page >> 32)), at: VPIOCapability.Field.pages + 8 * i + 4)
        }
        try write(Self.le32(UInt32(pages.count)), at: VPIOCapability.Field.pageCount)
        try write(Self.le32(UInt32(VPIO_CMD_REGISTER)), at: VPIOCapability.Field.command)
        return try waitHandled()
    }

    public func unregister() throws -> Status {
        try write(Self.le32(UInt32(VPIO_CMD_UNREGISTER)), at: VPIOCapability.Field.command)
        return try waitHandled()
    }

    /// Config writes are trapped and handled synchronously by the host; poll briefly for `command` to read 0.
    func waitHandled() throws -> Status {
        for _ in 0..<50 {
            if try read32(at: VPIOCapability.Field.command) == 0 { break }
            usleep(10_000)
        }
        return try status()
    }
}
