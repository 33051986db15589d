/// A MAC address given on a command line as `52:54:00:12:34:56`.
public struct MACAddress: Sendable, Hashable {
    public let bytes: [UInt8]

    /// Nil unless `text` is six two-digit hex bytes separated by ':'.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let b = UInt8(part, radix: 16) else { return nil }
            bytes.append(b)
        }
        self.bytes = bytes
    }
}

extension MACAddress {
    /// `52:54:00:12:34:56`.
    public static func text(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}
