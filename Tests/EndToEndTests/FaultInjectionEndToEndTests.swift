import Foundation
import Testing
import VPIOLaunch

/// Issue 11, item 5: faults injected into real runs (`vpio run --fault`), each once the peer has sent
/// 256 KiB of a 1 MiB download, so it lands mid-download. Every wait is bounded: the guest's workloads
/// time out after 60 s, the run after 240 s.
@Suite("End to end: fault injection (issue 11)", .serialized)
struct FaultInjectionEndToEndTests {
    static let enabled = ConditionTrait.enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? ""))
    static let size = 1 << 20
    static let faultAfter = 256 << 10

    /// The parts of vpio-host's --stats-json read here.
    struct Stats: Decodable {
        struct Messages: Decodable { var messages: Int; var rejected: Int }
        struct Enforcement: Decodable { var denied: Int }
        var connections: Int
        var messages: Messages
        var interruptSignalFailures: Int
        var enforcement: Enforcement
    }

    /// One `vpio run --fault …`: its result, console output, fault report and the run directory's logs.
    struct FaultRun {
        var status: Int32
        var result: RunResult
        var output: String
        var fault: RunResult.FaultReport
        var logs: [String: String]

        var stats: Stats? { result.hostStatisticsJSON.flatMap { try? JSONDecoder().decode(Stats.self, from: Data($0.utf8)) } }

        /// The result lines guest `prefix` ("guest| ", "guest2| ") printed.
        func lines(of prefix: String) -> [ResultLine] {
            output.split(separator: "\n").filter { $0.hasPrefix(prefix) }.compactMap { ResultLine.parse(String($0)) }
        }

        func log(_ name: String) -> String { logs[name] ?? "" }

        /// The fault fired while the first download was under way.
        func expectFiredMidDownload() {
            let bytes = fault.peerBytes ?? 0
            #expect(fault.firedAt != nil, "the fault never fired")
            #expect(bytes >= FaultInjectionEndToEndTests.faultAfter && bytes < FaultInjectionEndToEndTests.size,
                    "fired after \(bytes) bytes: not mid-download")
            for line in fault.summary { print("issue 11: \(line)") }
        }
    }

    static func run(_ fault: String, workloads: String, extra: [String] = []) throws -> FaultRun {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-fault-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let resultPath = dir.appendingPathComponent("result.json")
        let host = EndToEnd.binaryDirectory.appendingPathComponent("vpio-host").path
        let run = try EndToEnd.run(["--fault", fault, "--fault-after", "\(faultAfter)", "--workloads", workloads,
                                    "--size", "\(size)", "--workload-timeout", "60", "--host-binary", host,
                                    "--result-json", resultPath.path, "--keep-logs", "--no-agent"] + extra)
        let result = try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: resultPath))
        let report = try #require(result.fault, "the run has no fault report")
        return FaultRun(status: run.status, result: result, output: run.output, fault: report, logs: try takeLogs(run.output))
    }

    /// Reads every log of the kept run directory, then removes it.
    static func takeLogs(_ output: String) throws -> [String: String] {
        let marker = "logs kept in "
        let line = try #require(output.split(separator: "\n").last { $0.contains(marker) }, "vpio run kept no logs")
        let dir = String(line[line.range(of: marker)!.upperBound...]).trimmingCharacters(in: .whitespaces)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logs: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".log") {
            logs[name] = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
        }
        return logs
    }

    @Test("QEMU SIGKILLed mid-download: vpio-host keeps serving its socket; a new QEMU on it downloads (SHA-256) and runs ssh",
          enabled, .timeLimit(.minutes(4)))
    func qemuKilledMidDownload() throws {
        let run = try Self.run("kill-qemu", workloads: "download", extra: ["--restart-workloads", "download,ssh"])
        run.expectFiredMidDownload()
        #expect(run.fault.qemuExitStatus == 128 + SIGKILL && run.fault.guestsBooted == 2, "\(run.fault)")
        #expect(!run.lines(of: "guest| ").contains { $0.kind == "download" }, "the first guest finished its download")
        // The second guest, on the same vpio-host process: a working NIC.
        let second = run.lines(of: "guest2| ")
        let download = try #require(second.first { $0.kind == "download" }, "guest 2 printed no download result")
        #expect(download.status == "ok" && download.fields["bytes"] == "\(Self.size)", "\(download)")
        #expect(second.contains { $0.kind == "ssh" && $0.status == "ok" })
        #expect(run.status == 0 && run.result.guestRC == 0, "\(run.result.failures)")
        // vpio-host never exited (the runner checks it all along), and saw two clients one after the other.
        #expect(run.result.hostErrors.isEmpty, "\(run.result.hostErrors)")
        let stats = try #require(run.stats, "vpio-host wrote no statistics")
        #expect(stats.connections == 2 && stats.messages.rejected == 0 && stats.enforcement.denied == 0)
        try Self.expectTwoSessions(run.log("vpio-host.log"))
        #expect(!run.log("qemu-2.log").contains("vfio"), "QEMU 2 complained: \(run.log("qemu-2.log").prefix(400))")
        print("issue 11: kill-qemu — guest 2 download \(download.fields["secs"] ?? "?") s; tx_errors \(run.result.guestStatistics["tx_errors"] ?? -1)")
    }

    /// vpio-host's log: the killed QEMU's connection ended — closed (EOF), or reset when QEMU died with
    /// replies unread — and then a second client came.
    static func expectTwoSessions(_ log: String) throws {
        let lines = log.split(separator: "\n")
        let closed = try #require(lines.firstIndex { $0.contains("client disconnected") }, "no disconnection logged")
        #expect(lines[closed].contains("client closed the connection") || lines[closed].contains("Connection reset by peer"),
                "\(lines[closed])")
        let second = try #require(lines.firstIndex { $0.contains("connection=2") && $0.contains("client connected") })
        #expect(closed < second)
    }

    /// QEMU 11.1's vfio-user-pci does not reconnect, and what it does instead depends on where the vCPU is
    /// when the server's socket closes. Seen on this machine: most often its next device access fails an
    /// assertion (`error_setv: Assertion `*errp == NULL' failed`) and QEMU aborts within a second, the
    /// guest gone with no result line; sometimes the accesses fail one by one (`Unable to write to socket:
    /// Broken pipe`, `vfio_region_read … failed: Bad address`) and the guest runs on with a dead NIC, its
    /// download failing. Either way the run ends in bound, and the restarted vpio-host listens on the same
    /// path, is never connected to, and exits cleanly: that part is ours, and is checked exactly.
    @Test("vpio-host restarted under a running guest: QEMU aborts or its NIC goes dead; the new vpio-host listens and exits cleanly",
          enabled, .timeLimit(.minutes(4)))
    func hostRestartedUnderAGuest() throws {
        let run = try Self.run("restart-host", workloads: "download,ssh")
        run.expectFiredMidDownload()
        let qemuLog = run.log("qemu.log")
        print("issue 11: restart-host — QEMU exited \(run.fault.qemuExitAfter.map { "\($0) s" } ?? "never") after the kill, "
              + "status \(run.fault.qemuExitStatus ?? -1); its log: \(qemuLog.split(separator: "\n").suffix(3))")
        if run.fault.qemuExitStatus == 128 + SIGABRT {
            #expect((run.fault.qemuExitAfter ?? .infinity) < 10, "\(run.fault)")
            #expect(qemuLog.contains("Assertion"), "QEMU's log: \(qemuLog.suffix(400))")
            #expect(!run.lines(of: "guest| ").contains { $0.kind == "download" || $0.kind == "done" }, "the guest went on")
        } else {
            // QEMU survived the lost server: each device access after it failed, and no download completed.
            #expect(qemuLog.contains("Broken pipe") || qemuLog.contains("failed"), "QEMU's log: \(qemuLog.suffix(400))")
            #expect(!run.lines(of: "guest| ").contains { $0.kind == "download" && $0.status == "ok" },
                    "a download completed through a vpio-host that was killed")
        }
        #expect(!run.result.timedOut)
        // The second vpio-host: listening on the same path, no client, clean exit with its statistics.
        #expect(run.fault.events.contains { $0.text.hasPrefix("vpio-host restarted") }, "\(run.fault.events)")
        #expect(run.result.hostErrors.isEmpty, "\(run.result.hostErrors)")
        #expect(run.stats?.connections == 0)
        #expect(run.log("vpio-host-2.log").contains("listening") && run.log("vpio-host-2.log").contains("connections=0"))
    }

    @Test("the peer's httpd SIGKILLed mid-download: wget fails at once; ssh and a download from a new httpd work; vpio-host unaffected",
          enabled, .timeLimit(.minutes(4)))
    func httpServerKilledMidDownload() throws {
        let run = try Self.run("kill-http", workloads: "download,ssh,download")
        run.expectFiredMidDownload()
        let lines = run.lines(of: "guest| ")
        let downloads = lines.filter { $0.kind == "download" }
        try #require(downloads.count == 2, "\(lines)")
        let failed = downloads[0], bytes = Int(failed.fields["bytes"] ?? "") ?? -1
        print("issue 11: kill-http — first download: \(failed.fields)")
        #expect(failed.status == "failed" && bytes < Self.size, "\(failed)")
        // busybox wget on the peer's FIN, well within the 60 s workload timeout.
        #expect(failed.fields["error"]?.contains("connection closed prematurely") == true, "\(failed.fields)")
        #expect((Double(failed.fields["secs"] ?? "") ?? 99) < 40)
        #expect(lines.contains { $0.kind == "ssh" && $0.status == "ok" })
        #expect(downloads[1].status == "ok" && downloads[1].fields["bytes"] == "\(Self.size)", "\(downloads[1])")
        // The host saw one client all along, rejected and denied nothing, and exited cleanly.
        #expect(run.result.hostErrors.isEmpty, "\(run.result.hostErrors)")
        let stats = try #require(run.stats, "vpio-host wrote no statistics")
        #expect(stats.connections == 1 && stats.messages.rejected == 0 && stats.enforcement.denied == 0
                && stats.interruptSignalFailures == 0)
        let hostLog = run.log("vpio-host.log")
        #expect(hostLog.components(separatedBy: "client disconnected").count == 2, "one disconnection, at the end: \(hostLog.suffix(600))")
        #expect(!hostLog.contains(" error vpio-host:") && !hostLog.contains(" critical vpio-host:"), "\(hostLog.suffix(600))")
        #expect(run.result.guestRC == 1, "the failed download is the guest's only failure")
    }
}
