import Glibc

/// systemd's readiness protocol (sd_notify(3)) without libsystemd: under a `Type=notify` unit, systemd
/// puts a datagram socket's path in `$NOTIFY_SOCKET`; `READY=1` sent there ends `systemctl start`, so
/// units ordered after the agent start only once its probes are attached and its ring registered.
/// Outside systemd (no variable) every call does nothing.
public struct ServiceNotifier: Sendable {
    /// The socket address: a path, or an abstract name when the variable starts with `@`.
    let socketPath: [UInt8]?

    public init(environmentValue: String? = ProcessEnvironment.value("NOTIFY_SOCKET")) {
        guard let value = environmentValue, value.hasPrefix("/") || value.hasPrefix("@"), value.utf8.count < 108 else {
            socketPath = nil
            return
        }
        var bytes = Array(value.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        socketPath = bytes
    }

    public var isActive: Bool { socketPath != nil }

    /// Sends `state` (newline-separated `KEY=VALUE` lines); false when it could not be sent.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // SAFETY: sun_path is 108 bytes and socketPath is shorter (checked in init); the copy stays
        // inside the struct, which lives for the whole call.
        unsafe withUnsafeMutableBytes(of: &address.sun_path) { path in
            unsafe path.copyBytes(from: socketPath)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + socketPath.count)
        let message = Array(state.utf8)
        // SAFETY: `message` and `address` are valid for their sizes during the call.
        let sent = unsafe message.withUnsafeBytes { body in
            unsafe withUnsafePointer(to: &address) { pointer in
                unsafe pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), $0, length) }
            }
        }
        return sent == message.count
    }
}

/// An environment variable, copied.
public enum ProcessEnvironment {
    public static func value(_ name: String) -> String? {
        // SAFETY: getenv's result is a NUL-terminated string in the environment, copied at once.
        unsafe getenv(name).map { unsafe String(cString: $0) }
    }
}
