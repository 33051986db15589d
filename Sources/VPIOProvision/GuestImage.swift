import Foundation
import Supervision

/// The guest initramfs: a list of entries turned into a gzip'd newc cpio.
///
/// `GuestImage.standard(layout:)` is the list the test guest uses; later work (the guest agent) appends
/// entries to it before `build`.
public struct GuestImage: Sendable {
    public enum Entry: Sendable, Equatable {
        /// A directory at `path` (absolute inside the image).
        case directory(path: String, mode: Int)
        /// A host file copied (dereferenced) to `path`.
        case file(source: URL, path: String, mode: Int)
        /// A file with the given text.
        case text(_ contents: String, path: String, mode: Int)

        var path: String {
            switch self {
            case let .directory(path, _), let .file(_, path, _), let .text(_, path, _): return path
            }
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }

    /// The host files (with the shared libraries they load) and directories of the test guest: static
    /// busybox (applet links are made by /init at boot), the NE2000 modules, dbclient and its libraries,
    /// the client key, /etc/passwd and /init.
    public static func standard(layout: CacheLayout) throws -> GuestImage {
        let step = "guest image: collect files"
        guard let initScript = layout.initScript, FileManager.default.fileExists(atPath: initScript.path) else {
            throw StepError(step: step, reason: "guest-agent/image/init not found (repository: \(layout.repository?.path ?? "none"))")
        }
        guard let busybox = ["/bin/busybox", "/usr/bin/busybox"].first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw StepError(step: step, reason: "busybox not found (package busybox-static)")
        }
        guard let dbclient = Command.which("dbclient") else {
            throw StepError(step: step, reason: "dbclient not found (package dropbear-bin)")
        }
        var image = GuestImage()
        for dir in ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/proc", "/sys", "/dev", "/tmp", "/etc", "/lib/modules", "/var/run"] {
            image.entries.append(.directory(path: dir, mode: 0o755))
        }
        image.entries.append(.directory(path: "/root", mode: 0o700))
        image.entries.append(.directory(path: "/root/.ssh", mode: 0o700))
        image.entries.append(.file(source: initScript, path: "/init", mode: 0o755))
        if let workloads = layout.workloadScript {
            image.entries.append(.directory(path: "/lib/vpio", mode: 0o755))
            image.entries.append(.file(source: workloads, path: "/lib/vpio/workloads.sh", mode: 0o644))
        }
        image.entries.append(.file(source: URL(fileURLWithPath: busybox), path: "/bin/busybox", mode: 0o755))
        for module in layout.modules {
            image.entries.append(.file(source: module, path: "/lib/modules/\(module.lastPathComponent)", mode: 0o644))
        }
        image.entries.append(.file(source: URL(fileURLWithPath: dbclient), path: "/bin/dbclient", mode: 0o755))
        for library in try sharedLibraries(of: dbclient, step: step) {
            image.entries.append(.file(source: URL(fileURLWithPath: library), path: library, mode: 0o755))
        }
        // The guest agent, its BPF object and the libraries a --static-swift-stdlib binary still loads
        // (libc, libm, libstdc++, libgcc_s, the loader); started by /init when the command line says vpio_agent=.
        if FileManager.default.fileExists(atPath: layout.agentBinary.path) {
            image.entries.append(.directory(path: "/usr/lib/vpio-agent", mode: 0o755))
            image.entries.append(.file(source: layout.agentBinary, path: "/usr/bin/vpio-agent", mode: 0o755))
            image.entries.append(.file(source: layout.agentBPFObject, path: "/usr/lib/vpio-agent/vpio_agent.bpf.o", mode: 0o644))
            for library in try sharedLibraries(of: layout.agentBinary.path, step: step)
            where !image.entries.contains(where: { $0.path == library }) {
                image.entries.append(.file(source: URL(fileURLWithPath: library), path: library, mode: 0o755))
            }
        }
        // The attack tools (static C, no libraries): /init runs them for the rogue and tamper-* workloads.
        for tool in layout.guestTools where FileManager.default.fileExists(atPath: tool.path) {
            image.entries.append(.file(source: tool, path: "/usr/bin/\(tool.lastPathComponent)", mode: 0o755))
        }
        image.entries.append(.file(source: layout.clientKey, path: "/root/.ssh/id_dropbear", mode: 0o600))
        image.entries.append(.text("root:x:0:0:root:/root:/bin/sh\n", path: "/etc/passwd", mode: 0o644))
        image.entries.append(.text("root:x:0:\n", path: "/etc/group", mode: 0o644))
        image.entries.append(.text("vpioguest\n", path: "/etc/hostname", mode: 0o644))
        return image
    }

    /// The absolute paths of the shared objects `binary` loads, from `ldd` (including the loader).
    public static func sharedLibraries(of binary: String, step: String) throws -> [String] {
        let output = try Command.run(["ldd", binary], step: step)
        return parseLdd(output)
    }

    static func parseLdd(_ output: String) -> [String] {
        var paths: [String] = []
        for line in output.split(separator: "\n") {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let candidate = line.split(separator: "=>").last?.trimmingCharacters(in: .whitespaces) ?? ""
            guard candidate.hasPrefix("/"), let path = candidate.split(separator: " ").first else { continue }
            if !paths.contains(String(path)) { paths.append(String(path)) }
        }
        return paths
    }

    /// A fingerprint of the inputs: small files by content, large ones by size and time.
    func fingerprint() -> String {
        var fp = Fingerprint()
        for entry in entries {
            switch entry {
            case let .directory(path, mode): fp.add("d \(path) \(mode)")
            case let .text(contents, path, mode): fp.add("t \(path) \(mode)"); fp.add(contents)
            case let .file(source, path, mode):
                fp.add("f \(path) \(mode)")
                let size = (try? FileManager.default.attributesOfItem(atPath: source.path)[.size] as? NSNumber)?.intValue ?? 0
                if size < 64 * 1024 { fp.addContent(of: source) } else { fp.addMetadata(of: source) }
            }
        }
        return fp.value
    }

    /// Lays the entries out under `staging` (emptied first) and packs them into `output` (gzip'd newc
    /// cpio, entries sorted, owned by root). Written to a temporary file and renamed, so `output` is
    /// either the old image or the complete new one.
    public func build(into output: URL, staging: URL) throws {
        let step = "guest image: build"
        let fm = FileManager.default
        try? fm.removeItem(at: staging)
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        try write(into: staging)
        let partial = output.path + ".partial"
        try fm.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Command.run(
            ["bash", "-o", "pipefail", "-c",
             "cd \"$1\" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -n -6 > \"$2\"",
             "pack", staging.path, partial],
            step: step)
        if fm.fileExists(atPath: output.path) { try fm.removeItem(at: output) }
        try fm.moveItem(atPath: partial, toPath: output.path)
    }

    /// Writes the entries into the directory tree at `root` (files replace what is there).
    public func write(into root: URL) throws {
        let fm = FileManager.default
        for entry in entries {
            let target = root.appendingPathComponent(String(entry.path.drop { $0 == "/" }))
            try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            switch entry {
            case let .directory(_, mode):
                try fm.createDirectory(at: target, withIntermediateDirectories: true)
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: target.path)
            case let .file(source, _, mode):
                let resolved = source.resolvingSymlinksInPath()
                guard fm.fileExists(atPath: resolved.path) else {
                    throw StepError(step: "guest image: write", reason: "missing input \(source.path) for \(entry.path)")
                }
                try? fm.removeItem(at: target)
                try fm.copyItem(at: resolved, to: target)
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: target.path)
            case let .text(contents, _, mode):
                try Data(contents.utf8).write(to: target)
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: target.path)
            }
        }
    }
}

extension Provisioner {
    /// Step e: the guest initramfs (rebuilt whenever an input changed: init script, key, modules, binaries).
    func ensureGuestImage() throws {
        let image = try GuestImage.standard(layout: layout)
        let staging = layout.imageDirectory.appendingPathComponent("root")
        try stampedStep("image", title: "guest image: initrd.gz (\(image.entries.count) entries)", fingerprint: image.fingerprint(),
                        outputs: [layout.initramfs]) {
            try image.build(into: layout.initramfs, staging: staging)
            try? FileManager.default.removeItem(at: staging)
        }
    }
}
