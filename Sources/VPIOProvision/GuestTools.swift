import Foundation
import Supervision

/// The guest's attack tools (`guest-agent/tools`): `vpio-rogue` (raw port I/O that starts a remote DMA
/// outside the grant) and `vpio-tamper` (a misbehaving agent). Small C programs built on the host with
/// gcc, statically (the initramfs has no C library for them), against `protocol/include` for the ABI;
/// /init runs them for the `rogue`, `tamper-*` and `kill-agent` workloads.
extension CacheLayout {
    public var toolsDirectory: URL { root.appendingPathComponent("tools") }
    /// The built tools, by name.
    public var guestTools: [URL] { Provisioner.guestToolNames.map { toolsDirectory.appendingPathComponent($0) } }
}

extension Provisioner {
    static let guestToolNames = ["vpio-rogue", "vpio-tamper", "vpio-rogue8139"]

    /// The sources the tools are built from (fingerprinted): each tool's C file, the shared header,
    /// the ABI header.
    static func guestToolSources(repository: URL) -> [URL] {
        let tools = repository.appendingPathComponent("guest-agent/tools")
        return guestToolNames.map { tools.appendingPathComponent("\($0).c") }
            + [tools.appendingPathComponent("vpio_guest.h"), repository.appendingPathComponent("protocol/include/vpio_ring.h")]
    }

    static func guestToolsFingerprint(repository: URL) -> String {
        var fp = Fingerprint()
        for file in guestToolSources(repository: repository) { fp.addContent(of: file) }
        return fp.value
    }

    /// Step: build the tools into cache/tools (rebuilt when a source changed).
    func ensureGuestTools() throws {
        let step = "guest tools"
        guard let repository = layout.repository else {
            throw StepError(step: step, reason: "the repository (guest-agent/tools) is needed to build the guest tools")
        }
        try stampedStep("tools", title: "guest tools: vpio-rogue, vpio-tamper, vpio-rogue8139 (static C)",
                        fingerprint: Self.guestToolsFingerprint(repository: repository),
                        outputs: layout.guestTools) {
            guard let gcc = Command.which("gcc") else {
                throw StepError(step: step, reason: "gcc not found (package gcc; libc6-dev for the static C library)")
            }
            try FileManager.default.createDirectory(at: layout.toolsDirectory, withIntermediateDirectories: true)
            for (name, output) in zip(Self.guestToolNames, layout.guestTools) {
                try Command.run([gcc, "-static", "-O2", "-Wall", "-Werror",
                                 "-I", repository.appendingPathComponent("protocol/include").path,
                                 "-I", repository.appendingPathComponent("guest-agent/tools").path,
                                 "-o", output.path, repository.appendingPathComponent("guest-agent/tools/\(name).c").path],
                                step: step)
            }
        }
    }
}
