import ArgumentParser
import Foundation
import VPIOLaunch
import VPIOProvision

struct ShareBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "share-bench",
        abstract: "Benchmark one NE2000 shared by 1, 2 and 3 guests: throughput, switches, time held.",
        discussion: """
            For each guest count, one run of `vpio run --guests N --workloads download` (every guest downloads \
            its own file of about --size at the same time through the one vpio-host and device). Prints per guest \
            its MiB/s, and for the run: aggregate MiB/s (all bytes over the longest download), switches and \
            switches per second, device accesses and microseconds per switch (save and restore, measured in \
            vpio-host), and the time held accesses waited (median, 90th percentile, max). Times under TCG are \
            not hardware times; the access counts are exact. Compare only figures from one invocation.
            """)

    @OptionGroup var cache: CacheOptions

    @Option(help: ArgumentHelp("Size of each guest's file (K/M suffixes; guest N gets 4 KiB more per guest before it).", valueName: "bytes"))
    var size = ByteSize(bytes: 256 << 10)

    @Option(help: "The largest guest count (from 1).")
    var maxGuests = 3

    @Option(help: ArgumentHelp("The vpio-host executable (default: beside this vpio).", valueName: "path"))
    var hostBinary: String?

    @Option(help: ArgumentHelp("Limit for each run in seconds.", valueName: "seconds"))
    var timeout = 600

    func validate() throws {
        guard (1...4).contains(maxGuests) else { throw ValidationError("--max-guests must be 1 to 4") }
        guard size.bytes >= 16 << 10 else { throw ValidationError("--size must be at least 16K") }
    }

    func run() throws {
        cache.bootstrapLogging()
        guard geteuid() == 0 else { throw ValidationError("vpio share-bench must run as root (network namespaces, TAP)") }
        let host = hostBinary.map { URL(fileURLWithPath: $0) } ?? siblingExecutable("vpio-host")
        var lines: [String] = []
        for guests in 1...maxGuests {
            var configuration = RunConfiguration(layout: try cache.layout(), nic: .vpioHost(binary: host, extraArguments: ["--mode", "vmm-model"]))
            configuration.workloads = ["download"]
            configuration.size = size.bytes
            configuration.guests = guests
            configuration.timeout = TimeInterval(timeout)
            configuration.echoConsole = false
            say("[share-bench] \(guests) guest\(guests == 1 ? "" : "s"), \(size.bytes) bytes each…")
            let result = try ExperimentRunner(configuration: configuration).run()
            guard result.succeeded else { throw BenchError("the \(guests)-guest run failed: \(result.failures.joined(separator: "; "))") }
            lines += report(result, guests: guests)
        }
        say("")
        say("vpio share-bench — one NE2000, \(size.bytes) bytes per guest, TCG")
        lines.forEach(say)
    }

    private func report(_ result: RunResult, guests: Int) -> [String] {
        let downloads = ([result] + result.otherGuests).compactMap(\.download)
        let longest = downloads.map(\.seconds).max() ?? 0
        let aggregate = longest > 0 ? Double(downloads.map(\.bytes).reduce(0, +)) / 1_048_576 / longest : 0
        let each = downloads.enumerated().map { String(format: "g%d %.4f", $0.offset + 1, $0.element.mibPerSecond) }.joined(separator: ", ")
        var lines = [String(format: "  %d guest%@: aggregate %.4f MiB/s; per guest MiB/s: %@", guests, guests == 1 ? "" : "s", aggregate, each)]
        guard guests > 1, let json = result.hostStatisticsJSON, let shared = try? JSONDecoder().decode(SharedStatisticsView.self, from: Data(json.utf8)) else {
            return lines
        }
        lines.append(String(format: "    switches %d (%.1f per second), %.0f device accesses and %.0f µs per switch",
                            shared.switches.total, longest > 0 ? Double(shared.switches.total) / longest : 0,
                            shared.switches.accessesMean, shared.switches.microsecondsMedian))
        for (name, guest) in shared.guests.sorted(by: { $0.key < $1.key }) {
            lines.append(String(format: "    %@: %d accesses held, waited median %.1f ms, p90 %.1f ms, max %.1f ms", name, guest.holds.count,
                                guest.holds.p50 / 1000, guest.holds.p90 / 1000, guest.holds.max / 1000))
        }
        return lines
    }
}
