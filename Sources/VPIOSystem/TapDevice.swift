import Glibc
import CVPIOShim
import SystemPackage

/// A TAP interface (IFF_TAP | IFF_NO_PI) opened from /dev/net/tun, non-blocking and
/// close-on-exec. Each read or write is one whole Ethernet frame.
///
/// The interface lives as long as the descriptor, which is closed on deinit; it keeps working
/// after the interface is moved to another network namespace.
public final class TapDevice: Sendable {
    /// An interface name the kernel would not accept as given.
    public struct InvalidName: Error, Equatable, CustomStringConvertible {
        /// The name as requested.
        public let name: String

        public init(name: String) {
            self.name = name
        }

        public var description: String {
            "TAP name '\(name)' must be 1 to \(VPIO_IFNAME_MAX) bytes without NUL or '/'"
        }
    }

    /// The interface name the kernel assigned (the requested one, or a %d pattern filled in).
    public let name: String
    /// The tap's descriptor; valid for the object's lifetime.
    public let descriptor: FileDescriptor

    private init(name: String, descriptor: FileDescriptor) {
        self.name = name
        self.descriptor = descriptor
    }

    deinit {
        Syscall.close(descriptor)
    }

    /// Creates (or attaches to) the TAP interface `name`. Needs CAP_NET_ADMIN.
    ///
    /// Throws `InvalidName` for an empty name, one over 15 bytes, or one with NUL or '/';
    /// `SystemCallError` if /dev/net/tun cannot be opened or TUNSETIFF fails.
    public static func create(name: String) throws -> TapDevice {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= Int(VPIO_IFNAME_MAX), !bytes.contains(0), !bytes.contains(UInt8(ascii: "/"))
        else { throw InvalidName(name: name) }
        let tun = OwnedDescriptor(try Syscall.open("/dev/net/tun", flags: O_RDWR | O_NONBLOCK | O_CLOEXEC))
        let chosen = try Syscall.tunSetTap(tun.descriptor, name: name)
        return TapDevice(name: chosen, descriptor: tun.take())
    }

    /// Reads one pending frame (truncated to `maxLength` bytes); nil if none is pending.
    public func readFrame(maxLength: Int = 65536) throws -> [UInt8]? {
        var frame = [UInt8](repeating: 0, count: maxLength)
        let length: Int
        do {
            // SAFETY: the read fills at most `frame.count` bytes of the array's own buffer.
            length = try unsafe frame.withUnsafeMutableBytes { try unsafe Syscall.read(descriptor, into: $0) }
        } catch let error as SystemCallError where error.errno == .wouldBlock {
            return nil
        }
        frame.removeSubrange(length...)
        return frame
    }

    /// Writes one frame. The tun driver takes a frame whole or fails, so there is no short
    /// write to loop over.
    public func writeFrame(_ frame: [UInt8]) throws {
        // SAFETY: the write reads at most `frame.count` bytes of the array's own buffer.
        _ = try unsafe frame.withUnsafeBytes { try unsafe Syscall.write(descriptor, from: $0) }
    }
}
