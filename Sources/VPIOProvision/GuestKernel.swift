import Foundation
import Supervision

/// The guest kernel: Debian 12's current `linux-image-6.1.0-*-amd64`.
public enum GuestKernel {
    /// The NIC driver modules, by path under the release's kernel/drivers/net: the NE2000's in load
    /// order, then the RTL8139's (`mii` before `8139too`, and `8139cp`, which QEMU's own rtl8139 needs:
    /// it reports revision 0x20, a C+ chip, which 8139too refuses).
    public static let modulePaths = ["ethernet/8390/8390.ko", "ethernet/8390/ne2k-pci.ko", "mii.ko", "ethernet/realtek/8139too.ko",
                                     "ethernet/realtek/8139cp.ko"]
    /// The modules' file names, as the guest image holds them (flat, in /lib/modules).
    public static var moduleNames: [String] { modulePaths.map { String($0.split(separator: "/").last!) } }

    /// The concrete package `linux-image-amd64` depends on, from `apt-cache depends` output.
    public static func parseKernelPackage(_ dependsOutput: String) -> String? {
        for line in dependsOutput.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2, words[0] == "Depends:", words[1].hasPrefix("linux-image-6.") { return String(words[1]) }
        }
        return nil
    }
}

extension Provisioner {
    /// Resolves the kernel package name, running `apt-get update` once if apt's lists do not know it.
    func resolveKernelPackage() throws -> String {
        let step = "guest kernel: resolve package"
        if let name = GuestKernel.parseKernelPackage(
            (try? Command.run(["apt-cache", "depends", "linux-image-amd64"], step: step)) ?? "") {
            return name
        }
        try aptUpdateOnce(step: step)
        let output = try Command.run(["apt-cache", "depends", "linux-image-amd64"], step: step)
        guard let name = GuestKernel.parseKernelPackage(output) else {
            throw StepError(step: step, reason: "`apt-cache depends linux-image-amd64` names no linux-image-6.* package")
        }
        return name
    }

    /// Step c: `apt-get download` the kernel package, `dpkg-deb -x` it, keep vmlinuz and the NIC modules.
    func ensureGuestKernel() throws {
        let package = try resolveKernelPackage()
        try stampedStep("kernel", title: "guest kernel: \(package)", fingerprint: package, outputs: [layout.kernel] + layout.modules) {
            let fm = FileManager.default
            let work = layout.kernelDirectory.appendingPathComponent("work")
            defer { try? fm.removeItem(at: work) }
            let (extract, deb) = try extractPackage(package, into: work, step: "guest kernel")
            let boot = extract.appendingPathComponent("boot")
            guard let vmlinuz = try fm.contentsOfDirectory(atPath: boot.path).first(where: { $0.hasPrefix("vmlinuz-") }) else {
                throw StepError(step: "guest kernel: extract", reason: "no boot/vmlinuz-* in \(deb)")
            }
            let moduleRoot = extract.appendingPathComponent("lib/modules")
            guard let release = try fm.contentsOfDirectory(atPath: moduleRoot.path).first else {
                throw StepError(step: "guest kernel: extract", reason: "no lib/modules/* in \(deb)")
            }
            let driverDir = moduleRoot.appendingPathComponent("\(release)/kernel/drivers/net")

            try? fm.removeItem(at: layout.modulesDirectory)
            try fm.createDirectory(at: layout.modulesDirectory, withIntermediateDirectories: true)
            for path in GuestKernel.modulePaths {
                let source = driverDir.appendingPathComponent(path)
                guard fm.fileExists(atPath: source.path) else {
                    throw StepError(step: "guest kernel: extract", reason: "\(path) not in \(driverDir.path)")
                }
                try fm.copyItem(at: source, to: layout.modulesDirectory.appendingPathComponent(source.lastPathComponent))
            }
            try? fm.removeItem(at: layout.kernel)
            try fm.copyItem(at: boot.appendingPathComponent(vmlinuz), to: layout.kernel)
            try Data("\(release)\n".utf8).write(to: layout.kernelDirectory.appendingPathComponent("release"))
        }
    }
}

extension Provisioner {
    /// `apt-get download`s `package` into `work` (emptied first) and `dpkg-deb -x`es it; returns the
    /// extracted tree and the .deb's name. The caller removes `work`.
    func extractPackage(_ package: String, into work: URL, step: String) throws -> (tree: URL, deb: String) {
        let fm = FileManager.default
        try? fm.removeItem(at: work)
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        // apt-get download drops privileges to _apt when it can; a world-writable folder lets it.
        try fm.setAttributes([.posixPermissions: 0o777], ofItemAtPath: work.path)
        try Command.run(["apt-get", "download", "-qq", package], step: "\(step): apt-get download", currentDirectory: work.path)
        guard let deb = try fm.contentsOfDirectory(atPath: work.path).first(where: { $0.hasSuffix(".deb") }) else {
            throw StepError(step: "\(step): apt-get download", reason: "no .deb appeared in \(work.path)")
        }
        let tree = work.appendingPathComponent("x")
        try Command.run(["dpkg-deb", "-x", work.appendingPathComponent(deb).path, tree.path], step: "\(step): dpkg-deb -x")
        return (tree, deb)
    }
}
