import SystemPackage

/// A syscall that failed: which call and its errno.
///
/// Every wrapper in this module throws this for a failure the kernel reported; conditions the
/// wrappers detect themselves (bounds, message framing, names) have their own error types.
public struct SystemCallError: Error, CustomStringConvertible, Equatable {
    /// The syscall's name, e.g. `"recvmsg"`.
    public let call: String
    /// The errno it returned.
    public let errno: Errno

    /// Creates an error for `call` failing with `errno`.
    public init(call: String, errno: Errno) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(errno) (errno \(errno.rawValue))" }
}
