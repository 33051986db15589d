import CKVM
import Glibc
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
            version = try ioctlValue(descriptor, CKVM_GET_API_VERSION)
        } catch {
            throw KVMError.notAKVMDevice(path: path, errno: error)
        }
        guard version == Self.expectedAPIVersion else { throw KVMError.unsupportedAPIVersion(version) }
    }

    deinit { try? descriptor.close() }

    /// KVM_CHECK_EXTENSION: 0 when the capability is absent, else a capability-specific value
    /// (often 1; a count for KVM_CAP_NR_VCPUS). nil if the ioctl itself failed.
    public func checkExtension(_ capability: Int32) -> Int32? {
        try? ioctlValue(descriptor, CKVM_CHECK_EXTENSION, UInt(capability))
    }
}

/// A VM with one slot of guest RAM at guest-physical 0.
///
/// deinit closes the VM descriptor, then the memory unmaps itself (it is released after deinit).
final class VirtualMachine {
    let device: KVMDevice
    let descriptor: FileDescriptor
    let memory: GuestMemory

    init(device: KVMDevice, memorySize: Int) throws {
        self.device = device
        let raw: Int32
        do {
            raw = try ioctlValue(device.descriptor, CKVM_CREATE_VM, 0)
        } catch {
            throw KVMError.createVMFailed(error)
        }
        descriptor = FileDescriptor(rawValue: raw)
        do {
            memory = try GuestMemory(size: memorySize)
        } catch {
            try? descriptor.close()
            throw error
        }
        var region = kvm_userspace_memory_region(
            slot: 0, flags: 0, guest_phys_addr: 0, memory_size: UInt64(memorySize),
            userspace_addr: UInt64(UInt(bitPattern: memory.hostAddress)))
        do {
            try ioctlPointer(descriptor, CKVM_SET_USER_MEMORY_REGION, &region)
        } catch {
            throw KVMError.guestMemoryFailed(step: "KVM_SET_USER_MEMORY_REGION", errno: error)
        }
    }

    deinit { try? descriptor.close() }
}

/// Anonymous, zero-filled memory that backs guest RAM; unmaps itself on deinit.
final class GuestMemory {
    let size: Int
    private let base: UnsafeMutableRawPointer

    init(size: Int) throws {
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        guard let address, address != MAP_FAILED else {
            throw KVMError.guestMemoryFailed(step: "mmap of \(size) bytes", errno: Errno(rawValue: errno))
        }
        self.size = size
        base = address
    }

    deinit { munmap(base, size) }

    /// The host address KVM maps the slot from (only handed to KVM, never dereferenced outside).
    var hostAddress: UnsafeMutableRawPointer { base }

    /// Copies `bytes` to guest-physical `offset`; a range outside the memory is a programming error.
    func load(_ bytes: [UInt8], at offset: Int) {
        precondition(offset >= 0 && bytes.count <= size - offset, "guest code outside guest memory")
        bytes.withUnsafeBytes { source in
            // SAFETY: the destination range [offset, offset + count) lies inside the `size`-byte
            // mapping (checked above), and the source is the array's own storage for this call.
            (base + offset).copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
    }
}

/// vCPU 0 of a VM, with its shared `kvm_run` page mapped.
///
/// deinit unmaps `kvm_run` and closes the vCPU descriptor; it keeps its VM (and so the guest
/// memory it executes from) alive until then.
final class VCPU {
    let vm: VirtualMachine
    let descriptor: FileDescriptor
    private let run: UnsafeMutableRawPointer
    private let runSize: Int

    init(vm: VirtualMachine) throws {
        self.vm = vm
        let size: Int32
        do {
            size = try ioctlValue(vm.device.descriptor, CKVM_GET_VCPU_MMAP_SIZE, 0)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_GET_VCPU_MMAP_SIZE", errno: error)
        }
        let raw: Int32
        do {
            raw = try ioctlValue(vm.descriptor, CKVM_CREATE_VCPU, 0)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_CREATE_VCPU", errno: error)
        }
        descriptor = FileDescriptor(rawValue: raw)
        let address = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0)
        guard let address, address != MAP_FAILED else {
            let error = Errno(rawValue: errno)
            try? descriptor.close()
            throw KVMError.vcpuSetupFailed(step: "mmap of kvm_run", errno: error)
        }
        run = address
        runSize = Int(size)
    }

    deinit {
        munmap(run, runSize)
        try? descriptor.close()
    }

    /// Puts the vCPU in 32-bit flat protected mode without paging: CS a 4 GiB execute/read code
    /// segment, the data segments 4 GiB read/write, CR0.PE set. No GDT is needed because KVM loads
    /// the hidden segment state from these values directly.
    func enterFlatProtectedMode() throws {
        var sregs = kvm_sregs()
        do {
            try ioctlPointer(descriptor, CKVM_GET_SREGS, &sregs)
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
            try ioctlPointer(descriptor, CKVM_SET_SREGS, &sregs)
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
            try ioctlPointer(descriptor, CKVM_SET_REGS, &regs)
        } catch {
            throw KVMError.vcpuSetupFailed(step: "KVM_SET_REGS", errno: error)
        }
    }

    /// KVM_GET_TSC_KHZ: the guest TSC frequency KVM uses (normally the host's), or nil.
    var tscKHz: Int32? { try? ioctlValue(descriptor, CKVM_GET_TSC_KHZ, 0) }

    /// Runs the guest until its next exit to user space (KVM_RUN, retried on EINTR).
    func runUntilExit() throws(Errno) -> GuestExit {
        _ = try ioctlValue(descriptor, CKVM_RUN, 0)
        // SAFETY: `run` is the live kvm_run mapping of this vCPU (mapped in init, unmapped only
        // in deinit), at least sizeof(struct kvm_run) bytes as KVM_GET_VCPU_MMAP_SIZE promised.
        let state = run.assumingMemoryBound(to: kvm_run.self)
        switch Int32(bitPattern: state.pointee.exit_reason) {
        case KVM_EXIT_IO:
            let io = ckvm_run_io(state)
            return .io(.init(isIn: Int32(io.direction) == KVM_EXIT_IO_IN, port: io.port, size: io.size, count: io.count))
        case KVM_EXIT_HLT: return .hlt
        case KVM_EXIT_MMIO: return .mmio(address: ckvm_run_mmio_address(state))
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_FAIL_ENTRY: return .failEntry(reason: ckvm_run_fail_entry_reason(state))
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: ckvm_run_internal_suberror(state))
        default: return .other(reason: state.pointee.exit_reason)
        }
    }

    /// The byte a one-byte `out` exit carries, or nil if KVM's data offset lies outside kvm_run.
    func outByte() -> UInt8? {
        guard let offset = ioDataOffset() else { return nil }
        // SAFETY: `offset` < runSize was checked in ioDataOffset, inside the live kvm_run mapping.
        return run.load(fromByteOffset: offset, as: UInt8.self)
    }

    /// Answers a one-byte `in` exit: KVM hands `value` to the guest on the next KVM_RUN.
    /// Returns false if KVM's data offset lies outside kvm_run.
    func answerIn(_ value: UInt8) -> Bool {
        guard let offset = ioDataOffset() else { return false }
        // SAFETY: as in outByte; the data area is ours to write between KVM_RUN calls.
        run.storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
        return true
    }

    private func ioDataOffset() -> Int? {
        // SAFETY: see runUntilExit; only called after a KVM_EXIT_IO exit.
        let offset = ckvm_run_io(run.assumingMemoryBound(to: kvm_run.self)).data_offset
        return offset < UInt64(runSize) ? Int(offset) : nil
    }
}

/// ioctl with an integer argument; returns the non-negative result, retries EINTR.
func ioctlValue(_ descriptor: FileDescriptor, _ request: UInt, _ value: UInt = 0) throws(Errno) -> Int32 {
    while true {
        let result = ckvm_ioctl_value(descriptor.rawValue, request, value)
        if result >= 0 { return result }
        if errno != EINTR { throw Errno(rawValue: errno) }
    }
}

/// ioctl with a pointer to `argument` (the kernel reads or fills it); retries EINTR.
func ioctlPointer<T>(_ descriptor: FileDescriptor, _ request: UInt, _ argument: inout T) throws(Errno) {
    while true {
        // SAFETY: the pointer is to `argument`'s own storage for the duration of the call, and
        // each request is used with the struct type its _IOR/_IOW number encodes.
        let result = withUnsafeMutablePointer(to: &argument) { ckvm_ioctl(descriptor.rawValue, request, $0) }
        if result >= 0 { return }
        if errno != EINTR { throw Errno(rawValue: errno) }
    }
}
