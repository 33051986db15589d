import CVPIOAgentShim
import VPIOProtocol

/// Walks a PCI capability list in a copy of config space (pure; for tests and the agent).
public enum PCICapabilities {
    /// The offsets of every capability with `id`, following the list from 0x34. Stops on a loop, a
    /// pointer below 0x40 or outside the bytes given.
    public static func offsets(of id: UInt8, in config: [UInt8]) -> [Int] {
        guard config.count >= 0x40 else { return [] }
        let status = UInt16(config[0x06]) | UInt16(config[0x07]) << 8
        guard status & 0x10 != 0 else { return [] } // Capabilities List bit
        var found: [Int] = []
        var seen = Set<Int>()
        var pointer = Int(config[0x34] & 0xfc)
        while pointer >= 0x40, pointer + 1 < config.count, seen.insert(pointer).inserted {
            if config[pointer] == id { found.append(pointer) }
            pointer = Int(config[pointer + 1] & 0xfc)
        }
        return found
    }

    /// Lengths of the VPIO capability: version 2's, and version 1's, which ended where `anomalies`
    /// begins. The agent reads nothing past `last_error`, so a host of either version serves it.
    static let vpioLengths: Set<Int> = [VPIOCapability.length, VPIOCapability.Field.anomalies]

    /// The VPIO vendor capability: ID 0x09 with a VPIO length byte.
    public static func vpioCapability(in config: [UInt8]) -> Int? {
        offsets(of: UInt8(VPIO_CAP_ID), in: config).first { offset in
            offset + 2 < config.count && vpioLengths.contains(Int(config[offset + 2]))
        }
    }
}

/// A PCI function as sysfs shows it.
public struct PCIDevice: Sendable, Equatable {
    public var address: String   // 0000:00:03.0
    public var directory: String // /sys/bus/pci/devices/<address>
    public var ioBase: UInt16
    public var ioSize: UInt16

    /// The first function with `vendor`:`device` under `root` whose BAR0 is an I/O port range.
    public static func find(vendor: UInt16, device: UInt16, root: String = "/sys/bus/pci/devices") -> PCIDevice? {
        for name in listDirectory(root).sorted() {
            let directory = root + "/" + name
            guard let v = readFile(directory + "/vendor").flatMap(parseHex16), v == vendor,
                  let d = readFile(directory + "/device").flatMap(parseHex16), d == device,
                  let resource = readFile(directory + "/resource"),
                  let bar = ioBAR0(fromResource: resource)
            else { continue }
            return PCIDevice(address: name, directory: directory, ioBase: bar.base, ioSize: bar.size)
        }
        return nil
    }

    /// BAR0 from a sysfs `resource` file ("0x… 0x… 0x…" per line: start end flags), when it is I/O space.
    public static func ioBAR0(fromResource text: String) -> (base: UInt16, size: UInt16)? {
        guard let line = text.split(separator: "\n").first else { return nil }
        let fields: [UInt64] = line.split(separator: " ").compactMap { parseHex(String($0)) }
        guard fields.count >= 3, fields[2] & 0x100 != 0 /* IORESOURCE_IO */, fields[1] >= fields[0], fields[0] <= 0xffff else { return nil }
        return (UInt16(fields[0]), UInt16(truncatingIfNeeded: fields[1] - fields[0] + 1))
    }

    static func parseHex(_ text: String) -> UInt64? {
        var t = Substring(text.filter { !$0.isWhitespace })
        if t.hasPrefix("0x") { t = t.dropFirst(2) }
        return UInt64(t, radix: 16)
    }

    static func parseHex16(_ text: String) -> UInt16? {
        let value: UInt64? = parseHex(text)
        return value.flatMap { UInt16(exactly: $0) }
    }
}

/// A whole small file as text, or nil if it cannot be read.
public func readFile(_ path: String, limit: Int = 1 << 20) -> String? {
    guard let bytes = try? AgentFile(path).readAll(limit: limit) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}
