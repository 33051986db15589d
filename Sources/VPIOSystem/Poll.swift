import Glibc
import SystemPackage

/// poll(2) over a few descriptors.
public enum Poll {
    /// Readiness conditions, the bits of `pollfd.events` / `revents`.
    public struct Events: OptionSet, Sendable, Hashable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }

        /// Data can be read without blocking (POLLIN).
        public static let readable = Events(rawValue: Int16(POLLIN))
        /// Data can be written without blocking (POLLOUT).
        public static let writable = Events(rawValue: Int16(POLLOUT))
        /// The peer hung up (POLLHUP); reported whether asked for or not.
        public static let hangup = Events(rawValue: Int16(POLLHUP))
        /// An error condition (POLLERR); reported whether asked for or not.
        public static let error = Events(rawValue: Int16(POLLERR))
        /// The descriptor is not open (POLLNVAL); reported whether asked for or not.
        public static let invalid = Events(rawValue: Int16(POLLNVAL))
    }

    /// Waits until one of `entries` is ready or the timeout passes, and returns the events that
    /// occurred for each entry, in the same order (empty sets on timeout).
    ///
    /// `timeoutMilliseconds` of -1 waits forever. An interrupted wait is retried with the full
    /// timeout, so a signal can lengthen the wait; callers here loop on readiness anyway.
    public static func wait(
        _ entries: [(FileDescriptor, Events)], timeoutMilliseconds: Int32
    ) throws -> [Events] {
        var fds = entries.map { pollfd(fd: $0.0.rawValue, events: $0.1.rawValue, revents: 0) }
        _ = try Syscall.poll(&fds, timeoutMilliseconds: timeoutMilliseconds)
        return fds.map { Events(rawValue: $0.revents) }
    }
}

/// A poll(2) set for a loop that polls once per round: its entries are rebuilt each round in storage
/// kept between rounds, so a round allocates nothing (`Poll.wait` builds two arrays per call).
public struct PollSet {
    private var entries: [pollfd] = []

    public init() {}

    public var count: Int { entries.count }

    /// Empties the set, keeping its storage.
    public mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
    }

    public mutating func append(_ descriptor: FileDescriptor, _ events: Poll.Events) {
        entries.append(pollfd(fd: descriptor.rawValue, events: events.rawValue, revents: 0))
    }

    /// Waits like `Poll.wait`; afterwards `events(at:)` gives what occurred for each entry (empty sets
    /// on timeout).
    public mutating func wait(timeoutMilliseconds: Int32) throws {
        for index in entries.indices { entries[index].revents = 0 }
        _ = try Syscall.poll(&entries, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The events that occurred for entry `index` in the last `wait`.
    public func events(at index: Int) -> Poll.Events {
        Poll.Events(rawValue: entries[index].revents)
    }
}
