import Foundation
import Testing
import VPIOLaunch
import VPIOMonitor

/// Issue 13, item 3: QEMU's ne2k_pci behind vpio-host (`--device qemu-ne2k`), an NE2000 nobody here
/// wrote, under the same monitors: Linux's download and ssh pass, and each mode's exit ratio is within
/// the compare tolerance (25 %) of the same workload on our NE2000, run just before.
@Suite("End to end: QEMU's ne2k_pci behind vpio-host (issue 13)", .serialized)
struct QEMUDeviceEndToEndTests {
    static let tolerance = 0.25

    func run(device: String) throws -> (RunResult, ExitLedger) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-qdev-\(getpid())-\(device)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let json = dir.appendingPathComponent("result.json"), ledger = dir.appendingPathComponent("ledger.json")
        let run = try EndToEnd.run(["--device", device, "--workloads", "download,ssh", "--size", "256K",
                                    "--result-json", json.path, "--ledger-json", ledger.path, "--no-agent"])
        let result = try JSONDecoder().decode(RunResult.self, from: Data(contentsOf: json))
        #expect(run.status == 0, "\(device): \(result.failures)")
        return (result, try JSONDecoder().decode(ExitLedger.self, from: Data(contentsOf: ledger)))
    }

    @Test("--device qemu-ne2k: Linux downloads (SHA-256) and runs ssh; exit ratios within 25 % of our NE2000's",
          .enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? "")), .timeLimit(.minutes(8)))
    func qemuNE2KBehindVPIOHost() throws {
        let (ours, oursLedger) = try run(device: "ours")
        let (qemu, qemuLedger) = try run(device: "qemu-ne2k")
        #expect(qemu.download?.checksumOK == true && qemu.download?.bytes == 256 << 10, "\(String(describing: qemu.download))")
        #expect(qemu.ssh?.ok == true)
        #expect(ours.download?.checksumOK == true && ours.ssh?.ok == true)
        for mode in [Mode.vmmModel, .cooperative] {
            let a = oursLedger[mode]?.exitRatio ?? 0, b = qemuLedger[mode]?.exitRatio ?? 0
            print(String(format: "issue 13: %@ exit ratio: ours %.2f %%, QEMU's ne2k_pci %.2f %%", mode.rawValue, a * 100, b * 100))
            #expect(a > 0 && abs(b - a) <= Self.tolerance * a, "\(mode.rawValue): ours \(a), QEMU's \(b)")
        }
        #expect(qemuLedger[.emulated]?.denials == 0 && qemu.guestStatistics["tx_errors"] == 0)
        print("issue 13: guest statistics on QEMU's ne2k_pci: \(qemu.guestStatistics)")
    }
}
