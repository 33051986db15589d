import AccessTrace
import ArgumentParser
import DeviceBus
import Foundation
import NE2000
import QEMUDevice
import TraceReplay
import VPIOProvision

struct Differential: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay recorded traces on our NE2000 and QEMU's ne2k_pci at once and list every divergence.",
        discussion: """
            Each trace (from `vpio run --record`, format version 2: it holds the frames the wire handed the NIC) \
            is replayed on both devices together: every write and reset goes to both, each received frame is \
            injected into both at the point the recording had it, and each read's value, the interrupt line \
            after every record and every transmitted frame are compared. The device the trace was recorded on \
            (--recorded-on) is also checked against the recording itself: "unfaithful" counts where it did \
            not replay as recorded (a trace missing frames, or a device that is not deterministic). Values are \
            shown as ours against QEMU's, whichever was recorded on.

            Divergences are grouped by register; each group says which documented divergence (the DP8390 \
            behaviour each side follows; README "Differential testing") covers it, or UNDOCUMENTED. QEMU's \
            ne2k_pci runs as a device-only QEMU over qtest (from the cache: `vpio provision`).

            Exit status: 0 when every divergence is documented and the replay is faithful, 1 otherwise, 2 when \
            a trace or QEMU cannot be had.
            """)

    enum RecordedOn: String, ExpressibleByArgument, CaseIterable {
        case ours
        case qemuNe2k = "qemu-ne2k"
    }

    @OptionGroup var cache: CacheOptions

    @Argument(help: ArgumentHelp("Trace files (version 2).", valueName: "trace"))
    var files: [String]

    @Option(help: "The device the traces were recorded on: the reference each read is checked against.")
    var recordedOn: RecordedOn = .ours

    @Option(help: "The station address the recording run gave the NIC.")
    var mac = "52:54:00:12:34:56"

    @Option(help: "List at most this many undocumented divergences one by one.")
    var list = 20

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one trace file") }
        guard MACAddress(mac) != nil else { throw ValidationError("--mac '\(mac)' is not six hex bytes separated by ':'") }
        guard list >= 0 else { throw ValidationError("--list must be 0 or more") }
    }

    func run() throws {
        guard let installation = QEMUInstallation.locate(in: try cache.layout()) else {
            throw fail(ValidationError("no QEMU >= 10.1 in the cache or on the host; run `vpio provision`"))
        }
        var clean = true
        for file in files {
            let records: [TraceRecord]
            do { records = try loadTraceRecords(file) } catch { throw fail(error) }
            clean = try replay(file, records, installation) && clean
        }
        if !clean { throw ExitCode(1) }
    }

    /// One trace on a fresh pair of devices; returns whether it was clean.
    private func replay(_ file: String, _ records: [TraceRecord], _ installation: QEMUInstallation) throws -> Bool {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-differential-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (oursOutside, qemuOutside) = (ReplayOutside(), ReplayOutside())
        let ours = NE2000(mac: MACAddress(mac)!.bytes, interrupt: oursOutside.line, transmit: oursOutside.sink)
        let qemu: DeviceOnlyQEMU
        do {
            qemu = try DeviceOnlyQEMU(command: installation.argvPrefix, environment: installation.environment, directory: scratch,
                                      mac: mac, interrupt: qemuOutside.line, sink: qemuOutside.sink)
        } catch { throw fail(error) }
        let sides = (ReplaySide(device: ours, outside: oursOutside), ReplaySide(device: qemu.device, outside: qemuOutside))
        var report: ReplayReport
        if recordedOn == .ours {
            report = DifferentialReplay.run(records, reference: sides.0, candidate: sides.1)
        } else {
            report = DifferentialReplay.run(records, reference: sides.1, candidate: sides.0)
            report.divergences = report.divergences.map { $0.swapped() }
        }
        print(Self.render(file, report, reference: recordedOn == .ours ? "ours" : "QEMU's", list: list).joined(separator: "\n"))
        if let failure = qemu.device.failure { print("  QEMU's backend failed: \(failure)") }
        if report.frames == 0 {
            print("  note: the trace holds no frames (version 1, or nothing was received): what the wire delivered cannot be replayed")
        }
        return report.undocumented.isEmpty && report.unfaithful.isEmpty && qemu.device.failure == nil
    }

    static func render(_ file: String, _ report: ReplayReport, reference: String, list: Int) -> [String] {
        var lines = ["\(file): \(report.accesses) accesses (\(report.reads) reads), \(report.frames) frames in, "
                     + "\(report.transmitted) out, \(report.recordedEdges) interrupt edges, \(report.resets) resets",
                     "  \(report.divergences.count) divergences (values: ours against QEMU's; \(report.undocumented.count) undocumented), "
                     + "\(report.unfaithful.count) unfaithful (\(reference) against the recording)"]
        for group in report.grouped {
            lines.append("  \(group.count)× \(group.kind) — \(group.documented?.name ?? "UNDOCUMENTED"); first at \(group.first)")
            if let documented = group.documented { lines.append("      \(documented.behaviour)") }
        }
        lines += report.undocumented.prefix(list).map { "  undocumented: \($0)" }
        lines += report.unfaithful.prefix(list).map { "  unfaithful: \($0)" }
        return lines
    }
}
