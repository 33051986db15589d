import Glibc
import CVPIOShim
import SystemPackage

/// A connected or listening AF_UNIX SOCK_STREAM socket (close-on-exec), with SCM_RIGHTS
/// descriptor passing. Closed on deinit.
public final class UnixSocket {
    /// A socket path that cannot be used.
    public enum AddressError: Error, Equatable, CustomStringConvertible {
        /// Empty, or longer than `limit` bytes (what `sun_path` holds).
        case invalidPath(FilePath, limit: Int)
        /// `listen` found something other than a socket at the path and left it alone.
        case notASocket(FilePath)
        /// `listen` found a socket at the path that a live listener still answers.
        case inUse(FilePath)

        public var description: String {
            switch self {
            case let .invalidPath(path, limit): "socket path '\(path)' is empty or longer than \(limit) bytes"
            case let .notASocket(path): "'\(path)' exists and is not a socket; not replacing it"
            case let .inUse(path): "'\(path)' is a socket another process is listening on"
            }
        }
    }

    /// A message that could not be received whole or acceptably.
    public enum ReceiveError: Error, Equatable, CustomStringConvertible {
        /// The peer closed the stream after `received` of the `expected` bytes.
        case endOfStream(received: Int, expected: Int)
        /// The message arrived whole (`bytes`) but with more descriptors than allowed; all of
        /// them were closed. The stream is still in sync, so the caller can reject the message
        /// and go on. `received` is a lower bound if the kernel had to drop some.
        case tooManyDescriptors(bytes: [UInt8], received: Int, limit: Int)

        public var description: String {
            switch self {
            case let .endOfStream(received, expected):
                "peer closed the stream after \(received) of \(expected) bytes"
            case let .tooManyDescriptors(_, received, limit):
                "message carried \(received) descriptors, at most \(limit) allowed; closed them"
            }
        }
    }

    /// Most descriptors Linux passes in one message (SCM_MAX_FD). The receive control buffer has
    /// room for this many, so an excess is seen and closed here rather than dropped unseen.
    static let maxDescriptorsPerMessage = 253

    private let owned: OwnedDescriptor
    /// The control buffer every receive hands the kernel, made at the first receive and kept: room for
    /// `maxDescriptorsPerMessage` descriptors is about 1 KiB, too much to allocate and zero per
    /// message. 8-byte words keep it aligned for cmsghdr. Receives on one socket therefore must not
    /// run on two threads at once (sending from another thread is fine).
    private var receiveControl: [UInt64] = []

    private init(_ fd: FileDescriptor) {
        owned = OwnedDescriptor(fd)
    }

    private static let streamType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)

    /// Binds and listens on `path`.
    ///
    /// A socket file left by a dead listener is removed first; a path holding anything else, or
    /// a socket someone still listens on, is refused (`AddressError`). Liveness is probed by
    /// connecting, so a live listener is handed one connection that is already closed.
    public static func listen(at path: FilePath, backlog: Int32 = 4) throws -> UnixSocket {
        let address = try SocketAddressUnix(path)
        try removeStaleSocket(at: path, address: address)
        let socket = UnixSocket(try Syscall.socket(domain: AF_UNIX, type: streamType))
        try Syscall.bind(socket.descriptor, address)
        try Syscall.listen(socket.descriptor, backlog: backlog)
        return socket
    }

    private static func removeStaleSocket(at path: FilePath, address: SocketAddressUnix) throws {
        let status: stat
        do {
            status = try Syscall.lstat(path)
        } catch where error.errno == .noSuchFileOrDirectory {
            return
        }
        guard status.st_mode & S_IFMT == S_IFSOCK else { throw AddressError.notASocket(path) }
        // Only a refused connection proves the socket is stale.
        let probe = UnixSocket(try Syscall.socket(domain: AF_UNIX, type: streamType))
        do {
            try Syscall.connect(probe.descriptor, address)
        } catch where error.errno == .connectionRefused {
            try Syscall.unlink(path)
            return
        }
        throw AddressError.inUse(path)
    }

    /// Connects to a listening socket at `path`.
    public static func connect(to path: FilePath) throws -> UnixSocket {
        let address = try SocketAddressUnix(path)
        let socket = UnixSocket(try Syscall.socket(domain: AF_UNIX, type: streamType))
        try Syscall.connect(socket.descriptor, address)
        return socket
    }

    /// A connected pair, e.g. for tests or for handing one end to a child.
    public static func pair() throws -> (UnixSocket, UnixSocket) {
        let (a, b) = try Syscall.socketpair(domain: AF_UNIX, type: streamType)
        return (UnixSocket(a), UnixSocket(b))
    }

    /// Waits for and returns the next connection on a listening socket.
    public func accept() throws -> UnixSocket {
        UnixSocket(try Syscall.accept(descriptor))
    }

    /// The socket's descriptor. Precondition: not closed.
    public var descriptor: FileDescriptor { owned.descriptor }

    /// Closes the socket now; does nothing if already closed.
    public func close() {
        owned.close()
    }

    /// Reads exactly `count` bytes, looping over short reads and retrying EINTR, and collects
    /// the SCM_RIGHTS descriptors that arrive with them (close-on-exec; closed on deinit unless
    /// taken).
    ///
    /// Returns nil on a clean end of stream before the first byte (and for `count` 0 reads
    /// nothing). Throws `ReceiveError.endOfStream` on an end of stream mid-message, and
    /// `ReceiveError.tooManyDescriptors` — after reading the whole message and closing every
    /// descriptor — if more than `maxDescriptors` arrived.
    public func receiveExactly(
        _ count: Int, maxDescriptors: Int
    ) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])? {
        precondition(count >= 0 && maxDescriptors >= 0, "negative count or descriptor limit")
        var bytes = [UInt8](repeating: 0, count: count)
        var descriptors: [OwnedDescriptor] = []
        var droppedByKernel = false
        var received = 0
        while received < count {
            // SAFETY: the data buffer is the unfilled tail of `bytes`, borrowed only for this call.
            let chunk = try unsafe bytes.withUnsafeMutableBytes { data in
                try unsafe receiveChunk(into: UnsafeMutableRawBufferPointer(rebasing: data[received...]), waiting: true)
            }
            // Only a socket someone made non-blocking behind our back says EAGAIN to a waiting recvmsg.
            guard let chunk else { throw SystemCallError(call: "recvmsg", errno: .wouldBlock) }
            descriptors += chunk.descriptors
            droppedByKernel = droppedByKernel || chunk.controlTruncated
            if chunk.byteCount == 0 {
                if received == 0 { return nil }
                throw ReceiveError.endOfStream(received: received, expected: count)
            }
            received += chunk.byteCount
        }
        if descriptors.count > maxDescriptors || droppedByKernel {
            let receivedCount = descriptors.count + (droppedByKernel ? 1 : 0)
            descriptors.forEach { $0.close() }
            throw ReceiveError.tooManyDescriptors(bytes: bytes, received: receivedCount, limit: maxDescriptors)
        }
        return (bytes, descriptors)
    }

    /// One recvmsg of at most `maxBytes`, without waiting (MSG_DONTWAIT): whatever the stream has
    /// now, with the descriptors that came with it — empty when nothing is there, nil at the end of
    /// stream. For framing protocols that read ahead from a poll loop: on a stream socket, data that
    /// carries descriptors is never merged with the data after it, so descriptors stay with their
    /// message. Throws `ReceiveError.tooManyDescriptors` (after closing them all) above `maxDescriptors`.
    public func receiveAvailable(
        maxBytes: Int, maxDescriptors: Int
    ) throws -> (bytes: [UInt8], descriptors: [OwnedDescriptor])? {
        var bytes: [UInt8] = []
        guard let descriptors = try receiveAvailable(appendingTo: &bytes, maxBytes: maxBytes, maxDescriptors: maxDescriptors) else {
            return nil
        }
        return (bytes, descriptors)
    }

    /// `receiveAvailable(maxBytes:maxDescriptors:)` into the caller's buffer: appends what arrived to
    /// `buffer` and returns its descriptors (empty when nothing arrived), or nil at the end of stream.
    /// A buffer with room for `maxBytes` more keeps its storage, so a framing loop that reuses one
    /// buffer allocates nothing per receive. When it throws, `buffer` is as it was.
    public func receiveAvailable(
        appendingTo buffer: inout [UInt8], maxBytes: Int, maxDescriptors: Int
    ) throws -> [OwnedDescriptor]? {
        precondition(maxBytes > 0 && maxDescriptors >= 0, "non-positive size or negative descriptor limit")
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: maxBytes))
        let chunk: (byteCount: Int, descriptors: [OwnedDescriptor], controlTruncated: Bool)?
        do {
            // SAFETY: the data buffer is the `maxBytes` just appended to `buffer`, borrowed only for this call.
            chunk = try unsafe buffer.withUnsafeMutableBytes { data in
                try unsafe receiveChunk(into: UnsafeMutableRawBufferPointer(rebasing: data[start...]), waiting: false)
            }
        } catch {
            buffer.removeSubrange(start...)
            throw error
        }
        buffer.removeSubrange((start + (chunk?.byteCount ?? 0))...)
        guard let chunk else { return [] }
        if chunk.byteCount == 0 {
            chunk.descriptors.forEach { $0.close() }
            return nil
        }
        if chunk.descriptors.count > maxDescriptors || chunk.controlTruncated {
            let receivedCount = chunk.descriptors.count + (chunk.controlTruncated ? 1 : 0)
            chunk.descriptors.forEach { $0.close() }
            let bytes = Array(buffer[start...])
            buffer.removeSubrange(start...)
            throw ReceiveError.tooManyDescriptors(bytes: bytes, received: receivedCount, limit: maxDescriptors)
        }
        return chunk.descriptors
    }

    /// One recvmsg into `data`, with the socket's own control buffer, returning the byte count and the
    /// descriptors it carried; when not `waiting` (MSG_DONTWAIT), nil if nothing is there to receive.
    ///
    /// SAFETY (caller): `data` must be valid, writable, and not otherwise accessed for the duration
    /// of the call.
    private func receiveChunk(
        into data: UnsafeMutableRawBufferPointer, waiting: Bool
    ) throws -> (byteCount: Int, descriptors: [OwnedDescriptor], controlTruncated: Bool)? {
        if receiveControl.isEmpty {
            let controlLength = vpio_cmsg_space(Self.maxDescriptorsPerMessage * MemoryLayout<Int32>.size)
            receiveControl = [UInt64](repeating: 0, count: (controlLength + 7) / 8)
        }
        // SAFETY: `receiveControl` is an aligned array this socket owns, borrowed only for this call;
        // the kernel writes at most its count.
        return try unsafe receiveControl.withUnsafeMutableBytes { control in
            try unsafe receiveChunk(into: data, control: control, waiting: waiting)
        }
    }

    /// One recvmsg into `data` and `control`.
    ///
    /// SAFETY (caller): `data` and `control` must be valid, writable, and not otherwise accessed
    /// for the duration of the call; `control` must be aligned for cmsghdr.
    private func receiveChunk(
        into data: UnsafeMutableRawBufferPointer, control: UnsafeMutableRawBufferPointer, waiting: Bool
    ) throws(SystemCallError) -> (byteCount: Int, descriptors: [OwnedDescriptor], controlTruncated: Bool)? {
        var vector = unsafe iovec(iov_base: data.baseAddress, iov_len: data.count)
        var message = unsafe msghdr()
        // SAFETY: `vector` outlives the recvmsg call below, which is the only use of the pointer.
        let byteCount = try unsafe withUnsafeMutablePointer(to: &vector) { vectorPointer throws(SystemCallError) -> Int? in
            unsafe message.msg_iov = vectorPointer
            unsafe message.msg_iovlen = 1
            unsafe message.msg_control = control.baseAddress
            unsafe message.msg_controllen = control.count
            // SAFETY: `message` points only at `vector` (alive here) and the caller's writable
            // `data` and `control`. MSG_CMSG_CLOEXEC: received fds must not leak into children.
            let flags = Int32(MSG_CMSG_CLOEXEC) | (waiting ? 0 : Int32(MSG_DONTWAIT))
            do throws(SystemCallError) {
                return try unsafe Syscall.recvmsg(descriptor, &message, flags: flags)
            } catch where error.errno == .wouldBlock {
                return nil
            }
        }
        guard let byteCount else { return nil }
        // Each descriptor is wrapped as soon as it is seen, so every one is closed unless claimed.
        var descriptors: [OwnedDescriptor] = []
        // SAFETY: the kernel filled `message.msg_controllen` bytes of `control` with well-formed
        // cmsghdrs; the CMSG_* shim walks them without leaving that range, and each SCM_RIGHTS
        // payload holds (cmsg_len - CMSG_LEN(0)) / 4 ints.
        var header = unsafe vpio_cmsg_firsthdr(&message)
        while let current = unsafe header {
            if unsafe current.pointee.cmsg_level == SOL_SOCKET,
               unsafe current.pointee.cmsg_type == Int32(SCM_RIGHTS) {
                let payloadLength = unsafe current.pointee.cmsg_len - vpio_cmsg_len(0)
                let data = unsafe UnsafeRawPointer(vpio_cmsg_data(current)!)
                for index in 0..<payloadLength / MemoryLayout<Int32>.size {
                    let raw = unsafe data.loadUnaligned(fromByteOffset: index * MemoryLayout<Int32>.size, as: Int32.self)
                    descriptors.append(OwnedDescriptor(FileDescriptor(rawValue: raw)))
                }
            }
            unsafe header = vpio_cmsg_nxthdr(&message, current)
        }
        // SAFETY: msg_flags is a plain int the kernel set; no pointer is followed.
        let truncated = unsafe message.msg_flags & Int32(MSG_CTRUNC) != 0
        return (byteCount, descriptors, truncated)
    }

    /// Sends all of `bytes`, looping over short writes and retrying EINTR, with `descriptors`
    /// attached (SCM_RIGHTS) to the first chunk. Uses MSG_NOSIGNAL, so a closed peer is an
    /// EPIPE error rather than a SIGPIPE. The caller keeps ownership of `descriptors`.
    ///
    /// Precondition: descriptors need at least one byte to travel with.
    public func send(_ bytes: [UInt8], descriptors: [FileDescriptor] = []) throws {
        precondition(descriptors.isEmpty || !bytes.isEmpty, "descriptors need at least one byte to travel with")
        let payloadLength = descriptors.count * MemoryLayout<Int32>.size
        let controlLength = descriptors.isEmpty ? 0 : vpio_cmsg_space(payloadLength)
        // 8-byte words keep the control buffer aligned for cmsghdr; zeroed so padding is clean.
        var control = [UInt64](repeating: 0, count: (controlLength + 7) / 8)
        var sent = 0
        while sent < bytes.count {
            let attach = sent == 0 && !descriptors.isEmpty
            // SAFETY: both buffers are borrowed only for this call; `sendChunk` reads at most
            // their counts.
            sent += try unsafe bytes.withUnsafeBytes { data in
                try unsafe control.withUnsafeMutableBytes { controlBytes in
                    try unsafe sendChunk(
                        UnsafeRawBufferPointer(rebasing: data[sent...]),
                        control: attach ? UnsafeMutableRawBufferPointer(rebasing: controlBytes[..<controlLength]) : nil,
                        descriptors: descriptors)
                }
            }
        }
    }

    /// One sendmsg of as much of `bytes` as the socket takes now, without waiting (MSG_DONTWAIT),
    /// and without descriptors; returns how many bytes it took (0 when the send buffer is full).
    /// MSG_NOSIGNAL: a closed peer is an EPIPE error, not a SIGPIPE.
    /// Bytes this end sent that the peer has not read yet (a stream socket's TIOCOUTQ).
    public func unreadSentBytes() throws -> Int {
        try Syscall.unreadSentBytes(descriptor)
    }

    public func sendAvailable(_ bytes: ArraySlice<UInt8>) throws -> Int {
        guard !bytes.isEmpty else { return 0 }
        do {
            // SAFETY: the slice's storage is borrowed only for this call; sendChunk reads at most its count.
            return try unsafe bytes.withUnsafeBytes { data in
                try unsafe sendChunk(data, control: nil, descriptors: [], flags: Int32(MSG_DONTWAIT))
            }
        } catch let error as SystemCallError where error.errno == .wouldBlock {
            return 0
        }
    }

    /// One sendmsg of `data`, with `descriptors` in `control` when it is given.
    ///
    /// SAFETY (caller): `data` and `control` must be valid for the duration of the call;
    /// `control` must be aligned for cmsghdr and exactly CMSG_SPACE of the descriptors' size.
    private func sendChunk(
        _ data: UnsafeRawBufferPointer, control: UnsafeMutableRawBufferPointer?, descriptors: [FileDescriptor],
        flags: Int32 = 0
    ) throws(SystemCallError) -> Int {
        var vector = unsafe iovec(iov_base: UnsafeMutableRawPointer(mutating: data.baseAddress), iov_len: data.count)
        var message = unsafe msghdr()
        // SAFETY: `vector` outlives the sendmsg call, the only use of the pointer; sendmsg does
        // not write through iov_base despite its mutable type.
        return try unsafe withUnsafeMutablePointer(to: &vector) { vectorPointer throws(SystemCallError) in
            unsafe message.msg_iov = vectorPointer
            unsafe message.msg_iovlen = 1
            if let control = unsafe control {
                unsafe message.msg_control = control.baseAddress
                unsafe message.msg_controllen = control.count
                // SAFETY: `control` is CMSG_SPACE(payload) bytes, so the first header and its
                // payload of descriptors.count ints fit inside it.
                let header = unsafe vpio_cmsg_firsthdr(&message)!
                unsafe header.pointee.cmsg_level = SOL_SOCKET
                unsafe header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                unsafe header.pointee.cmsg_len = vpio_cmsg_len(descriptors.count * MemoryLayout<Int32>.size)
                let payload = unsafe UnsafeMutableRawPointer(vpio_cmsg_data(header)!)
                for (index, fd) in descriptors.enumerated() {
                    unsafe payload.storeBytes(of: fd.rawValue, toByteOffset: index * MemoryLayout<Int32>.size, as: Int32.self)
                }
            }
            // SAFETY: `message` points only at `vector` (alive here), the caller's `data` and
            // the filled `control`.
            return try unsafe Syscall.sendmsg(descriptor, &message, flags: Int32(MSG_NOSIGNAL) | flags)
        }
    }
}
