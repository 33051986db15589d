import AccessTrace
import DeviceBus
import Foundation
import NE2000
import QEMUDevice
import Testing
import TraceReplay

/// The committed traces of both drivers (Traces/README.md) replayed on our NE2000 — the device they were
/// recorded on — and on QEMU's ne2k_pci at once, frames injected into both at the recorded points.
@Suite("Differential replay of recorded traces: ours against QEMU's ne2k_pci (issue 13)", .serialized)
struct TraceDifferentialTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Traces")
    static let traces = ["linux-download-ssh.vptrace", "ipxe-download.vptrace"]

    static func records(_ name: String) throws -> [TraceRecord] {
        try TraceDecoder.decodeRecords(Array(Data(contentsOf: directory.appendingPathComponent(name))))
    }

    static func ours() -> ReplaySide {
        let outside = ReplayOutside()
        return ReplaySide(device: NE2000(mac: DifferentialTests.mac, interrupt: outside.line, transmit: outside.sink), outside: outside)
    }

    @Test("each driver's recorded trace: only documented divergences", DifferentialTests.enabled, arguments: traces)
    func recordedTraceAgrees(name: String) throws {
        let records = try Self.records(name)
        let scratch = try DifferentialTests.scratchDirectory("trace")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let installation = try DifferentialTests.qemu.get()
        let outside = ReplayOutside()
        let qemu = try DeviceOnlyQEMU(command: installation.argvPrefix, environment: installation.environment,
                                      directory: scratch, mac: "52:54:00:12:34:56", interrupt: outside.line, sink: outside.sink)
        let report = DifferentialReplay.run(records, reference: Self.ours(), candidate: ReplaySide(device: qemu.device, outside: outside))
        print("\(name): \(report.accesses) accesses (\(report.reads) reads), \(report.frames) frames in, \(report.transmitted) out, "
              + "\(report.recordedEdges) edges; \(report.divergences.count) divergences, \(report.undocumented.count) undocumented")
        for group in report.grouped {
            print("  \(group.count)× \(group.kind) [\(group.documented?.name ?? "UNDOCUMENTED")]; first \(group.first)")
        }
        #expect(qemu.device.failure == nil, "\(qemu.device.failure.map(String.init(describing:)) ?? "")")
        #expect(report.unfaithful.isEmpty, "ours replays as recorded: \(report.unfaithful.prefix(5))")
        #expect(report.undocumented.isEmpty, "\(report.undocumented.prefix(20).map(String.init(describing:)).joined(separator: "\n"))")
        // Not vacuous: the whole workload ran on both, frames each way.
        #expect(report.reads > 10_000 && report.frames > 40 && report.transmitted > 20)
    }
}
