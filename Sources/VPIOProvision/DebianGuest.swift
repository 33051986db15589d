import Foundation
import Supervision

/// A full Debian guest: a `debootstrap` system with systemd, Debian's kernel and initrd, and a network
/// setup of its own (systemd-networkd brings the NE2000 up with a static address) — the kind of guest
/// users install the agent into. Built as a raw ext4 disk (`mkfs.ext4 -d`, no loop mounts) that QEMU
/// boots with `snapshot=on`, so runs never change the cached image.
public enum DebianSuite: String, CaseIterable, Sendable {
    /// Debian 12: kernel 6.1, uncompressed modules.
    case bookworm
    /// Debian 13: kernel 6.12.
    case trixie

    /// What the guest needs beyond minbase: systemd as init, udev (loads ne2k-pci, starts the agent),
    /// the kernel and its initrd, and the workloads' tools (wget, dbclient, ip).
    static let packages = ["systemd", "systemd-sysv", "udev", "kmod", "iproute2", "linux-image-amd64", "initramfs-tools",
                           "wget", "dropbear-bin", "procps"]
}

/// A provisioned Debian guest: its disk, and Debian's kernel and initrd copied out of it.
public struct DebianGuestImage: Sendable, Equatable {
    public var suite: DebianSuite
    public var disk: URL
    public var kernel: URL
    public var initrd: URL
    /// Holds the kernel release (`uname -r`) of `kernel`.
    public var releaseFile: URL

    public init(layout: CacheLayout, suite: DebianSuite) {
        let directory = layout.debianDirectory(suite)
        self.suite = suite
        disk = directory.appendingPathComponent("disk.raw")
        kernel = directory.appendingPathComponent("vmlinuz")
        initrd = directory.appendingPathComponent("initrd.img")
        releaseFile = directory.appendingPathComponent("release")
    }

    /// The guest kernel's release, once provisioned.
    public var kernelRelease: String? {
        (try? String(contentsOf: releaseFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The kernel command line the image expects before any `vpio_*` words: root on the virtio disk,
    /// console on the serial port, systemd's status lines off and a dumb terminal (systemd 257 would
    /// send terminal-reset sequences into the console the host parses).
    public static let kernelArguments = ["root=/dev/vda", "rw", "console=ttyS0", "quiet", "systemd.show_status=0", "panic=-1", "TERM=dumb"]
}

extension CacheLayout {
    public func debianDirectory(_ suite: DebianSuite) -> URL { root.appendingPathComponent("debian/\(suite.rawValue)") }
}

/// What goes into a Debian guest's disk beyond the debootstrap tree: the agent's package (installed with
/// `dpkg -i`, and a copy for the guest's upgrade/removal check), the workloads and the service that runs
/// them, and the ssh client key.
public struct DebianGuestInputs: Sendable {
    public var debs: [URL]
    public var files: [GuestImage.Entry]
    public var units: [String]

    /// The inputs for the agent package `package` (`Provisioner.ensureAgentPackage`).
    public static func standard(layout: CacheLayout, package: URL) throws -> DebianGuestInputs {
        guard let repository = layout.repository else {
            throw StepError(step: "Debian guest", reason: "the repository (guest-agent/image) is needed")
        }
        let image = repository.appendingPathComponent("guest-agent/image")
        let files: [GuestImage.Entry] = [
            // networkd asks for the nl80211 netlink family, which autoloads cfg80211, which warns that
            // its regulatory.db is missing: no wireless here.
            .text("blacklist cfg80211\n", path: "/etc/modprobe.d/vpio-guest.conf", mode: 0o644),
            .directory(path: "/root/.ssh", mode: 0o700),
            .file(source: layout.clientKey, path: "/root/.ssh/id_dropbear", mode: 0o600),
            .file(source: package, path: "/var/lib/vpio/vpio-agent.deb", mode: 0o644),
            .file(source: image.appendingPathComponent("workloads.sh"), path: "/usr/lib/vpio/workloads.sh", mode: 0o644),
            .file(source: image.appendingPathComponent("vpio-guest-run"), path: "/usr/lib/vpio/vpio-guest-run", mode: 0o755),
            .file(source: image.appendingPathComponent("vpio-guest-run.service"), path: "/etc/systemd/system/vpio-guest-run.service", mode: 0o644),
        ]
        return DebianGuestInputs(debs: [package], files: files, units: ["vpio-guest-run.service"])
    }

    /// The newest agent package in the cache, if any.
    public static func cachedPackage(layout: CacheLayout) -> URL? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.agentDirectory.path)) ?? []
        return names.filter { $0.hasPrefix("vpio-agent_") && $0.hasSuffix(".deb") }.sorted().last
            .map { layout.agentDirectory.appendingPathComponent($0) }
    }
}

extension Provisioner {
    /// The guest's disk for `suite` with the inputs' packages installed by `dpkg -i` (as a user would),
    /// files written and units enabled; the debootstrap tree is cached apart, so only the disk is rebuilt
    /// when a .deb or file changes.
    @discardableResult
    public func ensureDebianGuest(_ suite: DebianSuite, inputs: DebianGuestInputs) throws -> DebianGuestImage {
        let directory = layout.debianDirectory(suite)
        try ensureDebianTree(suite, tree: directory.appendingPathComponent("tree"))
        let image = DebianGuestImage(layout: layout, suite: suite)
        try stampedStep("debian-\(suite.rawValue)-disk",
                        title: "Debian \(suite.rawValue) guest: disk with \(inputs.debs.map(\.lastPathComponent).joined(separator: ", "))",
                        fingerprint: Self.diskFingerprint(suite, inputs: inputs, layout: layout),
                        outputs: [image.disk, image.kernel, image.initrd, image.releaseFile]) {
            try buildDisk(from: directory.appendingPathComponent("tree"), image: image, inputs: inputs)
        }
        return image
    }

    /// The disk step's fingerprint: the tree's stamp, the packages, files and units.
    static func diskFingerprint(_ suite: DebianSuite, inputs: DebianGuestInputs, layout: CacheLayout) -> String {
        var fingerprint = Fingerprint()
        fingerprint.add((try? String(contentsOf: stampURL("debian-\(suite.rawValue)-tree", in: layout), encoding: .utf8)) ?? "no tree")
        for deb in inputs.debs { fingerprint.add(deb.lastPathComponent); fingerprint.addMetadata(of: deb) }
        fingerprint.add(GuestImage(entries: inputs.files).fingerprint())
        fingerprint.add(inputs.units.joined(separator: " "))
        return fingerprint.value
    }

    /// The debootstrap tree with the guest's own configuration.
    func ensureDebianTree(_ suite: DebianSuite, tree: URL) throws {
        let mirror = Self.debianMirror()
        try TreeMounts.unmountAll(under: tree)
        try stampedStep("debian-\(suite.rawValue)-tree", title: "Debian \(suite.rawValue) guest: debootstrap (systemd, kernel)",
                        fingerprint: "\(suite.rawValue) \(mirror) \(DebianSuite.packages.joined(separator: ",")) v1",
                        outputs: [tree.appendingPathComponent("usr/bin/systemctl")]) {
            if FileManager.default.fileExists(atPath: tree.path) {
                try Command.run(["rm", "-rf", "--one-file-system", tree.path], step: "Debian guest: remove partial tree")
            }
            try FileManager.default.createDirectory(at: tree.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Command.run(["debootstrap", "--variant=minbase", "--include=" + DebianSuite.packages.joined(separator: ","),
                             suite.rawValue, tree.path, mirror], step: "Debian guest: debootstrap \(suite.rawValue)")
            try configureDebianTree(tree)
        }
    }

    /// Hostname, root on /dev/vda, networkd for the NE2000, and no unit that only costs boot time.
    func configureDebianTree(_ tree: URL) throws {
        let texts: [(String, String)] = [
            ("etc/hostname", "vm\n"),
            ("etc/fstab", "/dev/vda / ext4 rw,noatime 0 1\n"),
            ("etc/systemd/network/50-ne2000.network", "[Match]\nDriver=ne2k-pci\n\n[Network]\nAddress=10.77.0.2/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"),
        ]
        for (path, text) in texts {
            let url = tree.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try Command.run(["chroot", tree.path, "systemctl", "enable", "systemd-networkd.service"], step: "Debian guest: enable networkd")
        let idle = ["apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "fstrim.timer", "systemd-timesyncd.service",
                    "getty@tty1.service", "serial-getty@ttyS0.service", "systemd-networkd-wait-online.service"]
        _ = try Command.status(["chroot", tree.path, "systemctl", "mask"] + idle, step: "Debian guest: mask idle units")
    }

    /// A copy of the tree with the packages, files and units, made into the ext4 disk; kernel and
    /// initrd copied beside it.
    func buildDisk(from tree: URL, image: DebianGuestImage, inputs: DebianGuestInputs) throws {
        let fm = FileManager.default
        let directory = image.disk.deletingLastPathComponent()
        let work = directory.appendingPathComponent("work")
        let clean = { _ = try? Command.run(["rm", "-rf", "--one-file-system", work.path], step: "Debian guest: clean") }
        clean()
        defer { clean() }
        try Command.run(["cp", "-a", tree.path, work.path], step: "Debian guest: copy tree")
        for deb in inputs.debs {
            let inside = "/var/cache/apt/archives/\(deb.lastPathComponent)"
            try fm.copyItem(at: deb, to: work.appendingPathComponent(inside))
            try Command.run(["chroot", work.path, "dpkg", "-i", inside], step: "Debian guest: dpkg -i \(deb.lastPathComponent)")
            try fm.removeItem(at: work.appendingPathComponent(inside))
        }
        try GuestImage(entries: inputs.files).write(into: work)
        if !inputs.units.isEmpty {
            try Command.run(["chroot", work.path, "systemctl", "enable"] + inputs.units, step: "Debian guest: enable units")
        }
        let release = try copyBoot(of: work, to: image)
        try Data("\(release)\n".utf8).write(to: image.releaseFile)
        try makeFilesystem(of: work, at: image.disk)
    }

    /// Copies /boot/vmlinuz-* and initrd.img-* out of the tree; returns the kernel release.
    func copyBoot(of work: URL, to image: DebianGuestImage) throws -> String {
        let fm = FileManager.default
        let boot = work.appendingPathComponent("boot")
        let names = try fm.contentsOfDirectory(atPath: boot.path)
        guard let vmlinuz = names.first(where: { $0.hasPrefix("vmlinuz-") }), let initrd = names.first(where: { $0.hasPrefix("initrd.img-") }) else {
            throw StepError(step: "Debian guest: disk", reason: "no /boot/vmlinuz-* and initrd.img-* in the tree")
        }
        for (name, target) in [(vmlinuz, image.kernel), (initrd, image.initrd)] {
            try? fm.removeItem(at: target)
            try fm.copyItem(at: boot.appendingPathComponent(name), to: target)
        }
        return String(vmlinuz.dropFirst("vmlinuz-".count))
    }

    /// An ext4 image of `work` (`mkfs.ext4 -d`: no loop mount), half again its size plus 256 MiB free.
    func makeFilesystem(of work: URL, at disk: URL) throws {
        let usedKiB = Int(try Command.run(["du", "-sk", work.path], step: "Debian guest: du").split(separator: "\t").first ?? "") ?? 0
        let partial = disk.path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        try Command.run(["mkfs.ext4", "-q", "-F", "-L", "vpio-root", "-d", work.path, partial, "\(usedKiB * 3 / 2 / 1024 + 256)M"],
                        step: "Debian guest: mkfs.ext4 -d")
        try? FileManager.default.removeItem(at: disk)
        try FileManager.default.moveItem(atPath: partial, toPath: disk.path)
    }
}
