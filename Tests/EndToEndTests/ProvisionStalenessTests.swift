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
