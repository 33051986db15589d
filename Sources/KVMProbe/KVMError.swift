import SystemPackage

/// Why the exit-cost measurement could not run or could not finish, one reason per case.
///
/// Each case has its own process exit status (`exitStatus`), so a script can tell "no KVM here"
/// from "KVM is here but the guest misbehaved" without parsing the message.
public enum KVMError: Error, Equatable, CustomStringConvertible {
    /// The device node does not exist.
    case deviceMissing(path: String)
    /// The device exists but this user may not open it read-write.
    case permissionDenied(path: String)
    /// open(2) failed for another reason.
    case cannotOpen(path: String, errno: Errno)
    /// The file opened but does not answer KVM_GET_API_VERSION (not a KVM device).
    case notAKVMDevice(path: String, errno: Errno)
    /// KVM answered with an API version other than the stable 12.
    case unsupportedAPIVersion(Int32)
    /// KVM_CREATE_VM failed (e.g. the module is loaded but virtualization is off or in use).
    case createVMFailed(Errno)
    /// Allocating guest memory or registering it with KVM_SET_USER_MEMORY_REGION failed.
    case guestMemoryFailed(step: String, errno: Errno)
    /// Creating the vCPU, mapping its kvm_run, or setting its registers failed.
    case vcpuSetupFailed(step: String, errno: Errno)
    /// KVM_RUN itself returned an error.
    case runFailed(errno: Errno, afterIOExits: Int)
    /// The first exit was not a port access: the guest never reached the I/O loop.
    case guestDidNotReachLoop(GuestExit)
    /// The guest left the loop early or exited for a reason other than port I/O or HLT.
    case guestLeftLoop(GuestExit, afterIOExits: Int)
    /// A port access that the loop does not make (wrong port, width, direction or value).
    case unexpectedAccess(String, afterIOExits: Int)

    /// The process exit status `vpio exit-cost` uses for this reason (distinct, non-zero, not 1 or 2
    /// which the argument parser and other failures use).
    public var exitStatus: Int32 {
        switch self {
        case .deviceMissing: 3
        case .permissionDenied: 4
        case .cannotOpen: 5
        case .notAKVMDevice: 6
        case .unsupportedAPIVersion: 7
        case .createVMFailed: 8
        case .guestMemoryFailed: 9
        case .vcpuSetupFailed: 10
        case .runFailed: 11
        case .guestDidNotReachLoop: 12
        case .guestLeftLoop: 13
        case .unexpectedAccess: 14
        }
    }

    public var description: String {
        switch self {
        case .deviceMissing(let path):
            "\(path) does not exist (no KVM on this machine, or the kvm module is not loaded)"
        case .permissionDenied(let path):
            "permission denied opening \(path) read-write (run as root or join the kvm group)"
        case .cannotOpen(let path, let errno):
            "cannot open \(path): \(errno)"
        case .notAKVMDevice(let path, let errno):
            "\(path) is not a KVM device (KVM_GET_API_VERSION: \(errno))"
        case .unsupportedAPIVersion(let version):
            "KVM API version is \(version), expected 12"
        case .createVMFailed(let errno):
            "KVM_CREATE_VM failed: \(errno)"
        case .guestMemoryFailed(let step, let errno):
            "guest memory setup failed at \(step): \(errno)"
        case .vcpuSetupFailed(let step, let errno):
            "vCPU setup failed at \(step): \(errno)"
        case .runFailed(let errno, let count):
            "KVM_RUN failed after \(count) I/O exits: \(errno)"
        case .guestDidNotReachLoop(let exit):
            "the guest did not reach its I/O loop: its first exit was \(exit)"
        case .guestLeftLoop(let exit, let count):
            "the guest left its I/O loop after \(count) I/O exits: \(exit)"
        case .unexpectedAccess(let what, let count):
            "unexpected port access after \(count) I/O exits: \(what)"
        }
    }
}
