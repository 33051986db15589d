import Glibc
import SystemPackage

/// A filled-in `sockaddr_un` for a filesystem path.
struct SocketAddressUnix {
    private let address: sockaddr_un

    /// Longest path that fits in `sun_path` with its terminating NUL.
    static let maxPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    init(_ path: FilePath) throws(UnixSocket.AddressError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // SAFETY: the C string is valid for the closure; `length` bytes of it are copied into
        // `sun_path` only after checking they leave room for the NUL the zeroed tail provides.
        let fits = unsafe path.withPlatformString { cPath in
            let length = unsafe strlen(cPath)
            guard length > 0, length <= Self.maxPathLength else { return false }
            unsafe withUnsafeMutableBytes(of: &address.sun_path) { sunPath in
                unsafe sunPath.copyMemory(from: UnsafeRawBufferPointer(start: cPath, count: length))
            }
            return true
        }
        guard fits else { throw .invalidPath(path, limit: Self.maxPathLength) }
        self.address = address
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var copy = address
        // SAFETY: sockaddr_un starts with the sockaddr header, so viewing it as sockaddr for the
        // duration of the call is what the sockets API expects.
        return unsafe withUnsafePointer(to: &copy) { pointer in
            unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unsafe body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
