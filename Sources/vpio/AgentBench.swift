import ArgumentParser
import Foundation
import VPIOLaunch
import VPIOProvision

struct AgentBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent-bench",
        abstract: "Measure the guest agent's in-guest cost during a download: probe hits, BPF time, ring records per packet.",
        discussion: """
            Boots the guest with the agent on vpio-host, downloads a file, and reports from the agent's own \
            summary (kprobe hits = BPF program runs; BPF run time per hit from the kernel's BPF run-time \
            statistics, bpf_enable_stats) and from vpio-host's statistics (ring records the host read), each \
            divided by the packets the guest's eth0 moved (received + sent). Times are TCG times.
            """)

    @OptionGroup var cache: CacheOptions

    @Option(help: ArgumentHelp("Size of the downloaded file (K/M/G suffixes).", valueName: "bytes"))
    var size = ByteSize(bytes: 1_048_576)

    @Option(help: ArgumentHelp("The vpio-host executable (default: beside this vpio).", valueName: "path"))
    var hostBinary: String?

    @Option(help: ArgumentHelp("Limit for the guest run in seconds.", valueName: "seconds"))
    var timeout = 600

    func run() throws {
        cache.bootstrapLogging()
        guard geteuid() == 0 else { throw ValidationError("vpio agent-bench must run as root (network namespaces, TAP)") }
        let host = hostBinary.map { URL(fileURLWithPath: $0) } ?? siblingExecutable("vpio-host")
        var configuration = RunConfiguration(layout: try cache.layout(), nic: .vpioHost(binary: host, extraArguments: []))
        configuration.workloads = ["download"]
        configuration.size = size.bytes
        configuration.agent = .register
        configuration.timeout = TimeInterval(timeout)
        configuration.echoConsole = false
        say("[agent-bench] downloading \(size.bytes) bytes with the agent attached…")
        let result = try ExperimentRunner(configuration: configuration).run()
        guard result.succeeded else { throw BenchError("the run failed: \(result.failures.joined(separator: "; "))") }
        guard let agent = result.agentSummary, let hits = agent.number("bpf_runs"), let nsPerHit = agent.number("bpf_run_ns_per_hit")
        else { throw BenchError("the agent printed no summary with BPF statistics") }
        let packets = Double((result.guestStatistics["rx_packets"] ?? 0) + (result.guestStatistics["tx_packets"] ?? 0))
        guard packets > 0 else { throw BenchError("the guest reported no packets") }
        let records = try hostRingRecords(result)
        let accesses = agent.number("accesses") ?? 0
        say("")
        say("vpio agent-bench — \(result.download?.bytes ?? 0) bytes downloaded, \(Int(packets)) packets (rx + tx), tcg")
        say(String(format: "  probe hits per packet          %8.1f  (%.0f BPF runs)", hits / packets, hits))
        say(String(format: "  device accesses per probe hit  %8.1f  (a rep insl is one hit)", accesses / max(hits, 1)))
        say(String(format: "  BPF run time per hit           %8.0f ns (kernel BPF run-time stats, under TCG)", nsPerHit))
        say(String(format: "  BPF time per packet            %8.1f µs", hits * nsPerHit / packets / 1000))
        say(String(format: "  ring records per packet        %8.2f  (%d read by the host: intents, state, heartbeats)",
                   Double(records) / packets, records))
        say(String(format: "  DMA intents per packet         %8.2f", (agent.number("intents") ?? 0) / packets))
    }

    private func hostRingRecords(_ result: RunResult) throws -> Int {
        guard let json = result.hostStatisticsJSON,
              let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let agent = object["agent"] as? [String: Any], let records = agent["recordsRead"] as? Int
        else { throw BenchError("vpio-host's statistics have no agent ring counters") }
        return records
    }
}
