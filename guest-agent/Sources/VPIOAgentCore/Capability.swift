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
        guard let config = readBytes(path, limit: 256), config.count >= 0x40 else {
            throw AgentError("cannot read \(path): \(errnoText(errno))")
        }
        guard let offset = PCICapabilities.vpioCapability(in: config) else { return nil }
        return CapabilityPort(configPath: path, offset: offset)
    }

    func write(_ bytes: [UInt8], at field: Int) throws {
        let fd = open(configPath, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError("cannot open \(configPath) for writing: \(errnoText(errno))") }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset + field)) }
        guard n == bytes.count else { throw AgentError("write to \(configPath)+\(offset + field) failed: \(errnoText(errno))") }
    }

    func read32(at field: Int) throws -> UInt32 {
        let fd = open(configPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentError("cannot open \(configPath): \(errnoText(errno))") }
        defer { close(fd) }
        var value: UInt32 = 0
        let n = pread(fd, &value, 4, off_t(offset + field))
        guard n == 4 else { throw AgentError("read of \(configPath)+\(offset + field) failed: \(errnoText(errno))") }
        return UInt32(littleEndian: value)
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

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
