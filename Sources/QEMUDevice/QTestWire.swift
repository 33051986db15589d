import DeviceBus

/// QEMU's qtest protocol, the part a device backend needs: one text line per command, one reply line
/// (`OK`, `OK 0x…`, `FAIL …`), and, interleaved at any time, `IRQ raise N` / `IRQ lower N` for the
/// lines `irq_intercept_in` redirected. Pure: no I/O. Every line from QEMU is parsed, never trusted
/// (a reply that does not parse is an error, not a trap).
public enum QTestCommand: Equatable, Sendable {
    case read(port: UInt16, width: AccessWidth)
    case write(port: UInt16, width: AccessWidth, value: UInt32)
    /// Redirect the interrupt inputs of the device at QOM path `path` to this connection.
    case interceptInterrupts(path: String)

    public var line: String {
        switch self {
        case let .read(port, width): "in\(Self.suffix(width)) 0x\(String(port, radix: 16))"
        case let .write(port, width, value):
            "out\(Self.suffix(width)) 0x\(String(port, radix: 16)) 0x\(String(value & width.mask, radix: 16))"
        case let .interceptInterrupts(path): "irq_intercept_in \(path)"
        }
    }

    static func suffix(_ width: AccessWidth) -> String {
        switch width {
        case .byte: "b"
        case .word: "w"
        case .dword: "l"
        }
    }
}

public enum QTestMessage: Equatable, Sendable {
    /// The reply to a command; `value` for reads.
    case ok(value: UInt64?)
    case fail(String)
    /// An intercepted interrupt line changed level.
    case interrupt(line: Int, raised: Bool)

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unrecognized(String)
        public var description: String {
            switch self {
            case let .unrecognized(line): "unrecognized qtest line: \(line.prefix(80).debugDescription)"
            }
        }
    }

    public static func parse(_ line: String) throws(ParseError) -> QTestMessage {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        switch words.first {
        case "OK" where words.count == 1:
            return .ok(value: nil)
        case "OK" where words.count == 2:
            guard let value = parseHex(words[1]) else { throw .unrecognized(line) }
            return .ok(value: value)
        case "FAIL":
            return .fail(words.dropFirst().joined(separator: " "))
        case "IRQ" where words.count == 3 && (words[1] == "raise" || words[1] == "lower"):
            guard let number = Int(words[2]), number >= 0 else { throw .unrecognized(line) }
            return .interrupt(line: number, raised: words[1] == "raise")
        default:
            throw .unrecognized(line)
        }
    }

    static func parseHex(_ word: Substring) -> UInt64? {
        guard word.hasPrefix("0x") else { return nil }
        return UInt64(word.dropFirst(2), radix: 16)
    }
}

/// PCI configuration mechanism #1 (ports 0xCF8/0xCFC): how a qtest client, with no firmware in the
/// machine, finds and programs the device.
public enum PCIConfigCycle {
    public static let addressPort: UInt16 = 0xCF8
    public static let dataPort: UInt16 = 0xCFC

    /// The CONFIG_ADDRESS value for a dword-aligned `register` of bus 0, `slot`, `function`.
    public static func address(slot: Int, function: Int = 0, register: Int) -> UInt32 {
        0x8000_0000 | UInt32(slot & 0x1F) << 11 | UInt32(function & 0x7) << 8 | UInt32(register & 0xFC)
    }
}
