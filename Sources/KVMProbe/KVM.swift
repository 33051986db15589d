import CKVM
import SystemPackage

/// An open KVM device (`/dev/kvm`) whose API version has been checked.
///
/// Closes its descriptor on deinit. VMs made from it keep it alive.
public final class KVMDevice {
    /// The stable KVM API version; anything else is refused.
    public static let expectedAPIVersion: Int32 = 12

    /// The path it was opened from.
    public let path: String
    let descriptor: FileDescriptor

    /// Opens `path` read-write and checks KVM_GET_API_VERSION.
    ///
    /// Throws `KVMError.deviceMissing`, `.permissionDenied`, `.cannotOpen`, `.notAKVMDevice` or
    /// `.unsupportedAPIVersion`, so the caller can say in one line why KVM cannot be used.
    public init(path: String = "/dev/kvm") throws {
        self.path = path
        do {
            descriptor = try FileDescriptor.open(FilePath(path), .readWrite, options: .closeOnExec, retryOnInterrupt: true)
        } catch let errno as Errno {
            switch errno {
            case .noSuchFileOrDirectory: throw KVMError.deviceMissing(path: path)
            case .permissionDenied, .notPermitted: throw KVMError.permissionDenied(path: path)
            default: throw KVMError.cannotOpen(path: path, errno: errno)
            }
        }
        // From here on deinit closes the descriptor on every path out.
        let version: Int32
        do {
            version = try KVMSyscall.ioctl(descriptor, CKVM_GET_API_VERSION)
        } catch {
            throw KVMError.notAKVMDevice(path: path, errno: error)
        }
        guard version == Self.expectedAPIVersion else { throw KVMError.unsupportedAPIVersion(version) }
    }

    deinit { try? descriptor.close() }

    /// KVM_CHECK_EXTENSION: 0 when the capability is absent, else a capability-specific value
    /// (often 1; a count for KVM_CAP_NR_VCPUS). nil if the ioctl itself failed.
    public func checkExtension(_ capability: Int32) -> Int32? {
        try? KVMSyscall.ioctl(descriptor, CKVM_CHECK_EXTENSION, value: UInt(capability))
    }
}

/// A VM with one slot of guest RAM at guest-physical 0.
///
/// deinit closes the VM descriptor, then the memory unmaps itself (it is released after deinit).
final class VirtualMachine {
    let device: KVMDevice
    let descriptor: FileDescriptor
    /// Guest RAM: anonymous shared memory, mapped at guest-physical 0.
    let memory: SharedMapping

    init(device: KVMDevice, memorySize: Int) throws {
        self.device = device
        let raw: Int32
        do {
            raw = try KVMSyscall.ioctl(device.descriptor, CKVM_CREATE_VM)
        } catch {
            throw KVMError.createVMFailed(error)
        }
        descriptor = FileDescriptor(rawValue: raw)
        do {
            memory = try SharedMapping(length: memorySize)
        } catch {
            try? descriptor.close()
            throw KVMError.guestMemoryFailed(step: "mmap of \(memorySize) bytes", errno: error)
        }
        var region = kvm_userspace_memory_region(
            slot: 0, flags: 0, guest_phys_addr: 0, memory_size: UInt64(memorySize), userspace_addr: memory.address)
        do {
            try KVMSyscall.ioctl(descriptor, .setUserMemoryRegion, &region)
        } catch {
            throw KVMError.guestMemoryFailed(step: "KVM_SET_USER_MEMORY_REGION", errno: error)
        }
    }

    deinit { try? descriptor.close() }
}

/// vCPU 0 of a VM, with its shared `kvm_run` page mapped.
///
/// deinit unmaps `kvm_run` and closes the vCPU descriptor; it keeps its VM (and so the guest
/// memory it executes from) alive until then.
final class VCPU {
    let vm: VirtualMachine
    let descriptor: FileDescriptor
    /// The vCPU's kvm_run, at least MemoryLayout<kvm_run>.size bytes (checked in init).
    private let run: SharedMapping
    /// Where the last KVM_EXIT_IO's data bytes are in kvm_run; nil after any other exit.
    private var ioDataOffset: Int?

    init(vm: VirtualMachine) throws {
        self.vm = vm
        let size: Int32
        do {
            size = try KVMSyscall.ioctl(vm.device.descriptor, CKVM_GET_VCPU_MMAP_SIZE)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_GET_VCPU_MMAP_SIZE", errno: error)
        }
        guard Int(size) >= MemoryLayout<kvm_run>.size else {
            throw KVMError.vcpuSetupFailed(step: "KVM_GET_VCPU_MMAP_SIZE (\(size) bytes, smaller than kvm_run)", errno: .invalidArgument)
        }
        let raw: Int32
        do {
            raw = try KVMSyscall.ioctl(vm.descriptor, CKVM_CREATE_VCPU)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_CREATE_VCPU", errno: error)
        }
        descriptor = FileDescriptor(rawValue: raw)
        do {
            run = try SharedMapping(length: Int(size), descriptor: descriptor)
        } catch {
            try? descriptor.close()
            throw KVMError.vcpuSetupFailed(step: "mmap of kvm_run", errno: error)
        }
    }

    /// Closes the descriptor; `run` unmaps itself when it is released right after.
    deinit { try? descriptor.close() }

    /// Puts the vCPU in 32-bit flat protected mode without paging: CS a 4 GiB execute/read code
    /// segment, the data segments 4 GiB read/write, CR0.PE set. No GDT is needed because KVM loads
    /// the hidden segment state from these values directly.
    func enterFlatProtectedMode() throws {
        var sregs = kvm_sregs()
        do {
            try KVMSyscall.ioctl(descriptor, .getSpecialRegisters, &sregs)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_GET_SREGS", errno: error)
        }
        var code = kvm_segment()
        code.base = 0
        code.limit = 0xFFFF_FFFF
        code.selector = 0x08
        code.type = 11  // execute/read, accessed
        code.present = 1
        code.dpl = 0
        code.db = 1  // 32-bit default operand and address size: `loop` counts in ECX
        code.s = 1
        code.l = 0
        code.g = 1
        var data = code
        data.type = 3  // read/write, accessed
        data.selector = 0x10
        sregs.cs = code
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        sregs.cr0 |= 1
        do {
            try KVMSyscall.ioctl(descriptor, .setSpecialRegisters, &sregs)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_SET_SREGS", errno: error)
        }
    }

    /// Sets the general registers the guest loop reads; all others are zero, RFLAGS has only its
    /// reserved bit 1 (interrupts off).
    func setRegisters(rip: UInt64, rax: UInt64, rcx: UInt64, rdx: UInt64) throws {
        var regs = kvm_regs()
        regs.rip = rip
        regs.rax = rax
        regs.rcx = rcx
        regs.rdx = rdx
        regs.rflags = 2
        do {
            try KVMSyscall.ioctl(descriptor, .setRegisters, &regs)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_SET_REGS", errno: error)
        }
    }

    /// KVM_GET_TSC_KHZ: the guest TSC frequency KVM uses (normally the host's), or nil.
    var tscKHz: Int32? { try? KVMSyscall.ioctl(descriptor, CKVM_GET_TSC_KHZ) }

    /// Runs the guest until its next exit to user space (KVM_RUN, retried on EINTR).
    func runUntilExit() throws(Errno) -> GuestExit {
        _ = try KVMSyscall.ioctl(descriptor, CKVM_RUN)
        // SAFETY: the buffer is the live kvm_run mapping of this vCPU, at least sizeof(struct kvm_run)
        // bytes (checked in init), and KVM does not write it while we are outside KVM_RUN.
        let exit = unsafe run.withUnsafeBytes { unsafe ckvm_run_exit($0.baseAddress!.assumingMemoryBound(to: kvm_run.self)) }
        ioDataOffset = nil
        switch Int32(bitPattern: exit.reason) {
        case KVM_EXIT_IO:
            ioDataOffset = Int(exactly: exit.io.data_offset)
            return .io(.init(isIn: Int32(exit.io.direction) == KVM_EXIT_IO_IN, port: exit.io.port, size: exit.io.size, count: exit.io.count))
        case KVM_EXIT_HLT: return .hlt
        case KVM_EXIT_MMIO: return .mmio(address: exit.mmio_address)
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_FAIL_ENTRY: return .failEntry(reason: exit.fail_entry_reason)
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: exit.internal_suberror)
        default: return .other(reason: exit.reason)
        }
    }

    /// The byte a one-byte `out` exit carries, or nil if KVM's data offset lies outside kvm_run
    /// (or the last exit was not an I/O exit).
    func outByte() -> UInt8? {
        ioDataOffset.flatMap { run.byte(at: $0) }
    }

    /// Answers a one-byte `in` exit: KVM hands `value` to the guest on the next KVM_RUN (the data
    /// area is ours to write between KVM_RUN calls). Returns false if KVM's data offset lies outside
    /// kvm_run (or the last exit was not an I/O exit).
    func answerIn(_ value: UInt8) -> Bool {
        guard let offset = ioDataOffset else { return false }
        return run.setByte(value, at: offset)
    }
}
