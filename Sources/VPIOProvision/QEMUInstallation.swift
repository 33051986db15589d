import Foundation

/// A QEMU that can run the vfio-user client (`vfio-user-pci`, QEMU >= 10.1): either the host's
/// `qemu-system-x86_64` or the one installed into the cache's trixie tree, run through the tree's own
/// dynamic loader (no chroot).
public struct QEMUInstallation: Sendable, Equatable, CustomStringConvertible {
    public enum Source: Sendable, Equatable {
        /// A `qemu-system-x86_64` found on the host.
        case host(binary: String)
        /// `qemu-system-x86_64` inside a debootstrap tree.
        case tree(root: String)
    }

    /// The oldest version with the vfio-user client.
    public static let minimumVersion = (major: 10, minor: 1)

    public var source: Source
    /// As reported by `--version`, e.g. "11.1.3".
    public var version: String

    public init(source: Source, version: String) {
        self.source = source
        self.version = version
    }

    /// The argv that starts QEMU, before any machine options: the host binary, or
    /// `TREE/…/ld-linux-x86-64.so.2 --library-path TREE/usr/lib/x86_64-linux-gnu TREE/usr/bin/qemu-system-x86_64
    /// -L TREE/usr/share/qemu -L TREE/usr/share/seabios`.
    public var argvPrefix: [String] {
        switch source {
        case let .host(binary):
            return [binary]
        case let .tree(root):
            return Self.treeLauncher(root: root) + [
                "\(root)/usr/bin/qemu-system-x86_64",
                "-L", "\(root)/usr/share/qemu",
                "-L", "\(root)/usr/share/seabios",
            ]
        }
    }

    /// What QEMU's environment needs: a tree's QEMU loads its modules (the qtest accelerator is one)
    /// from the tree, not from the directory compiled in.
    public var environment: [String: String] {
        switch source {
        case .host: [:]
        case let .tree(root): ["QEMU_MODULE_DIR": "\(root)/usr/lib/x86_64-linux-gnu/qemu"]
        }
    }

    public var description: String {
        switch source {
        case let .host(binary): return "QEMU \(version) (host, \(binary))"
        case let .tree(root): return "QEMU \(version) (trixie tree \(root))"
        }
    }

    static func treeLauncher(root: String) -> [String] {
        ["\(root)/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "--library-path", "\(root)/usr/lib/x86_64-linux-gnu"]
    }

    /// Checks a candidate whose launcher is `prefix` (without -L options): version >= 10.1 and
    /// `-device help` lists `vfio-user-pci`. Returns the version string, or nil when unusable.
    static func probe(prefix: [String], firmware: [String] = [], step: String) -> String? {
        guard let versionOutput = try? Command.status(prefix + ["--version"], step: step), versionOutput.status == 0,
              let version = parseVersion(versionOutput.text), isRecentEnough(version)
        else { return nil }
        guard let help = try? Command.status(prefix + firmware + ["-device", "help"], step: step), help.status == 0,
              help.text.contains("\"vfio-user-pci\"")
        else { return nil }
        return version
    }

    /// The version from `QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)`.
    public static func parseVersion(_ text: String) -> String? {
        guard let range = text.range(of: "QEMU emulator version ") else { return nil }
        let rest = text[range.upperBound...]
        let version = rest.prefix { $0.isNumber || $0 == "." }
        return version.isEmpty ? nil : String(version)
    }

    public static func isRecentEnough(_ version: String) -> Bool {
        let parts = version.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return false }
        return (parts[0], parts[1]) >= (minimumVersion.major, minimumVersion.minor)
    }

    /// The host's `qemu-system-x86_64` if it is recent enough and has `vfio-user-pci`.
    public static func detectHost() -> QEMUInstallation? {
        guard let binary = Command.which("qemu-system-x86_64") else { return nil }
        guard let version = probe(prefix: [binary], step: "detect host QEMU") else { return nil }
        return QEMUInstallation(source: .host(binary: binary), version: version)
    }

    /// The tree's QEMU if it is installed and usable.
    public static func detectTree(root: URL) -> QEMUInstallation? {
        let path = root.path
        guard FileManager.default.fileExists(atPath: "\(path)/usr/bin/qemu-system-x86_64") else { return nil }
        let prefix = treeLauncher(root: path) + ["\(path)/usr/bin/qemu-system-x86_64"]
        let firmware = ["-L", "\(path)/usr/share/qemu", "-L", "\(path)/usr/share/seabios"]
        guard let version = probe(prefix: prefix, firmware: firmware, step: "detect tree QEMU") else { return nil }
        return QEMUInstallation(source: .tree(root: path), version: version)
    }

    /// The QEMU to use with this cache: the host's when usable, else the provisioned tree's.
    public static func locate(in layout: CacheLayout) -> QEMUInstallation? {
        detectHost() ?? detectTree(root: layout.qemuTree)
    }
}
