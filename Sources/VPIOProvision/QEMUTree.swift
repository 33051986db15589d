import Foundation
import Supervision

extension Provisioner {
    /// The packages installed into the trixie tree from trixie-backports.
    static let treePackages = ["qemu-system-x86", "passt"]

    /// The Debian mirror the host uses (first `URIs:` of `/etc/apt/sources.list.d/debian.sources`, else the
    /// first `deb` line of `/etc/apt/sources.list`), so the tree fetches from where the host already can.
    public static func debianMirror() -> String {
        if let text = try? String(contentsOfFile: "/etc/apt/sources.list.d/debian.sources", encoding: .utf8) {
            for line in text.split(separator: "\n") where line.hasPrefix("URIs:") {
                if let uri = line.dropFirst("URIs:".count).split(separator: " ").first { return String(uri) }
            }
        }
        if let text = try? String(contentsOfFile: "/etc/apt/sources.list", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").filter { !$0.hasPrefix("[") }
                if words.count >= 2, words[0] == "deb" { return String(words[1]) }
            }
        }
        return "http://deb.debian.org/debian"
    }

    /// Step b (when the host's QEMU is too old): a `debootstrap --variant=minbase trixie` tree with
    /// `qemu-system-x86` and `passt` from trixie-backports. Two stamped sub-steps so a failed apt run does
    /// not repeat the debootstrap.
    func ensureQEMUTree() throws -> QEMUInstallation {
        let tree = layout.qemuTree
        let mirror = Self.debianMirror()
        try TreeMounts.unmountAll(under: tree)

        try stampedStep("qemu-debootstrap", title: "QEMU: debootstrap trixie tree", fingerprint: "trixie minbase \(mirror)",
                        outputs: [tree.appendingPathComponent("usr/bin/apt-get")]) {
            clearStamp("qemu-install")
            if FileManager.default.fileExists(atPath: tree.path) {
                // A partial tree from an interrupted run; never cross into mounts (already unmounted above).
                try Command.run(["rm", "-rf", "--one-file-system", tree.path], step: "QEMU: remove partial tree")
            }
            try FileManager.default.createDirectory(at: tree.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Command.run(["debootstrap", "--variant=minbase", "trixie", tree.path, mirror], step: "QEMU: debootstrap trixie")
        }

        let fingerprint = "trixie-backports \(Self.treePackages.joined(separator: " ")) \(mirror)"
        try stampedStep("qemu-install", title: "QEMU: install qemu-system-x86 from trixie-backports", fingerprint: fingerprint,
                        outputs: [tree.appendingPathComponent("usr/bin/qemu-system-x86_64")]) {
            let sources = """
                Types: deb
                URIs: \(mirror)
                Suites: trixie trixie-updates trixie-backports
                Components: main
                Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

                """
            try Data(sources.utf8).write(to: tree.appendingPathComponent("etc/apt/sources.list.d/debian.sources"))
            try? FileManager.default.removeItem(at: tree.appendingPathComponent("etc/apt/sources.list"))
            // No service may start inside the tree.
            let policy = tree.appendingPathComponent("usr/sbin/policy-rc.d")
            try Data("#!/bin/sh\nexit 101\n".utf8).write(to: policy)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: policy.path)

            try TreeMounts.withMounts(in: tree) {
                let env = ["DEBIAN_FRONTEND": "noninteractive"]
                try Command.run(["chroot", tree.path, "apt-get", "update", "-qq"], step: "QEMU: apt-get update in tree", environment: env)
                try Command.run(
                    ["chroot", tree.path, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "-t", "trixie-backports"]
                        + Self.treePackages,
                    step: "QEMU: apt-get install in tree", environment: env)
            }
            guard QEMUInstallation.detectTree(root: tree) != nil else {
                throw StepError(
                    step: "QEMU: verify", reason: "\(tree.path)/usr/bin/qemu-system-x86_64 is missing, too old or lacks vfio-user-pci")
            }
        }
        guard let qemu = QEMUInstallation.detectTree(root: tree) else {
            clearStamp("qemu-install")
            throw StepError(
                step: "QEMU: verify", reason: "the tree's QEMU does not run or lacks vfio-user-pci; run provision again to reinstall")
        }
        progress.line("QEMU… \(qemu)")
        return qemu
    }
}

/// proc, sys, dev and dev/pts mounted into a tree while apt runs there.
enum TreeMounts {
    /// (mount point inside the tree, mount arguments before the target).
    static let targets: [(relative: String, arguments: [String])] = [
        ("proc", ["-t", "proc", "proc"]),
        ("sys", ["-t", "sysfs", "sys"]),
        ("dev", ["--bind", "/dev"]),
        ("dev/pts", ["--bind", "/dev/pts"]),
    ]

    /// Mounts, runs `body`, and unmounts on every path (also when `body` or a mount throws).
    static func withMounts<T>(in tree: URL, _ body: () throws -> T) throws -> T {
        defer { try? unmountAll(under: tree) }
        for target in targets {
            let path = tree.appendingPathComponent(target.relative).path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            try Command.run(["mount"] + target.arguments + [path], step: "mount \(target.relative) into tree")
        }
        return try body()
    }

    /// Unmounts every mount point at or below `tree`, deepest first (lazily if busy).
    static func unmountAll(under tree: URL) throws {
        let prefix = tree.standardizedFileURL.path
        let points = mountPoints().filter { $0 == prefix || $0.hasPrefix(prefix + "/") }.sorted { $0.count > $1.count }
        for point in points {
            let result = try Command.status(["umount", point], step: "unmount \(point)")
            if result.status != 0 {
                try Command.run(["umount", "-l", point], step: "unmount \(point)")
            }
        }
    }

    /// Mount points from /proc/self/mountinfo (field 5, octal escapes decoded).
    static func mountPoints() -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            return decodeOctalEscapes(String(fields[4]))
        }
    }

    static func decodeOctalEscapes(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
