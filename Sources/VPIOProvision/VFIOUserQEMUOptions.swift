/// The QEMU options that attach a guest to vpio-host — the one definition `vpio-host --print-qemu-args`
/// prints for users' own VMs and `vpio run` boots every guest with: guest RAM in a shared memfd (the
/// vfio-user server maps it through DMA_MAP, so it must be shareable) made the machine's memory, and
/// a `vfio-user-pci` device on vpio-host's socket (no option ROM: the NIC has none).
public struct VFIOUserQEMUOptions: Sendable, Equatable {
    public var socket: String
    /// Must equal the VM's `-m`.
    public var memoryMiB: Int
    public static let memoryBackendID = "vpio-mem"

    public init(socket: String, memoryMiB: Int) {
        self.socket = socket
        self.memoryMiB = memoryMiB
    }

    /// Guest RAM as a shared memfd; QEMU merges this `-machine` with the VM's own.
    public var memoryArguments: [String] {
        ["-object", "memory-backend-memfd,id=\(Self.memoryBackendID),size=\(memoryMiB)M,share=on",
         "-machine", "memory-backend=\(Self.memoryBackendID)"]
    }

    public var deviceArguments: [String] {
        ["-device", #"{"driver":"vfio-user-pci","socket":{"path":"\#(Self.jsonEscaped(socket))","type":"unix"},"rombar":0}"#]
    }

    public var arguments: [String] { memoryArguments + deviceArguments }

    /// The arguments as one line for a POSIX shell (each quoted where it must be).
    public var shellLine: String { arguments.map(Self.shellQuoted).joined(separator: " ") }

    static func jsonEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    public static func shellQuoted(_ word: String) -> String {
        let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_=,./:@+".contains($0) }
        return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
