import Glibc
import SystemPackage

/// A Linux eventfd: a counter the kernel can wait on, used for interrupts to and from a peer.
///
/// Created with EFD_CLOEXEC | EFD_NONBLOCK, or adopted from a descriptor a peer sent. It only
/// closes its descriptor on deinit, so one instance can be shared between threads.
public final class EventFD: Sendable {
    /// The eventfd; valid for the object's lifetime.
    public let descriptor: FileDescriptor

    /// Creates a new eventfd with a zero counter.
    public init() throws {
        descriptor = try Syscall.eventfd()
    }

    /// Adopts an eventfd received from a peer, taking its descriptor out of `adopting`.
    ///
    /// The descriptor's flags are left as the peer set them, since O_NONBLOCK is shared with the
    /// peer's copy; `drain()` copes with a blocking one.
    public init(adopting owned: OwnedDescriptor) {
        descriptor = owned.take()
    }

    deinit {
        Syscall.close(descriptor)
    }

    /// The counter cannot take the value now: a blocking eventfd adopted from a peer would block.
    public struct WouldBlock: Error, Equatable { public init() {} }

    /// Adds `value` to the counter (an 8-byte write), waking anyone polling the eventfd.
    ///
    /// Polls for writability first, so that a blocking eventfd a peer filled near its maximum cannot
    /// stall the caller: it throws `WouldBlock` instead.
    public func signal(_ value: UInt64 = 1) throws {
        let ready = try Poll.wait([(descriptor, .writable)], timeoutMilliseconds: 0)
        guard ready[0].contains(.writable) else { throw WouldBlock() }
        // SAFETY: the raw view of `value` is copied out before the closure returns; the write's
        // buffer is the array's own 8 bytes for the duration of the call. An eventfd write
        // either takes all 8 bytes or fails, so the count need not be checked.
        let counter = unsafe withUnsafeBytes(of: value) { unsafe Array($0) }
        _ = try unsafe counter.withUnsafeBytes { try unsafe Syscall.write(descriptor, from: $0) }
    }

    /// Reads and resets the counter; returns 0 if nothing is pending.
    ///
    /// Polls first so that a blocking eventfd adopted from a peer does not block here. On a
    /// non-blocking eventfd, a read that still finds nothing (another reader won) returns 0 too.
    public func drain() throws -> UInt64 {
        let ready = try Poll.wait([(descriptor, .readable)], timeoutMilliseconds: 0)
        guard ready[0].contains(.readable) else { return 0 }
        var counter = [UInt8](repeating: 0, count: MemoryLayout<UInt64>.size)
        do {
            // SAFETY: the buffer is the array's own 8 bytes for the duration of the call; an
            // eventfd read either fills all 8 or fails.
            _ = try unsafe counter.withUnsafeMutableBytes { try unsafe Syscall.read(descriptor, into: $0) }
        } catch let error as SystemCallError where error.errno == .wouldBlock {
            return 0
        }
        // SAFETY: `counter` holds exactly the 8 bytes of a UInt64.
        return unsafe counter.withUnsafeBytes { unsafe $0.loadUnaligned(as: UInt64.self) }
    }
}
