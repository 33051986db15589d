import Glibc
import CVPIOShim
import SystemPackage

/// The one place each syscall of this module is made.
///
/// Every wrapper goes through `retryingEINTR`, so an interrupted call is always retried and tests
/// can inject EINTR (`SyscallHooks`). EBADF and EFAULT are thrown rather than trapped: many
/// descriptors here come from a peer (SCM_RIGHTS), so a bad one is the peer's fault, not a bug.
enum Syscall {
    /// Calls `body` until it stops failing with EINTR. `body` returns -1 and sets errno on
    /// failure, like the syscalls it wraps.
    @inline(__always)
    static func retryingEINTR<R: FixedWidthInteger>(
        _ call: String, _ body: () -> R
    ) throws(SystemCallError) -> R {
        while true {
            #if DEBUG
            if let hook = SyscallHooks.forcedEINTR, hook.consume(for: call) { continue }
            #endif
            let result = body()
            if result != -1 { return result }
            let error = Errno(rawValue: Glibc.errno)
            if error != .interrupted { throw SystemCallError(call: call, errno: error) }
        }
    }

    static func socket(domain: Int32, type: Int32) throws(SystemCallError) -> FileDescriptor {
        FileDescriptor(rawValue: try retryingEINTR("socket") { Glibc.socket(domain, type, 0) })
    }

    static func socketpair(
        domain: Int32, type: Int32
    ) throws(SystemCallError) -> (FileDescriptor, FileDescriptor) {
        var fds: [Int32] = [-1, -1]
        // SAFETY: socketpair writes exactly two ints into the two-element buffer.
        _ = try retryingEINTR("socketpair") {
            unsafe fds.withUnsafeMutableBufferPointer { unsafe Glibc.socketpair(domain, type, 0, $0.baseAddress) }
        }
        return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
    }

    static func bind(_ fd: FileDescriptor, _ address: SocketAddressUnix) throws(SystemCallError) {
        _ = try retryingEINTR("bind") {
            // SAFETY: the pointer and length describe the sockaddr_un inside `address` for the
            // duration of the call.
            unsafe address.withSockaddr { unsafe Glibc.bind(fd.rawValue, $0, $1) }
        }
    }

    static func listen(_ fd: FileDescriptor, backlog: Int32) throws(SystemCallError) {
        _ = try retryingEINTR("listen") { Glibc.listen(fd.rawValue, backlog) }
    }

    static func accept(_ fd: FileDescriptor) throws(SystemCallError) -> FileDescriptor {
        // The peer's address is not needed: AF_UNIX clients are usually unnamed.
        FileDescriptor(rawValue: try retryingEINTR("accept4") {
            vpio_accept_cloexec(fd.rawValue)
        })
    }

    static func connect(_ fd: FileDescriptor, _ address: SocketAddressUnix) throws(SystemCallError) {
        _ = try retryingEINTR("connect") {
            // SAFETY: as in `bind`.
            unsafe address.withSockaddr { unsafe Glibc.connect(fd.rawValue, $0, $1) }
        }
    }

    /// SAFETY (caller): `message` must point to a msghdr whose iovecs and control buffer stay
    /// valid and writable for the duration of the call.
    static func recvmsg(
        _ fd: FileDescriptor, _ message: UnsafeMutablePointer<msghdr>, flags: Int32
    ) throws(SystemCallError) -> Int {
        try retryingEINTR("recvmsg") { unsafe Glibc.recvmsg(fd.rawValue, message, flags) }
    }

    /// SAFETY (caller): `message` must point to a msghdr whose iovecs and control buffer stay
    /// valid for the duration of the call.
    static func sendmsg(
        _ fd: FileDescriptor, _ message: UnsafePointer<msghdr>, flags: Int32
    ) throws(SystemCallError) -> Int {
        try retryingEINTR("sendmsg") { unsafe Glibc.sendmsg(fd.rawValue, message, flags) }
    }

    static func read(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int {
        // SAFETY: the caller's buffer is valid for `buffer.count` writable bytes.
        try retryingEINTR("read") { unsafe Glibc.read(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    static func write(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer) throws(SystemCallError) -> Int {
        // SAFETY: the caller's buffer is valid for `buffer.count` readable bytes.
        try retryingEINTR("write") { unsafe Glibc.write(fd.rawValue, buffer.baseAddress, buffer.count) }
    }

    static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) throws(SystemCallError) -> Int32 {
        try retryingEINTR("poll") {
            // SAFETY: poll reads and writes exactly `fds.count` pollfd entries of the buffer.
            unsafe fds.withUnsafeMutableBufferPointer {
                unsafe Glibc.poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds)
            }
        }
    }

    /// A new eventfd with EFD_CLOEXEC | EFD_NONBLOCK and a zero counter.
    static func eventfd() throws(SystemCallError) -> FileDescriptor {
        FileDescriptor(rawValue: try retryingEINTR("eventfd") { vpio_eventfd() })
    }

    static func mmap(
        length: Int, protection: Int32, flags: Int32, _ fd: FileDescriptor, offset: Int64
    ) throws(SystemCallError) -> UnsafeMutableRawPointer {
        // MAP_FAILED is (void *)-1, so the address's bit pattern fits the "-1 on failure" shape.
        // SAFETY: a NULL hint lets the kernel pick fresh address space; nothing is overwritten.
        let address = try retryingEINTR("mmap") {
            Int(bitPattern: unsafe Glibc.mmap(nil, length, protection, flags, fd.rawValue, off_t(offset)))
        }
        // SAFETY: a successful mmap never returns NULL for a non-MAP_FIXED request.
        return unsafe UnsafeMutableRawPointer(bitPattern: address)!
    }

    /// SAFETY (caller): `address` and `length` must be exactly a mapping made by `mmap` that
    /// nothing will touch again.
    static func munmap(_ address: UnsafeMutableRawPointer, length: Int) throws(SystemCallError) {
        _ = try retryingEINTR("munmap") { unsafe Glibc.munmap(address, length) }
    }

    static func open(_ path: FilePath, flags: Int32) throws(SystemCallError) -> FileDescriptor {
        FileDescriptor(rawValue: try retryingEINTR("open") {
            // SAFETY: the C string lives for the duration of the call.
            unsafe path.withPlatformString { unsafe Glibc.open($0, flags) }
        })
    }

    static func lstat(_ path: FilePath) throws(SystemCallError) -> stat {
        var status = stat()
        _ = try retryingEINTR("lstat") {
            // SAFETY: the C string and `status` live for the duration of the call.
            unsafe path.withPlatformString { unsafe Glibc.lstat($0, &status) }
        }
        return status
    }

    static func unlink(_ path: FilePath) throws(SystemCallError) {
        _ = try retryingEINTR("unlink") {
            // SAFETY: the C string lives for the duration of the call.
            unsafe path.withPlatformString { unsafe Glibc.unlink($0) }
        }
    }

    static func fstat(_ fd: FileDescriptor) throws(SystemCallError) -> stat {
        var status = stat()
        // SAFETY: `status` lives for the duration of the call.
        _ = try retryingEINTR("fstat") { unsafe Glibc.fstat(fd.rawValue, &status) }
        return status
    }

    /// A new descriptor for the same open file, close-on-exec.
    static func duplicate(_ fd: FileDescriptor) throws(SystemCallError) -> FileDescriptor {
        FileDescriptor(rawValue: try retryingEINTR("fcntl(F_DUPFD_CLOEXEC)") { Glibc.fcntl(fd.rawValue, F_DUPFD_CLOEXEC, 0) })
    }

    static func pread(_ fd: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int {
        // SAFETY: the caller's buffer is valid for `buffer.count` writable bytes.
        try retryingEINTR("pread") { unsafe Glibc.pread(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    static func pwrite(_ fd: FileDescriptor, from buffer: UnsafeRawBufferPointer, at offset: Int64) throws(SystemCallError) -> Int {
        // SAFETY: the caller's buffer is valid for `buffer.count` readable bytes.
        try retryingEINTR("pwrite") { unsafe Glibc.pwrite(fd.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    static func ftruncate(_ fd: FileDescriptor, length: Int64) throws(SystemCallError) {
        _ = try retryingEINTR("ftruncate") { Glibc.ftruncate(fd.rawValue, off_t(length)) }
    }

    static func memfdCreate(name: String) throws(SystemCallError) -> FileDescriptor {
        // SAFETY: the C string lives for the duration of the call.
        FileDescriptor(rawValue: try retryingEINTR("memfd_create") { unsafe vpio_memfd_create(name) })
    }

    /// TIOCOUTQ: bytes sent on a UNIX stream socket that its peer has not read yet.
    static func unreadSentBytes(_ fd: FileDescriptor) throws(SystemCallError) -> Int {
        Int(try retryingEINTR("ioctl(TIOCOUTQ)") { vpio_unread_sent_bytes(fd.rawValue) })
    }

    /// TUNSETIFF for a TAP without packet information; returns the name the kernel chose.
    static func tunSetTap(_ fd: FileDescriptor, name: String) throws(SystemCallError) -> String {
        var chosen = [CChar](repeating: 0, count: Int(VPIO_IFNAME_MAX) + 1)
        _ = try retryingEINTR("ioctl(TUNSETIFF)") {
            // SAFETY: the shim writes at most VPIO_IFNAME_MAX + 1 bytes, the size of `chosen`.
            unsafe chosen.withUnsafeMutableBufferPointer { unsafe vpio_tunsetiff_tap(fd.rawValue, name, $0.baseAddress) }
        }
        // The shim always NUL-terminates, so decoding stops inside the array.
        return String(decoding: chosen.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Closes `fd`. Not retried on EINTR: Linux releases the descriptor even then, and a retry
    /// could close a descriptor another thread has just been given. Errors are ignored for the
    /// same reason — the descriptor is gone either way.
    static func close(_ fd: FileDescriptor) {
        _ = Glibc.close(fd.rawValue)
    }
}
