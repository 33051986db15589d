import CKVM

/// One vCPU exit as KVM reported it, decoded from `kvm_run` for the loop and for error messages.
public enum GuestExit: Equatable, Sendable, CustomStringConvertible {
    /// KVM_EXIT_IO: one port access (`count` > 1 only for string instructions).
    case io(IOAccess)
    /// KVM_EXIT_HLT: the guest executed HLT.
    case hlt
    /// KVM_EXIT_MMIO: an access to guest-physical memory no slot covers.
    case mmio(address: UInt64)
    /// KVM_EXIT_SHUTDOWN: a triple fault.
    case shutdown
    /// KVM_EXIT_FAIL_ENTRY: the hardware (or PVM) refused to enter the guest.
    case failEntry(reason: UInt64)
    /// KVM_EXIT_INTERNAL_ERROR, with KVM's suberror (1 = emulation failure).
    case internalError(suberror: UInt32)
    /// Any other exit reason, by number.
    case other(reason: UInt32)

    /// A port access: KVM_EXIT_IO's fields.
    public struct IOAccess: Equatable, Sendable {
        /// True for `in` (the guest waits for user space's answer), false for `out`.
        public var isIn: Bool
        /// The I/O port (DX).
        public var port: UInt16
        /// Bytes per access.
        public var size: UInt8
        /// Accesses in this exit: 1, or the repeat count of a string instruction.
        public var count: UInt32
    }

    public var description: String {
        switch self {
        case .io(let access):
            "KVM_EXIT_IO (\(access.isIn ? "in" : "out") port \(hex(access.port)), \(access.size) byte(s) x \(access.count))"
        case .hlt: "KVM_EXIT_HLT (the guest halted)"
        case .mmio(let address): "KVM_EXIT_MMIO at \(hex(address)) (the guest ran outside its memory)"
        case .shutdown: "KVM_EXIT_SHUTDOWN (triple fault: the mode setup did not hold)"
        case .failEntry(let reason): "KVM_EXIT_FAIL_ENTRY (hardware entry failure reason \(hex(reason)))"
        case .internalError(let suberror): "KVM_EXIT_INTERNAL_ERROR (suberror \(suberror))"
        case .other(let reason): "exit reason \(reason)"
        }
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
