import Foundation
import Supervision

/// The files the peer's HTTP server serves: deterministic pseudo-random bytes (the same size always gives
/// the same file), with their SHA-256 computed on the host.
public enum ServedFiles {
    public static let defaultSize = 1 << 20

    /// `download-<size>.bin`.
    public static func name(size: Int) -> String { "download-\(size).bin" }

    /// Parses "1M", "512K", "1048576" (K and M are binary: 1024, 1024²).
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let last = trimmed.last else { return nil }
        let multipliers: [Character: Int] = ["K": 1 << 10, "k": 1 << 10, "M": 1 << 20, "m": 1 << 20, "G": 1 << 30, "g": 1 << 30]
        let (digits, multiplier) = multipliers[last].map { (trimmed.dropLast(), $0) } ?? (Substring(trimmed), 1)
        guard let value = Int(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    /// `size` pseudo-random bytes (splitmix64 seeded from the size).
    public static func contents(size: Int) -> Data {
        var state = 0x5650_494f_0000_0000 ^ UInt64(size)  // "VPIO"
        var data = Data(count: size)
        data.withUnsafeMutableBytes { (buffer: UnsafeMutableRawBufferPointer) in
            var offset = 0
            while offset < size {
                state &+= 0x9e37_79b9_7f4a_7c15
                var z = state
                z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
                z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
                z ^= z >> 31
                for shift in stride(from: 0, to: 64, by: 8) where offset < size {
                    buffer[offset] = UInt8(truncatingIfNeeded: z >> UInt64(shift))
                    offset += 1
                }
            }
        }
        return data
    }

    /// The SHA-256 recorded for a served file (the `.sha256` file beside it).
    public static func checksum(layout: CacheLayout, size: Int) throws -> String {
        let text = try String(contentsOf: layout.servedChecksum(size: size), encoding: .utf8)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Provisioner {
    /// Writes the served files of these sizes that are missing (cheap, deterministic; no other step).
    public func ensureServedFiles(sizes: [Int]) throws {
        try FileManager.default.createDirectory(at: layout.stamps, withIntermediateDirectories: true)
        for size in Set(sizes).sorted() { try ensureServedFile(size: size) }
    }

    /// Step f: `download-<size>.bin` and its SHA-256 (`sha256sum`) in `www/`.
    func ensureServedFile(size: Int) throws {
        let file = layout.servedFile(size: size)
        let sumFile = layout.servedChecksum(size: size)
        try stampedStep("served-\(size)", title: "served file: \(file.lastPathComponent)", fingerprint: "splitmix64-v1 \(size)",
                        outputs: [file, sumFile]) {
            try FileManager.default.createDirectory(at: layout.servedDirectory, withIntermediateDirectories: true)
            try ServedFiles.contents(size: size).write(to: file, options: .atomic)
            let output = try Command.run(["sha256sum", file.path], step: "served file: sha256sum")
            guard let sum = output.split(separator: " ").first, sum.count == 64 else {
                throw StepError(step: "served file: sha256sum", reason: "unexpected output: \(output)")
            }
            try Data("\(sum)\n".utf8).write(to: sumFile, options: .atomic)
        }
    }
}
