import ArgumentParser
import Foundation
import VPIOLaunch
import VPIOProvision

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark vpio-host against QEMU's own in-process NE2000 and RTL8139, and the vfio-user round trip.",
        discussion: """
            In one run: (1) the median round trip of a 4-byte data-port REGION_READ served by vpio-host, beside \
            a bare UNIX-socket echo of the same message sizes (32-byte request, 36-byte reply) — the difference \
            is what vpio-host adds to every guest access — each timed from one client thread and again through \
            QEMU's three-thread relay (the vCPU thread sends and sleeps, the I/O thread polls, receives the \
            reply and wakes it); the relayed echo is the reference every per-access time is set against; \
            (2) for each device (--devices), the same download in a fresh guest through \
            vpio-host and through QEMU's in-process ne2k_pci or rtl8139, each on a TAP in a private network namespace: \
            throughputs, their ratio, the device accesses vpio-host served per MiB (all accesses of the \
            run — boot, driver probe, download, shutdown — over the MiB downloaded), and the time per access \
            during the download (its seconds over those accesses: a lower bound) against the relay reference. Times under TCG are not \
            hardware times; the access counts are exact.
            """)

    @OptionGroup var cache: CacheOptions

    @Option(help: ArgumentHelp("Size of the downloaded file (K/M/G suffixes).", valueName: "bytes"))
    var size = ByteSize(bytes: 2 * 1_048_576)

    @Option(help: "Round trips to time in each of the four socket measurements.")
    var iterations = 20000

    @Option(help: "QEMU accelerator.")
    var accel: Accelerator = .tcg

    @Option(help: ArgumentHelp("The vpio-host executable (default: beside this vpio).", valueName: "path"))
    var hostBinary: String?

    @Option(help: ArgumentHelp("Limit for each guest run in seconds.", valueName: "seconds"))
    var timeout = 600

    @Flag(help: "Measure only the round trips (no guests).")
    var roundTripsOnly = false

    @Option(help: "The devices to compare, comma-separated: ne2000 (ne2k-pci on vpio-host's NE2000 and on QEMU's ne2k_pci), rtl8139 (8139too with use_io=1 on vpio-host's RTL8139; 8139cp on QEMU's rtl8139, an 8139C+ that 8139too refuses).",
            transform: { list in
                try list.split(separator: ",").map { name in
                    guard let device = Device(rawValue: String(name)) else {
                        throw ValidationError("unknown device '\(name)' (known: ne2000, rtl8139)")
                    }
                    return device
                }
            })
    var devices: [Device] = [.ne2000, .rtl8139]

    enum Device: String {
        case ne2000, rtl8139

        /// vpio-host's, then QEMU's in-process device, each with the guest driver it runs.
        func configurations(host: URL) -> [(mode: RunConfiguration.NICMode, driver: GuestParameters.NICDriver?)] {
            switch self {
            case .ne2000: [(.vpioHost(binary: host, extraArguments: []), nil), (.qemuNE2K, nil)]
            case .rtl8139: [(.vpioHost(binary: host, extraArguments: ["--device", "rtl8139", "--mode", "cooperative"]), .rtl8139),
                            (.qemu(.rtl8139), .rtl8139CPlus)]
            }
        }

        var qemuModel: String { self == .ne2000 ? "ne2k" : "rtl8139" }
        var referenceNote: String { self == .ne2000 ? "" : "  (8139cp: C+ descriptor rings, not 8139too)" }
    }

    func validate() throws {
        guard iterations >= 100 else { throw ValidationError("--iterations must be at least 100") }
        guard size.bytes >= 1_048_576 else { throw ValidationError("--size must be at least 1M") }
    }

    func run() throws {
        cache.bootstrapLogging()
        guard geteuid() == 0 else { throw ValidationError("vpio bench must run as root (network namespaces, TAP)") }
        let host = hostBinary.map { URL(fileURLWithPath: $0) } ?? siblingExecutable("vpio-host")

        say("[bench] round trips: \(iterations) bare echoes, then \(iterations) REGION_READs served by vpio-host, "
            + "each from one thread, then through the three-thread relay")
        let trips = RoundTrips(bare: try RoundTrip.bare(iterations: iterations),
                               served: try RoundTrip.vfioUser(hostBinary: host, iterations: iterations),
                               relay: try RoundTrip.relayedBare(iterations: iterations),
                               relayedServed: try RoundTrip.relayedVFIOUser(hostBinary: host, iterations: iterations))
        if roundTripsOnly {
            trips.print()
            return
        }

        let layout = try cache.layout()
        for device in devices {
            let results = try device.configurations(host: host).map { try download(through: $0, layout: layout) }
            report(device, ours: results[0], reference: results[1], trips: trips)
        }
        trips.print()
    }

    /// One download in a fresh guest through `nic`.
    private func download(through nic: (mode: RunConfiguration.NICMode, driver: GuestParameters.NICDriver?),
                          layout: CacheLayout) throws -> RunResult {
        var configuration = RunConfiguration(layout: layout, nic: nic.mode)
        configuration.workloads = ["download"]
        configuration.size = size.bytes
        configuration.accelerator = accel
        configuration.timeout = TimeInterval(timeout)
        configuration.echoConsole = false
        configuration.nicDriver = nic.driver
        say("[bench] downloading \(size.bytes) bytes through \(nic.mode.label)\(nic.driver.map { " (\($0.rawValue))" } ?? "")…")
        let result = try ExperimentRunner(configuration: configuration).run()
        guard result.succeeded, let download = result.download else {
            throw BenchError("the \(nic.mode.label) run failed: \(result.failures.joined(separator: "; "))")
        }
        say(String(format: "[bench]   %.3f MiB/s (%.2f s), checksum ok", download.mibPerSecond, download.seconds))
        return result
    }

    private func report(_ device: Device, ours result: RunResult, reference referenceResult: RunResult, trips: RoundTrips) {
        let ours = result.download!, reference = referenceResult.download!
        let accesses = (try? deviceAccesses(result)) ?? 0
        let mib = Double(ours.bytes) / 1_048_576
        say("")
        say("vpio bench, \(device.rawValue) — \(ours.bytes) bytes, \(accel.rawValue), same guest, same peer (TAP in a private namespace)")
        say(String(format: "  throughput via vpio-host (vfio-user)   %8.3f MiB/s", ours.mibPerSecond))
        let label = "  throughput via QEMU in-process \(device.qemuModel)".padding(toLength: 41, withPad: " ", startingAt: 0)
        say(label + String(format: "%8.3f MiB/s", reference.mibPerSecond) + device.referenceNote)
        say(String(format: "  ratio vpio-host / in-process           %8.3f", ours.mibPerSecond / reference.mibPerSecond))
        say(String(format: "  device accesses served per MiB         %8.0f  (%d accesses over the whole run)", Double(accesses) / mib, accesses))
        let perAccess = ours.seconds * 1_000_000 / Double(max(accesses, 1))
        say(String(format: "  per access during the download       ≥ %8.2f µs = %.2f × the relay reference (download s / accesses)",
                   perAccess, perAccess / trips.relay.median))
        if let handling = handlingPerMessage(result) {
            say(String(format: "  vpio-host's own time per message       %8.2f µs (its clock: poll returning to the round's end)", handling))
        }
    }

    /// vpio-host's loop time per vfio-user message over the run, as its statistics say (nil from a
    /// vpio-host that does not report its loop).
    private func handlingPerMessage(_ result: RunResult) -> Double? {
        guard let json = result.hostStatisticsJSON,
              let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let loop = object["loop"] as? [String: Any], let nanoseconds = loop["handlingNanoseconds"] as? Int,
              let messages = (object["messages"] as? [String: Any])?["messages"] as? Int, messages > 0
        else { return nil }
        return Double(nanoseconds) / 1000 / Double(messages)
    }

    /// BAR reads + writes from vpio-host's statistics of that run.
    private func deviceAccesses(_ result: RunResult) throws -> Int {
        guard let json = result.hostStatisticsJSON,
              let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let accesses = object["accesses"] as? [String: Any],
              let reads = accesses["barReads"] as? Int, let writes = accesses["barWrites"] as? Int
        else { throw BenchError("vpio-host's statistics are missing the access counts") }
        return reads + writes
    }
}


/// The four round-trip measurements of one run.
struct RoundTrips {
    let bare: RoundTrip.Summary
    let served: RoundTrip.Summary
    /// The bare echo and vpio-host, reached through QEMU's three-thread relay.
    let relay: RoundTrip.Summary
    let relayedServed: RoundTrip.Summary

    func print() {
        line("round trip, bare socket echo 32/36 B", bare)
        line("round trip, vpio-host REGION_READ 4 B", served)
        say(String(format: "  added by vpio-host per access          %8.2f µs (median difference)", served.median - bare.median))
        line("relay reference, 3 threads 32/36 B", relay)
        line("vpio-host through the 3-thread relay", relayedServed)
        say(String(format: "  added by vpio-host per relayed access  %8.2f µs (median difference) = %.2f × the relay reference",
                   relayedServed.median - relay.median, relayedServed.median / relay.median))
    }

    private func line(_ label: String, _ summary: RoundTrip.Summary) {
        let padded = label.padding(toLength: 37, withPad: " ", startingAt: 0)
        say(String(format: "  %@  %8.2f µs median (p10 %.2f, p90 %.2f)", padded, summary.median,
                   summary.percentile(0.1), summary.percentile(0.9)))
    }
}

/// Writes a line to stdout at once (unbuffered), so it interleaves with the runner's stderr.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
