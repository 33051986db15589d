import SystemPackage

/// A MAP_SHARED read-write mapping this process made and unmaps on deinit: guest RAM (anonymous
/// memory) or a vCPU's kvm_run (the vCPU descriptor).
///
/// `@safe`: every access is bounds-checked and copies; the base address leaves only as an integer
/// for the kernel (`address`) and inside `withUnsafeBytes`, whose callers mark their use.
@safe final class SharedMapping {
    let length: Int
    private let base: UnsafeMutableRawPointer

    /// Maps `length` bytes of `descriptor` from offset 0, or zero-filled memory when it is nil.
    init(length: Int, descriptor: FileDescriptor? = nil) throws(Errno) {
        unsafe base = try KVMSyscall.mmap(length: length, descriptor: descriptor)
        self.length = length
    }

    deinit {
        // SAFETY: `base`/`length` are exactly the mapping made in init, and nothing can reach it once
        // the object is gone.
        unsafe KVMSyscall.munmap(base, length: length)
    }

    /// The mapping's start as a number, for KVM (never turned back into a pointer here).
    var address: UInt64 { UInt64(UInt(bitPattern: unsafe base)) }

    /// Copies `bytes` to `offset`; false (and nothing written) if they do not fit.
    func copy(_ bytes: [UInt8], to offset: Int) -> Bool {
        guard contains(offset, count: bytes.count) else { return false }
        // SAFETY: [offset, offset + bytes.count) lies inside the mapping (checked above).
        unsafe bytes.withUnsafeBytes { source in
            unsafe UnsafeMutableRawBufferPointer(rebasing: self.bytes[offset..<offset + source.count]).copyMemory(from: source)
        }
        return true
    }

    /// The byte at `offset`, or nil outside the mapping.
    func byte(at offset: Int) -> UInt8? {
        guard contains(offset, count: 1) else { return nil }
        // SAFETY: `offset` lies inside the mapping (checked above).
        return unsafe bytes[offset]
    }

    /// Stores `value` at `offset`; false outside the mapping.
    func setByte(_ value: UInt8, at offset: Int) -> Bool {
        guard contains(offset, count: 1) else { return false }
        // SAFETY: `offset` lies inside the mapping (checked above).
        unsafe bytes[offset] = value
        return true
    }

    /// The whole mapping, for C accessors that need a pointer; valid only inside `body`.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        // SAFETY: the buffer is exactly the live mapping, which outlives the call.
        unsafe body(UnsafeRawBufferPointer(bytes))
    }

    private var bytes: UnsafeMutableRawBufferPointer { unsafe UnsafeMutableRawBufferPointer(start: base, count: length) }

    private func contains(_ offset: Int, count: Int) -> Bool {
        let (end, overflow) = offset.addingReportingOverflow(count)
        return offset >= 0 && count >= 0 && !overflow && end <= length
    }
}
