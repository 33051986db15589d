/// Why a message could not be decoded. Each maps to the errno the server replies with.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the layout needs.
    case truncated(needed: Int, available: Int)
    /// The header's size field is below the header size or above what the server accepts.
    case badMessageSize(UInt32)
    /// A field holds a value the protocol does not allow.
    case invalidField(String)

    public var description: String {
        switch self {
        case let .truncated(needed, available): "truncated: need \(needed) bytes, have \(available)"
        case let .badMessageSize(size): "bad message size \(size)"
        case let .invalidField(what): "invalid field: \(what)"
        }
    }

    /// The errno a reply carries for this rejection.
    public var errno: UInt32 { Errno.EINVAL }
}

/// The few errno values the protocol's error replies use (Linux numbering, as on the wire).
public enum Errno {
    public static let ENOENT: UInt32 = 2
    public static let EIO: UInt32 = 5
    public static let EFAULT: UInt32 = 14
    public static let EBUSY: UInt32 = 16
    public static let EEXIST: UInt32 = 17
    public static let EINVAL: UInt32 = 22
    public static let ENOSPC: UInt32 = 28
    public static let ENOSYS: UInt32 = 38
    public static let ENOTSUP: UInt32 = 95
}
