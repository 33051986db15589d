import SystemPackage

/// A descriptor this process owns; closed on deinit unless `take()` was called.
///
/// Descriptors received with SCM_RIGHTS arrive wrapped in this, so any the caller does not claim
/// (an unexpected extra fd, a request rejected after parsing) are closed rather than leaked.
public final class OwnedDescriptor {
    private var owned: FileDescriptor?

    /// Takes ownership of `fd`.
    public init(_ fd: FileDescriptor) {
        owned = fd
    }

    deinit {
        close()
    }

    /// The descriptor. Precondition: not taken or closed.
    public var descriptor: FileDescriptor {
        guard let owned else { preconditionFailure("OwnedDescriptor used after take() or close()") }
        return owned
    }

    /// The descriptor's number. Precondition: not taken or closed.
    public var rawValue: Int32 { descriptor.rawValue }

    /// Whether this still owns a descriptor (neither taken nor closed).
    public var isOwned: Bool { owned != nil }

    /// Gives up ownership: the caller must close the descriptor. Precondition: not taken or closed.
    public func take() -> FileDescriptor {
        let fd = descriptor
        owned = nil
        return fd
    }

    /// Closes the descriptor now; does nothing if already taken or closed.
    public func close() {
        guard let fd = owned else { return }
        owned = nil
        Syscall.close(fd)
    }

    /// Creates an anonymous shared-memory file (memfd, close-on-exec) of `length` zero bytes,
    /// as a guest-RAM stand-in for tests or for handing memory to a peer.
    public static func memoryFile(name: String, length: Int64) throws -> OwnedDescriptor {
        let file = OwnedDescriptor(try Syscall.memfdCreate(name: name))
        try Syscall.ftruncate(file.descriptor, length: length)
        return file
    }
}
