import CVPIOAgentShim
import Glibc

/// A kernel module file's ELF bytes: read whole and, when it is compressed (`.ko.xz`, `.ko.zst`,
/// `.ko.gz`), decompressed in memory with liblzma, libzstd or zlib. The format is the one the file's
/// magic says, not its name, as kmod does.
public enum ModuleImage {
    public enum Compression: String, Sendable, CaseIterable {
        case none, xz, zstd, gzip

        /// The format whose magic `prefix` starts with (`none` for anything else, ELF included).
        public static func detect(_ prefix: some Collection<UInt8>) -> Compression {
            let head = Array(prefix.prefix(6))
            if head == [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00] { return .xz }
            if head.prefix(4) == [0x28, 0xB5, 0x2F, 0xFD] { return .zstd }
            if head.prefix(2) == [0x1F, 0x8B] { return .gzip }
            return .none
        }

        var shimFormat: Int32 {
            switch self {
            case .none: 0
            case .xz: Int32(VPIO_COMPRESSION_XZ.rawValue)
            case .zstd: Int32(VPIO_COMPRESSION_ZSTD.rawValue)
            case .gzip: Int32(VPIO_COMPRESSION_GZIP.rawValue)
            }
        }
    }

    /// Bounds on what a module file may make the agent hold (the largest in-tree module is ~20 MiB).
    public static let fileLimit = 64 << 20
    public static let decompressedLimit = 256 << 20

    /// The module's ELF bytes and the compression they were stored with.
    public static func read(path: String) throws(ScanError) -> (bytes: [UInt8], compression: Compression) {
        let stored: [UInt8]
        do { stored = try AgentFile(path).readAll(limit: fileLimit + 1) } catch { throw .open(path: path, errno: error.errno) }
        guard stored.count <= fileLimit else { throw .notELF(path: path, reason: "larger than \(fileLimit >> 20) MiB") }
        let compression = Compression.detect(stored)
        guard compression != .none else { return (stored, .none) }
        return (try decompress(stored, compression, path: path), compression)
    }

    /// Decompresses a whole file image (exposed for tests).
    public static func decompress(_ stored: [UInt8], _ compression: Compression, path: String) throws(ScanError) -> [UInt8] {
        var output: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        // SAFETY: `stored` is valid for its count of bytes during the call; on success the shim hands
        // over a malloc'd buffer of `length` bytes, copied into the array and freed at once.
        let status = unsafe stored.withUnsafeBufferPointer { input in
            unsafe vpio_decompress(compression.shimFormat, input.baseAddress, input.count, decompressedLimit, &output, &length)
        }
        guard status == 0, let output = unsafe output else {
            let reason = status == -EFBIG ? "decompresses to more than \(decompressedLimit >> 20) MiB"
                : status == -ENOMEM ? "out of memory decompressing it" : "corrupt or truncated \(compression) data"
            throw .notELF(path: path, reason: reason)
        }
        defer { unsafe free(output) }
        return unsafe Array(UnsafeBufferPointer(start: output, count: length))
    }
}
