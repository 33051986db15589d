import Foundation
import Testing
import VPIOProvision

/// `vpio run` reprovisions when the agent, guest tools or image were built from inputs that changed
/// since: a run once booted the old agent after its sources were edited.
@Suite("Provisioning: stale steps")
struct ProvisionStalenessTests {
    @Test("the provisioned cache is not stale; a step whose stamp no longer matches its inputs is",
          .enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? "")))
    func staleStepsFollowTheStamps() throws {
        let cache = try CacheLayout.resolve()
        #expect(Provisioner.staleSteps(of: cache) == [], "the cache `vpio provision` just made")
        // The same repository and stamps in another root, one stamp changed.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-stale-\(getpid())")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let copy = CacheLayout(root: root, repository: cache.repository)
        try FileManager.default.copyItem(at: cache.stamps, to: copy.stamps)
        try Data("an older agent".utf8).write(to: copy.stamps.appendingPathComponent("agent.done"))
        let stale = Provisioner.staleSteps(of: copy)
        #expect(stale.contains { $0.hasPrefix("guest agent") } && !stale.contains { $0.hasPrefix("guest tools") }, "\(stale)")
    }
}

@Suite("Provisioning: the agent's inputs")
struct AgentFingerprintTests {
    /// The agent is rebuilt when any source it is built from changes: every target of vpio-agent's
    /// dependency closure (from `swift package dump-package`) lies in a fingerprinted directory. A model
    /// the agent runs, edited without this, would leave the guest's agent on the old rule.
    @Test func everyTargetTheAgentIsBuiltFromIsFingerprinted() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // A scratch path of its own: the running `swift test` holds .build's lock.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-dump-package-\(getpid())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        process.arguments = ["swift", "package", "--package-path", repository.path, "--scratch-path", scratch.path, "dump-package"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "swift package dump-package failed")
        struct Manifest: Decodable {
            struct Target: Decodable { var name: String; var path: String?; var dependencies: [[String: [String?]]] }
            var targets: [Target]
        }
        let targets = Dictionary(uniqueKeysWithValues: try JSONDecoder().decode(Manifest.self, from: data).targets.map { ($0.name, $0) })
        var closure: Set<String> = [], pending = ["vpio-agent"]
        while let name = pending.popLast() {
            for dependency in targets[name]?.dependencies ?? [] {
                guard let target = dependency.values.first?.first ?? nil, targets[target] != nil, closure.insert(target).inserted else { continue }
                pending.append(target)
            }
        }
        let paths = closure.map { targets[$0]?.path ?? "Sources/\($0)" }
        let missing = paths.filter { path in !Provisioner.agentSourceDirectories.contains { path == $0 || path.hasPrefix($0 + "/") } }
        #expect(closure.contains("RTL8139Model") && closure.contains("NE2000Model"))
        #expect(missing.isEmpty, "the agent is built from \(missing) but its fingerprint ignores them")
    }
}
