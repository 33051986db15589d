import Foundation
import Testing
import VPIOLaunch

/// Issue 10's "done when": the Linux guest's download and ssh pass in every enforced mode, with the
/// faithful device and the gate judging every DMA start and every received frame — and nothing denied.
@Suite("End to end: download and ssh in every enforced mode (issue 10)", .serialized)
struct ModesEndToEndTests {
    /// The parts of vpio-host's --stats-json read here.
    struct Stats: Decodable {
        struct Enforcement: Decodable {
            var configured: String
            var dmaStarts: Int
            var denied: Int
            var receivesJudged: Int
            var receivesDenied: Int
        }
        var enforcement: Enforcement
    }

    static let enabled = ConditionTrait.enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? ""))

    /// Cooperative (with the agent) is the default run: EndToEndTests and the Debian guests' tests
    /// (DebianGuestEndToEndTests, which check the same counters and QEMU's log) run it.
    @Test("download (1 MiB) and ssh with 0 denials", enabled, .timeLimit(.minutes(5)),
          arguments: [("emulated", false), ("vmm-model", false)])
    func linuxPassesWithNothingDenied(mode: String, agent: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-modes-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let resultPath = dir.appendingPathComponent("result.json")
        let host = EndToEnd.binaryDirectory.appendingPathComponent("vpio-host").path
        let run = try EndToEnd.run(["--mode", mode, "--workloads", "download,ssh", "--size", "1M", "--host-binary", host,
                                    "--result-json", resultPath.path, "--keep-logs"] + (agent ? ["--agent"] : ["--no-agent"]))
        #expect(run.status == 0, "\(run.result.failures)")
        #expect(run.result.download?.checksumOK == true)
        #expect(run.result.ssh?.ok == true)
        let result = try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: resultPath))
        let text = try #require(result.hostStatisticsJSON, "vpio-host wrote no statistics")
        let stats = try JSONDecoder().decode(Stats.self, from: Data(text.utf8)).enforcement
        print("issue 10, \(mode): \(stats.dmaStarts) DMA starts judged, \(stats.denied) denied; "
              + "\(stats.receivesJudged) received frames judged, \(stats.receivesDenied) refused")
        #expect(stats.configured == mode)
        #expect(stats.denied == 0 && stats.receivesDenied == 0)
        #expect(stats.dmaStarts > 1000, "a 1 MiB download starts thousands of DMAs")
        #expect(stats.receivesJudged > 500, "every received frame is judged")
        try Self.expectNoStalledReplies(run.output)
    }

    /// QEMU's log of the run: no vfio-user request waited out its timeout (issue 11: vpio-host left
    /// read-ahead messages unanswered, 5 s three times per boot).
    static func expectNoStalledReplies(_ output: String) throws {
        let marker = "logs kept in "
        let line = try #require(output.split(separator: "\n").first { $0.contains(marker) }, "vpio run kept no logs")
        let dir = String(line[line.range(of: marker)!.upperBound...]).trimmingCharacters(in: .whitespaces)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try String(contentsOfFile: dir + "/qemu.log", encoding: .utf8)
        #expect(!log.contains("vfio_wait_reqs"), "QEMU waited for a reply: \(log.split(separator: "\n").filter { $0.contains("vfio") }.prefix(3))")
    }
}
