import Foundation
import Supervision

/// A private network namespace for one run: the guest's peer lives here, on a TAP, with no default route
/// and no forwarding, so traffic never leaves this machine.
///
/// Names are `vpio-<pid>` where pid is the creating process; `removeStale()` deletes those whose creator is
/// gone (the crash-recovery path: call it at the start of every run). All changes go through `ip` (iproute2).
public struct NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    public static let namePrefix = "vpio-"

    /// The namespace name (as in `ip netns list`).
    public let name: String

    public var description: String { name }

    /// A handle on an existing namespace (nothing is created).
    public init(existing name: String) { self.name = name }

    /// A handle on an existing namespace (nothing is created); the same as `init(existing:)`.
    public init(name: String) { self.name = name }

    /// `vpio-<pid>`.
    public static func name(forPID pid: pid_t = getpid()) -> String { "\(namePrefix)\(pid)" }

    /// The pid encoded in a `vpio-<pid>` name, or nil for other names.
    public static func creatorPID(ofName name: String) -> pid_t? {
        guard name.hasPrefix(namePrefix) else { return nil }
        return pid_t(name.dropFirst(namePrefix.count))
    }

    /// Creates the namespace (`ip netns add`), brings `lo` up and turns forwarding off inside.
    /// Fails if a namespace of that name exists already.
    public static func create(name: String = NetworkNamespace.name()) throws -> NetworkNamespace {
        try IPCommand.run(["netns", "add", name], step: "create network namespace \(name)")
        let namespace = NetworkNamespace(existing: name)
        do {
            try IPCommand.run(["-n", name, "link", "set", "lo", "up"], step: "bring lo up in \(name)")
            try namespace.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], step: "disable forwarding in \(name)")
        } catch {
            try? namespace.delete()
            throw error
        }
        return namespace
    }

    /// Moves `link` from the caller's namespace into this one (`ip link set LINK netns NAME`).
    public func adoptLink(_ link: String) throws {
        try IPCommand.run(["link", "set", link, "netns", name], step: "move \(link) into \(name)")
    }

    /// Moves `link` into the namespace, gives it `address` (CIDR) if one is given, turns IPv6 off on it
    /// (no router solicitations on the wire) and brings it up: what a TAP for the guest's peer needs.
    public func adopt(link: String, address: String?) throws {
        try adoptLink(link)
        try configure(link: link, address: address)
    }

    /// Gives `link` (already inside) `address` (CIDR) if one is given, turns IPv6 off on it and brings it up.
    public func configure(link: String, address: String?) throws {
        if let address { try addAddress(address, to: link) }
        _ = try? run(["sysctl", "-qw", "net.ipv6.conf.\(link).disable_ipv6=1"], step: "disable IPv6 on \(link)")
        try setLinkUp(link)
    }

    /// Creates a persistent TAP device inside the namespace (`ip tuntap add … mode tap`); a QEMU started
    /// inside the namespace attaches to it with `-netdev tap,ifname=LINK,script=no,downscript=no`.
    public func addTap(_ link: String) throws {
        try IPCommand.run(["-n", name, "tuntap", "add", "dev", link, "mode", "tap"], step: "create TAP \(link) in \(name)")
    }

    /// Adds an address (CIDR, e.g. `10.77.0.1/24`) to `link` inside the namespace.
    public func addAddress(_ cidr: String, to link: String) throws {
        try IPCommand.run(["-n", name, "addr", "add", cidr, "dev", link], step: "add \(cidr) to \(link) in \(name)")
    }

    /// Brings `link` up inside the namespace.
    public func setLinkUp(_ link: String) throws {
        try IPCommand.run(["-n", name, "link", "set", link, "up"], step: "bring \(link) up in \(name)")
    }

    /// The argv prefix that runs a program inside the namespace (`ip netns exec NAME`); `ip` execs the
    /// program, so the started process's pid is the program's.
    public var execPrefix: [String] { [IPCommand.path, "netns", "exec", name] }

    /// Runs `argv` inside the namespace to completion; returns its output, throws on a non-zero exit.
    @discardableResult
    public func run(_ argv: [String], step: String) throws -> String {
        try IPCommand.runAbsolute(execPrefix + argv, step: step)
    }

    /// The pids of processes inside the namespace (`ip netns pids`).
    public func pids() -> [pid_t] {
        let output = (try? IPCommand.run(["netns", "pids", name], step: "list pids in \(name)")) ?? ""
        return output.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
    }

    /// Ends every process inside (SIGTERM, then SIGKILL after `grace` seconds) and deletes the namespace;
    /// its TAP devices go with it. Deleting a namespace that no longer exists is not an error.
    public func delete(grace: TimeInterval = 2) throws {
        guard Self.list().contains(name) else { return }
        var remaining = pids()
        for pid in remaining { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while !remaining.isEmpty, Date() < deadline {
            usleep(50_000)
            remaining = remaining.filter { Self.isAlive($0) }
        }
        for pid in remaining { kill(pid, SIGKILL) }
        for pid in pids() { kill(pid, SIGKILL) }
        try IPCommand.run(["netns", "del", name], step: "delete network namespace \(name)")
    }

    /// The names from `ip netns list`.
    public static func list() -> [String] {
        let output = (try? IPCommand.run(["netns", "list"], step: "list network namespaces")) ?? ""
        // Lines look like "vpio-123 (id: 0)" or "vpio-123".
        return output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Deletes every `vpio-<pid>` namespace whose creating process is gone. Returns the deleted names.
    @discardableResult
    public static func removeStale() -> [String] {
        var removed: [String] = []
        for name in list() {
            guard let pid = creatorPID(ofName: name), !isAlive(pid) else { continue }
            if (try? NetworkNamespace(existing: name).delete()) != nil { removed.append(name) }
        }
        return removed
    }

    /// Whether `pid` names a live process (zombies count as gone).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) != 0 && errno != EPERM { return false }
        // A zombie still answers kill(0); its /proc stat state is 'Z'.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
            return state != "Z" && state != "X"
        }
        return true
    }
}

/// Runs iproute2's `ip` and friends to completion.
enum IPCommand {
    static let path: String = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "ip"

    @discardableResult
    static func run(_ arguments: [String], step: String) throws -> String {
        try runAbsolute([path] + arguments, step: step)
    }

    /// Runs `argv` (argv[0] an absolute path, or a name looked up by /usr/bin/env) and captures its output.
    @discardableResult
    static func runAbsolute(_ argv: [String], step: String) throws -> String {
        let command = argv[0].hasPrefix("/") ? argv : ["/usr/bin/env"] + argv
        let path = (ProcessInfo.processInfo.environment["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/sbin:/usr/bin:/bin"
        return try ChildProcess.run(command, step: step, environment: ["PATH": path])
    }
}
