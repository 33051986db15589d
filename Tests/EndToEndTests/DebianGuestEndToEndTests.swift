import Foundation
import Testing
import VPIOLaunch
import VPIOProvision

/// Issue 16 with real guests: a full Debian system (systemd, Debian's kernel, networkd) with the agent
/// installed from its .deb by `dpkg -i`, booted with exactly the options `vpio-host --print-qemu-args`
/// prints. Nothing of ours starts the agent: udev and systemd do, once ne2k-pci has bound the NIC.
@Suite("End to end: the packaged agent in a full Debian guest", .serialized)
struct DebianGuestEndToEndTests {
    static func skipReason(_ suite: DebianSuite) -> String? {
        if let reason = EndToEnd.skipReason { return reason }
        guard let layout = try? CacheLayout.resolve() else { return "no cache directory" }
        let missing = Provisioner.readiness(of: layout, servedSize: ServedFiles.defaultSize, debian: suite).missing
        return missing.isEmpty ? nil : "Debian \(suite.rawValue) guest not provisioned (\(missing.joined(separator: "; "))); run `vpio provision`"
    }

    @Test("Debian 12 (kernel 6.1, plain .ko): download and ssh, cooperative, the agent registered through systemd",
          .enabled(if: skipReason(.bookworm) == nil, Comment(rawValue: skipReason(.bookworm) ?? "")), .timeLimit(.minutes(6)))
    func bookworm() throws { try check(guest: .debian12, compression: "none") }

    @Test("Debian 13 (kernel 6.12, .ko.xz): the same, the agent reading the compressed modules itself",
          .enabled(if: skipReason(.trixie) == nil, Comment(rawValue: skipReason(.trixie) ?? "")), .timeLimit(.minutes(6)))
    func trixie() throws { try check(guest: .debian13, compression: "xz") }

    func check(guest: RunConfiguration.GuestKind, compression: String) throws {
        let resultPath = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-\(guest.rawValue)-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: resultPath) }
        let run = try EndToEnd.run(["--guest", guest.rawValue, "--workloads", "download,ssh", "--size", "256K", "--keep-logs",
                                    "--result-json", resultPath.path])
        let lines = run.output.split(separator: "\n").map(String.init)
        #expect(run.status == 0, "\(run.result.failures)")
        #expect(run.result.download?.checksumOK == true && run.result.download?.bytes == 262_144)
        #expect(run.result.ssh?.ok == true)
        // The agent systemd started: registered, every DMA start announced, nothing lost.
        #expect(lines.contains { $0.contains("VPIO-RESULT agent attached") && $0.hasSuffix(" ok") }, "systemd did not start the agent")
        let agent = try #require(lines.compactMap { AgentSummary.parse($0) }.first, "no VPIO-AGENT summary from the journal")
        #expect(agent["registration"] == "registered" && agent["lost"] == "0" && agent["gaps"] == "0")
        #expect(agent["intents"] == agent["model_dma_starts"] && Int(agent["attached"] ?? "") ?? 0 >= 200, "\(agent.fields)")
        // It scanned the modules the running kernel loaded, found as modinfo finds them, compressed or not.
        let modules = try #require(lines.first { $0.contains("VPIO-AGENT modules ") }, "no modules line")
        #expect(modules.contains("/8390.ko") && modules.contains("/ne2k-pci.ko") && modules.contains("(\(compression))"), "\(modules)")
        let enforcement = try #require(lines.first { $0.hasPrefix("[run] enforcement: ") })
        #expect(enforcement.hasPrefix("[run] enforcement: configured cooperative, now cooperative;")
                && enforcement.hasSuffix(" 0 denied, no fallback"), "\(enforcement)")
        // systemctl stop, then the package's upgrade and removal: no kprobe left at any point.
        #expect(lines.contains { $0.contains("VPIO-RESULT agent stopped rc=0 kprobes_left=0") }, "systemctl stop left kprobes or failed")
        // The host's side: every DMA start and received frame judged, none refused.
        let result = try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: resultPath))
        let stats = try JSONDecoder().decode(ModesEndToEndTests.Stats.self, from: Data((result.hostStatisticsJSON ?? "{}").utf8)).enforcement
        #expect(stats.configured == "cooperative" && stats.denied == 0 && stats.receivesDenied == 0, "\(stats)")
        #expect(stats.dmaStarts > 500 && stats.receivesJudged > 150, "\(stats)")
        let cycle = try #require(run.result.checks["package-cycle"], "no package-cycle result")
        #expect(cycle.ok && Int(cycle.fields["upgraded_kprobes"] ?? "") ?? 0 > 0 && cycle.fields["removed_kprobes_left"] == "0", "\(cycle.fields)")
        try checkQEMUOptions(lines)
    }

    /// QEMU ran with exactly what `vpio-host --print-qemu-args` prints for that socket and memory.
    func checkQEMUOptions(_ lines: [String]) throws {
        let prefix = "[run] logs kept in "
        let directory = try #require(lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) })
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let commandLine = try String(contentsOfFile: directory + "/qemu.cmdline", encoding: .utf8)
        let log = try String(contentsOfFile: directory + "/qemu.log", encoding: .utf8)
        #expect(!log.contains("vfio_wait_reqs"), "QEMU waited for a vfio-user reply: \(log.prefix(500))")
        let host = EndToEnd.binaryDirectory.appendingPathComponent("vpio-host").path
        let printed = try EndToEnd.invokeTool([host, "--print-qemu-args", "--socket", directory + "/ne2k.sock", "--memory", "512"])
        let options = printed.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!options.isEmpty && commandLine.contains(" -m 512M ") && commandLine.contains(" " + options),
                "QEMU line \(commandLine) lacks \(options)")
    }
}
