import Foundation
import Supervision

/// The guest agent for the image: `vpio-agent` built with `--static-swift-stdlib` (libbpf, libelf, zlib
/// and zstd are linked from their static archives), and its BPF object compiled with the toolchain's
/// clang. Built from the repository into `cache/agent/`; the scratch path `.build-agent-guest` keeps it
/// apart from the tools' own `swift build -c release` (which links the Swift stdlib dynamically).
extension Provisioner {
    /// Where the agent's sources are: its own, its BPF program's, and the Swift targets it is built
    /// from (vpio-agent's dependency closure in Package.swift: the models it runs, the ABI mirror).
    public static let agentSourceDirectories = [
        "guest-agent/Sources", "guest-agent/bpf", "protocol/swift", "Sources/DP8390", "Sources/DeviceBus",
        "Sources/NE2000Model", "Sources/RTL8139", "Sources/RTL8139Model", "Sources/VPIOMonitor",
    ]

    /// The sources the agent is built from (fingerprinted).
    static func agentSources(repository: URL) -> [URL] {
        let fm = FileManager.default
        var files: [URL] = []
        for dir in agentSourceDirectories {
            let root = repository.appendingPathComponent(dir)
            guard let walker = fm.enumerator(at: root, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker where ["swift", "c", "h", "modulemap"].contains(url.pathExtension) {
                files.append(url)
            }
        }
        files.append(repository.appendingPathComponent("protocol/include/vpio_ring.h"))
        files.append(repository.appendingPathComponent("Package.swift"))
        return files.sorted { $0.path < $1.path }
    }

    static func agentFingerprint(repository: URL) -> String {
        var fp = Fingerprint()
        for file in agentSources(repository: repository) { fp.addContent(of: file) }
        return fp.value
    }

    /// The Swift toolchain: `swift` in PATH, else /opt/swift; its clang sits beside it.
    static func swiftToolchain(step: String) throws -> (swift: String, clang: String) {
        guard let swift = Command.which("swift") ?? ["/opt/swift/usr/bin/swift", "/usr/share/swift/usr/bin/swift"]
            .first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw StepError(step: step, reason: "no Swift toolchain (swift not in PATH, nor /opt/swift)") }
        let real = URL(fileURLWithPath: swift).resolvingSymlinksInPath()
        let clang = real.deletingLastPathComponent().appendingPathComponent("clang").path
        guard FileManager.default.isExecutableFile(atPath: clang) else {
            throw StepError(step: step, reason: "no clang beside \(real.path) (the toolchain's clang compiles the BPF program)")
        }
        return (swift, clang)
    }

    /// Step: build vpio-agent and vpio_agent.bpf.o into cache/agent (rebuilt when a source changed).
    func ensureGuestAgent() throws {
        let step = "guest agent"
        guard let repository = layout.repository else {
            throw StepError(step: step, reason: "the repository (guest-agent/) is needed to build the agent")
        }
        try stampedStep("agent", title: "guest agent: vpio-agent (static Swift stdlib) + BPF object",
                        fingerprint: Self.agentFingerprint(repository: repository),
                        outputs: [layout.agentBinary, layout.agentBPFObject]) {
            let (swift, clang) = try Self.swiftToolchain(step: step)
            try FileManager.default.createDirectory(at: layout.agentDirectory, withIntermediateDirectories: true)
            let scratch = repository.appendingPathComponent(".build-agent-guest").path
            let build = [swift, "build", "-c", "release", "--static-swift-stdlib", "--product", "vpio-agent",
                         "--package-path", repository.path, "--scratch-path", scratch]
            try Command.run(build, step: step)
            let bin = try Command.run(build + ["--show-bin-path"], step: step).trimmingCharacters(in: .whitespacesAndNewlines)
            let built = URL(fileURLWithPath: bin).appendingPathComponent("vpio-agent")
            let partial = layout.agentBinary.path + ".partial"
            try? FileManager.default.removeItem(atPath: partial)
            try FileManager.default.copyItem(at: built, to: URL(fileURLWithPath: partial))
            _ = try? Command.run(["strip", "--strip-debug", partial], step: step)
            try? FileManager.default.removeItem(at: layout.agentBinary)
            try FileManager.default.moveItem(atPath: partial, toPath: layout.agentBinary.path)
            try Command.run([clang, "-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86", "-Wall",
                             "-I/usr/include/x86_64-linux-gnu",
                             "-I", repository.appendingPathComponent("protocol/include").path,
                             "-I", repository.appendingPathComponent("guest-agent/bpf").path,
                             "-c", repository.appendingPathComponent("guest-agent/bpf/vpio_agent.bpf.c").path,
                             "-o", layout.agentBPFObject.path], step: step)
        }
    }
}
