import Foundation
import Supervision

/// The guest agent as a Debian package (`vpio-agent_<version>_amd64.deb`), the way users install it:
/// the binary and BPF object the "guest agent" step built, the systemd unit and udev rule that start it
/// once ne2k-pci has bound the NIC, maintainer scripts that stop it before an upgrade or removal (no
/// kprobe outlives the installed version), the README. Every file of it lives in `guest-agent/debian/`
/// (the one definition; the README points there); `Depends:` comes from `dpkg-shlibdeps` on the binary.
public enum AgentPackage {
    /// Where each packaged file goes, relative to the package root: (source in the repository or the
    /// cache, destination, mode).
    static func contents(layout: CacheLayout, repository: URL) -> [(source: URL, destination: String, mode: Int)] {
        let debian = repository.appendingPathComponent("guest-agent/debian")
        return [
            (layout.agentBinary, "usr/bin/vpio-agent", 0o755),
            (layout.agentBPFObject, "usr/lib/vpio-agent/vpio_agent.bpf.o", 0o644),
            (debian.appendingPathComponent("vpio-agent.service"), "usr/lib/systemd/system/vpio-agent.service", 0o644),
            (debian.appendingPathComponent("60-vpio-agent.rules"), "usr/lib/udev/rules.d/60-vpio-agent.rules", 0o644),
            (repository.appendingPathComponent("guest-agent/README.md"), "usr/share/doc/vpio-agent/README.md", 0o644),
            (debian.appendingPathComponent("copyright"), "usr/share/doc/vpio-agent/copyright", 0o644),
        ] + ["postinst", "prerm", "postrm"].map { (debian.appendingPathComponent($0), "DEBIAN/\($0)", 0o755) }
    }

    /// The control file from `guest-agent/debian/control.in`.
    public static func control(template: String, version: String, depends: String, installedKiB: Int) -> String {
        template.replacingOccurrences(of: "@VERSION@", with: version)
            .replacingOccurrences(of: "@DEPENDS@", with: depends)
            .replacingOccurrences(of: "@INSTALLED_SIZE@", with: String(installedKiB))
    }

    /// `shlibs:Depends=…` from `dpkg-shlibdeps -O` output.
    public static func parseShlibsDepends(_ output: String) -> String? {
        for line in output.split(separator: "\n") where line.hasPrefix("shlibs:Depends=") {
            let value = line.dropFirst("shlibs:Depends=".count).trimmingCharacters(in: .whitespaces)
            if !value.isEmpty { return value }
        }
        return nil
    }

    /// The package version: 0.<commits on this branch>, so every later commit upgrades an earlier one
    /// (0.0 outside a git checkout).
    static func version(repository: URL) -> String {
        let count = (try? Command.run(["git", "-C", repository.path, "rev-list", "--count", "HEAD"], step: "agent package: version"))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return "0.\(count.flatMap { Int($0) } ?? 0)"
    }
}

extension Provisioner {
    /// Step: the agent's .deb in `cache/agent/`, rebuilt when the agent or a packaged file changed.
    @discardableResult
    public func ensureAgentPackage() throws -> URL {
        let step = "agent package"
        guard let repository = layout.repository else { throw StepError(step: step, reason: "the repository (guest-agent/debian) is needed") }
        let version = AgentPackage.version(repository: repository)
        let contents = AgentPackage.contents(layout: layout, repository: repository)
        var fingerprint = Fingerprint()
        fingerprint.add(version)
        for item in contents { fingerprint.addContent(of: item.source) }
        fingerprint.addContent(of: repository.appendingPathComponent("guest-agent/debian/control.in"))
        let deb = layout.agentDirectory.appendingPathComponent("vpio-agent_\(version)_amd64.deb")
        try stampedStep("agent-package", title: "agent package: vpio-agent \(version) (.deb)", fingerprint: fingerprint.value, outputs: [deb]) {
            let staging = layout.agentDirectory.appendingPathComponent("package")
            defer { try? FileManager.default.removeItem(at: staging) }
            try stage(contents, into: staging.appendingPathComponent("root"))
            let depends = try shlibsDepends(binary: staging.appendingPathComponent("root/usr/bin/vpio-agent"), in: staging)
            let template = try String(contentsOf: repository.appendingPathComponent("guest-agent/debian/control.in"), encoding: .utf8)
            let control = AgentPackage.control(template: template, version: version, depends: depends,
                                               installedKiB: try installedKiB(staging.appendingPathComponent("root")))
            try Data(control.utf8).write(to: staging.appendingPathComponent("root/DEBIAN/control"))
            for old in (try? FileManager.default.contentsOfDirectory(atPath: layout.agentDirectory.path)) ?? [] where old.hasSuffix(".deb") {
                try? FileManager.default.removeItem(at: layout.agentDirectory.appendingPathComponent(old))
            }
            try Command.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", staging.appendingPathComponent("root").path, deb.path],
                            step: "\(step): dpkg-deb --build")
        }
        return deb
    }

    /// Copies the package's files into `root` with their modes.
    private func stage(_ contents: [(source: URL, destination: String, mode: Int)], into root: URL) throws {
        let fm = FileManager.default
        try? fm.removeItem(at: root)
        for item in contents {
            let target = root.appendingPathComponent(item.destination)
            try fm.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o755])
            try fm.copyItem(at: item.source, to: target)
            try fm.setAttributes([.posixPermissions: item.mode], ofItemAtPath: target.path)
        }
    }

    /// `Depends:` for the binary, by dpkg-shlibdeps (which wants a debian/control naming the package).
    private func shlibsDepends(binary: URL, in staging: URL) throws -> String {
        let step = "agent package: dpkg-shlibdeps"
        let debian = staging.appendingPathComponent("debian")
        try FileManager.default.createDirectory(at: debian, withIntermediateDirectories: true)
        try Data("Source: vpio-agent\n\nPackage: vpio-agent\nArchitecture: amd64\n".utf8).write(to: debian.appendingPathComponent("control"))
        let output = try Command.run(["dpkg-shlibdeps", "-O", binary.path], step: step, currentDirectory: staging.path)
        guard let depends = AgentPackage.parseShlibsDepends(output) else {
            throw StepError(step: step, reason: "no shlibs:Depends in its output: \(output)")
        }
        return depends
    }

    /// The staged files' size in KiB (the control file's Installed-Size).
    private func installedKiB(_ root: URL) throws -> Int {
        let output = try Command.run(["du", "-sk", "--exclude=DEBIAN", root.path], step: "agent package: du")
        return Int(output.split(separator: "\t").first ?? "") ?? 0
    }
}
