import Glibc

// Why the agent has its own small syscall layer instead of depending on VPIOSystem (the host's): the
// agent runs inside the guest, built with --static-swift-stdlib from the few targets it needs, and
// VPIOSystem is the host's module (swift-system, UNIX sockets with descriptor passing, TAP, eventfd)
// whose `Syscall` is internal to it. What the agent needs is different and small: whole sysfs files,
// pread/pwrite of config space and pagemap by path, a directory listing, and the ring's mapping.
// The shape is VPIOSystem's: each syscall is made here once, EINTR is retried by one helper, a
// failure is thrown with the call's name and errno.

/// A syscall that failed: which call and its errno.
public struct AgentSyscallError: Error, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public var description: String { "\(call): \(errnoText(errno))" }
}

/// The text of an errno value (either sign, as libbpf returns -errno).
public func errnoText(_ code: Int32) -> String {
    // SAFETY: strerror returns a NUL-terminated string that stays valid until the next strerror call
    // on this thread; it is copied at once.
    unsafe String(cString: strerror(code < 0 ? -code : code))
}

enum AgentSyscall {
    /// Calls `body` until it stops failing with EINTR; `body` returns -1 and sets errno on failure.
    static func retryingEINTR<R: FixedWidthInteger>(_ call: String, _ body: () -> R) throws(AgentSyscallError) -> R {
        while true {
            let result = body()
            if result != -1 { return result }
            if errno != EINTR { throw AgentSyscallError(call: call, errno: errno) }
        }
    }
}

/// A file opened by path, closed on deinit. Every read and write copies through Swift arrays.
public final class AgentFile {
    /// The descriptor, for C libraries that read the file themselves (libelf).
    public let descriptor: Int32

    /// Opens `path` read-only, or write-only when `writable`, close-on-exec.
    public init(_ path: String, writable: Bool = false) throws(AgentSyscallError) {
        let flags = (writable ? O_WRONLY : O_RDONLY) | O_CLOEXEC
        // SAFETY: the C string made from `path` lives for the duration of the call.
        descriptor = try AgentSyscall.retryingEINTR("open \(path)") { unsafe open(path, flags) }
    }

    deinit { _ = close(descriptor) }

    /// The file's bytes from its current position to its end, at most `limit` of them.
    public func readAll(limit: Int) throws(AgentSyscallError) -> [UInt8] {
        var result: [UInt8] = []
        while result.count < limit {
            let chunk = try read(count: min(4096, limit - result.count))
            guard !chunk.isEmpty else { break }
            result += chunk
        }
        return result
    }

    /// Up to `count` bytes from the current position; empty at the end of the file.
    func read(count: Int) throws(AgentSyscallError) -> [UInt8] {
        try fill(count: count, at: nil)
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    public func read(count: Int, at offset: Int) throws(AgentSyscallError) -> [UInt8] {
        try fill(count: count, at: offset)
    }

    /// Writes `bytes` at `offset` in one pwrite; returns how many the kernel took.
    public func write(_ bytes: [UInt8], at offset: Int) throws(AgentSyscallError) -> Int {
        try AgentSyscall.retryingEINTR("pwrite") {
            // SAFETY: the array's storage is valid for `bytes.count` readable bytes during the call.
            unsafe bytes.withUnsafeBytes { unsafe pwrite(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        }
    }

    /// One read (at the current position) or pread (at `offset`) of up to `count` bytes.
    private func fill(count: Int, at offset: Int?) throws(AgentSyscallError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let filled = try AgentSyscall.retryingEINTR(offset == nil ? "read" : "pread") {
            // SAFETY: the buffer is the array's own storage, valid for `count` writable bytes during the call.
            unsafe bytes.withUnsafeMutableBytes { buffer in
                if let offset { unsafe pread(descriptor, buffer.baseAddress, buffer.count, off_t(offset)) }
                else { unsafe Glibc.read(descriptor, buffer.baseAddress, buffer.count) }
            }
        }
        return Array(bytes.prefix(filled))
    }
}

/// The names in directory `path` except `.` and `..`; empty if it cannot be listed.
public func listDirectory(_ path: String) -> [String] {
    // SAFETY: the DIR stream is used only between opendir and closedir, and each dirent only before
    // the next readdir.
    guard let directory = unsafe opendir(path) else { return [] }
    defer { _ = unsafe closedir(directory) }
    var names: [String] = []
    while let entry = unsafe readdir(directory) {
        let name = unsafe entryName(entry)
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// The name of a dirent readdir returned. A record is only d_reclen bytes, often fewer than
/// sizeof(struct dirent), so the name is read as a C string from d_name's address: loading the whole
/// struct (`entry.pointee.d_name`) read past the end of glibc's buffer (AddressSanitizer:
/// heap-buffer-overflow in the agent's PCI device scan).
@unsafe private func entryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
    let nameOffset = MemoryLayout<dirent>.offset(of: \.d_name)!
    // SAFETY (caller): `entry` is a live readdir record; d_name is NUL-terminated within it.
    return unsafe String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
}

extension AgentSyscall {
    /// A MAP_SHARED read-write mapping of `length` bytes of `descriptor` from offset 0.
    static func mapShared(length: Int, descriptor: Int32) throws(AgentSyscallError) -> UnsafeMutableRawPointer {
        // MAP_FAILED is (void *)-1, so the address's bit pattern fits the "-1 on failure" shape.
        let address = try retryingEINTR("mmap") {
            // SAFETY: a NULL hint lets the kernel pick fresh address space; nothing is overwritten.
            Int(bitPattern: unsafe mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0))
        }
        // SAFETY: a successful mmap without MAP_FIXED never returns NULL.
        return unsafe UnsafeMutableRawPointer(bitPattern: address)!
    }

    /// Keeps the pages of [address, address + length) resident (mlock).
    static func lock(_ address: UnsafeMutableRawPointer, length: Int) throws(AgentSyscallError) {
        // SAFETY: mlock only changes the residency of pages already mapped; it reads no memory.
        _ = try retryingEINTR("mlock") { unsafe mlock(address, length) }
    }

    /// SAFETY (caller): `address` and `length` must be exactly a mapping made by `mapShared` that
    /// nothing will touch again.
    @unsafe static func unmap(_ address: UnsafeMutableRawPointer, length: Int) {
        // munlock of unlocked pages is harmless; both fail only for a range that is not mapped.
        _ = unsafe munlock(address, length)
        _ = unsafe munmap(address, length)
    }
}

extension AgentSyscall {
    /// Writes `text` to standard error (the agent's warnings; best effort, no Foundation).
    static func writeStandardError(_ text: String) {
        // SAFETY: the array's storage is valid for its count of readable bytes during the call.
        _ = unsafe Array(text.utf8).withUnsafeBytes { unsafe write(2, $0.baseAddress, $0.count) }
    }
}

/// Whether `path` exists (access(2) with F_OK).
public func fileExists(_ path: String) -> Bool {
    // SAFETY: the C string lives for the call.
    unsafe access(path, F_OK) == 0
}
