import CKVM
import Glibc
import SystemPackage

// Why the probe has its own small syscall layer instead of depending on VPIOSystem (the host's):
// VPIOSystem's `Syscall` is internal to that module, and its public mapping (`MappedRegion`) never
// hands out an address by design, while KVM needs one twice (guest RAM's host address for
// KVM_SET_USER_MEMORY_REGION, kvm_run for the C accessor of its unions). VPIOSystem has no ioctl
// either. The layer follows VPIOSystem's shape: each syscall is made in one place, EINTR is retried
// by one helper, failures are thrown as Errno.

/// The probe's syscalls; each is made here and nowhere else.
enum KVMSyscall {
    /// Calls `body` until it stops failing with EINTR. `body` returns -1 and sets errno on failure,
    /// like the syscalls it wraps.
    static func retryingEINTR<R: FixedWidthInteger>(_ body: () -> R) throws(Errno) -> R {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = Errno(rawValue: errno)
            if error != .interrupted { throw error }
        }
    }

    /// ioctl with an integer argument (0 for requests that take none); returns its result.
    static func ioctl(_ fd: FileDescriptor, _ request: UInt, value: UInt = 0) throws(Errno) -> Int32 {
        try retryingEINTR { ckvm_ioctl_value(fd.rawValue, request, value) }
    }

    /// ioctl with a pointer to `argument`, which the kernel reads or fills.
    static func ioctl<T: BitwiseCopyable>(_ fd: FileDescriptor, _ request: PointerRequest<T>, _ argument: inout T) throws(Errno) {
        _ = try retryingEINTR {
            // SAFETY: the pointer is to `argument`'s own storage for the duration of the call, and the
            // kernel touches at most the size the request encodes, which `PointerRequest` checked is
            // exactly MemoryLayout<T>.size.
            unsafe withUnsafeMutablePointer(to: &argument) { unsafe ckvm_ioctl(fd.rawValue, request.number, $0) }
        }
    }

    /// A MAP_SHARED read-write mapping of `length` bytes: of `descriptor` from offset 0, or of
    /// anonymous zero-filled memory when `descriptor` is nil.
    static func mmap(length: Int, descriptor: FileDescriptor?) throws(Errno) -> UnsafeMutableRawPointer {
        let flags = descriptor == nil ? MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED
        // MAP_FAILED is (void *)-1, so the address's bit pattern fits the "-1 on failure" shape.
        let address = try retryingEINTR {
            // SAFETY: a NULL hint lets the kernel pick fresh address space; nothing is overwritten.
            Int(bitPattern: unsafe Glibc.mmap(nil, length, PROT_READ | PROT_WRITE, flags, descriptor?.rawValue ?? -1, 0))
        }
        // SAFETY: a successful mmap without MAP_FIXED never returns NULL.
        return unsafe UnsafeMutableRawPointer(bitPattern: address)!
    }

    /// SAFETY (caller): `address` and `length` must be exactly a mapping made by `mmap` that nothing
    /// will touch again.
    @unsafe static func munmap(_ address: UnsafeMutableRawPointer, length: Int) {
        // Fails only for a range that is not a mapping, which the caller's contract rules out.
        _ = unsafe Glibc.munmap(address, length)
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        // SAFETY: `time` lives for the call; CLOCK_MONOTONIC always exists, so the call cannot fail.
        _ = unsafe clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// An ioctl request that takes a pointer to a `T`, checked when made: the argument size its
/// _IOR/_IOW number encodes must be `T`'s size, so the kernel cannot read or write past the argument.
struct PointerRequest<T: BitwiseCopyable> {
    let number: UInt

    /// The size field of an ioctl number (_IOC_SIZE: bits 16–29).
    static func encodedSize(of number: UInt) -> Int { Int((number >> 16) & 0x3FFF) }

    init(_ number: UInt) {
        precondition(Self.encodedSize(of: number) == MemoryLayout<T>.size, "ioctl \(hex(number)) does not take a \(T.self)")
        self.number = number
    }
}

extension PointerRequest where T == kvm_userspace_memory_region {
    static var setUserMemoryRegion: Self { Self(CKVM_SET_USER_MEMORY_REGION) }
}

extension PointerRequest where T == kvm_sregs {
    static var getSpecialRegisters: Self { Self(CKVM_GET_SREGS) }
    static var setSpecialRegisters: Self { Self(CKVM_SET_SREGS) }
}

extension PointerRequest where T == kvm_regs {
    static var setRegisters: Self { Self(CKVM_SET_REGS) }
}
