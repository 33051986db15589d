import Foundation
import Supervision
import Testing
import VPIOLaunch
import VPIOProvision

/// Where the built `vpio` is, and whether the machine can run it; the reason when not.
enum EndToEnd {
    /// `$VPIO_BIN_DIR`, else the folder of this test bundle (`.build/<triple>/debug`).
    static var binaryDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["VPIO_BIN_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The test binary may sit inside a bundle folder (…/debug/vpioPackageTests.xctest).
        while dir.pathComponents.count > 1, !FileManager.default.fileExists(atPath: dir.appendingPathComponent("vpio").path) {
            if dir.lastPathComponent == "debug" || dir.lastPathComponent == "release" { break }
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    static var vpio: URL { binaryDirectory.appendingPathComponent("vpio") }

    /// Nil when the end-to-end tests can run; else why not (printed, and the tests are skipped).
    static let skipReason: String? = {
        let reason = findSkipReason()
        if let reason { print("EndToEndTests skipped: \(reason)") }
        return reason
    }()

    static func findSkipReason() -> String? {
        guard geteuid() == 0 else { return "needs root (network namespaces, TAP devices)" }
        guard FileManager.default.isExecutableFile(atPath: vpio.path) else {
            return "no vpio executable at \(vpio.path) (build it, or set VPIO_BIN_DIR)"
        }
        guard let layout = try? CacheLayout.resolve() else { return "no cache directory (set VPIO_CACHE)" }
        let readiness = Provisioner.readiness(of: layout, servedSize: ServedFiles.defaultSize)
        if readiness.qemu == nil { return "no QEMU >= 10.1 with vfio-user-pci; run `vpio provision` first" }
        if !readiness.missing.isEmpty {
            return "cache \(layout.root.path) not provisioned (\(readiness.missing.joined(separator: "; "))); run `vpio provision` first"
        }
        return nil
    }

    /// Runs `vpio ARGS` with the test cache, printing and returning its exit status and combined output.
    static func invoke(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let completion = try ChildProcess.complete([vpio.path] + arguments, step: "vpio \(arguments.first ?? "")")
        print(completion.text)
        return (completion.status, completion.text)
    }

    /// Runs another built tool (`argv[0]` a path) to completion; returns its output, throwing when it failed.
    static func invokeTool(_ argv: [String]) throws -> String {
        let completion = try ChildProcess.complete(argv, step: URL(fileURLWithPath: argv[0]).lastPathComponent)
        guard completion.status == 0 else { throw StepError(step: argv[0], reason: "exit status \(completion.status): \(completion.text)") }
        return completion.text
    }

    /// Runs `vpio run ARGS --no-provision` and returns its exit status and the result lines it printed.
    static func run(_ arguments: [String]) throws -> (status: Int32, result: RunResult, output: String) {
        let layout = try CacheLayout.resolve()
        let (status, text) = try invoke(["run"] + arguments + ["--cache", layout.root.path, "--no-provision", "--timeout", "240"])
        var result = RunResult(configuration: "parsed", workloads: ["download", "ssh"])
        for line in text.split(separator: "\n") {
            if let parsed = ResultLine.parse(String(line)) { result.apply(parsed) }
        }
        return (status, result, text)
    }
}

@Suite("End to end: guest, peer and NIC on this machine", .serialized)
struct EndToEndTests {
    /// The main job as a new user runs it (issue 15): no options but the sizes, so the guest runs the agent,
    /// registered, and vpio-host enforces cooperative mode — with nothing denied and no fallback.
    @Test("vpio run on vpio-host (defaults): 1 MiB download with matching SHA-256 and ssh, cooperative with the agent registered",
          .enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? "")),
          .timeLimit(.minutes(5)))
    func vpioHostDownloadAndSSH() throws {
        let run = try EndToEnd.run(["--workloads", "download,ssh", "--size", "1M"])
        let lines = run.output.split(separator: "\n").map(String.init)
        let agent = try #require(lines.first { $0.hasPrefix("[run] agent: ") }, "vpio run printed no agent line")
        #expect(agent.contains("registration registered"), "\(agent)")
        #expect(agent.contains(" 0 events lost"), "\(agent)")
        let enforcement = try #require(lines.first { $0.hasPrefix("[run] enforcement: ") }, "vpio run printed no enforcement line")
        #expect(enforcement.hasPrefix("[run] enforcement: configured cooperative, now cooperative;"), "\(enforcement)")
        #expect(enforcement.hasSuffix(" 0 denied, no fallback"), "\(enforcement)")
        // vmm-model stands in only while no agent is registered (the driver's probe before the agent starts).
        let changes = lines.filter { $0.hasPrefix("[run] enforcement: at access ") }
        #expect(changes.allSatisfy { $0.contains("(awaiting agent)") || $0.contains("(resumed)") }, "\(changes)")
        // The ledger, every mode side by side: the enforced one marked.
        for mode in ["emulated", "vmm-model", "cooperative*", "on-demand", "passthrough"] {
            #expect(lines.contains { $0.hasPrefix("[run] ledger \(mode) ") }, "no ledger row for \(mode)")
        }
        let download = try #require(run.result.download, "no download result line")
        #expect(download.bytes == ServedFiles.defaultSize)
        #expect(download.checksumOK, "checksum: \(download.status)")
        let ssh = try #require(run.result.ssh, "no ssh result line")
        #expect(ssh.ok)
        #expect(ssh.output.hasPrefix("vpio-ssh-ok "))
        #expect(run.result.guestRC == 0)
        #expect(run.status == 0)
    }

    @Test("vpio run --nic qemu-ne2k (the reference NIC): the same workloads",
          .enabled(if: EndToEnd.skipReason == nil, Comment(rawValue: EndToEnd.skipReason ?? "")),
          .timeLimit(.minutes(5)))
    func qemuNE2KDownloadAndSSH() throws {
        let run = try EndToEnd.run(["--nic", "qemu-ne2k", "--workloads", "download,ssh", "--size", "1M"])
        let download = try #require(run.result.download, "no download result line")
        #expect(download.checksumOK)
        let ssh = try #require(run.result.ssh, "no ssh result line")
        #expect(ssh.ok)
        #expect(run.status == 0)
    }
}

@Suite("Guest result lines")
struct ResultLineTests {
    @Test func parsesDownload() throws {
        let line = try #require(ResultLine.parse("guest| VPIO-RESULT download bytes=1048576 secs=0.19 sha256=abc ok\r"))
        #expect(line.kind == "download")
        #expect(line.fields == ["bytes": "1048576", "secs": "0.19", "sha256": "abc"])
        #expect(line.status == "ok")
    }

    @Test func parsesBracketedValueWithSpacesAndBrackets() throws {
        let line = try #require(ResultLine.parse("VPIO-RESULT ssh secs=1.17 output=[vpio-ssh-ok vm [0]] ok"))
        #expect(line.fields["output"] == "vpio-ssh-ok vm [0]")
        #expect(line.status == "ok")
    }

    @Test func foldsIntoRunResult() {
        var result = RunResult(configuration: "test", workloads: ["download", "ssh"])
        for text in [
            "VPIO-RESULT nic driver=ne2k-pci mac=52:54:00:12:34:56 ok",
            "VPIO-RESULT download bytes=1048576 secs=2.00 sha256=abc mismatch",
            "VPIO-RESULT ssh secs=1.0 output=[] failed",
            "VPIO-RESULT done rc=1 uptime=9.1",
        ] {
            result.apply(ResultLine.parse(text)!)
        }
        #expect(result.download?.mibPerSecond == 0.5)
        #expect(result.download?.checksumOK == false)
        #expect(result.ssh?.ok == false)
        #expect(result.guestRC == 1)
        #expect(!result.succeeded)
        #expect(ResultLine.parse("no marker here") == nil)
    }

    @Test func sizesAndVersions() {
        #expect(ServedFiles.parseSize("1M") == 1 << 20)
        #expect(ServedFiles.parseSize("512K") == 512 << 10)
        #expect(ServedFiles.parseSize("100") == 100)
        #expect(ServedFiles.parseSize("x") == nil)
        #expect(QEMUInstallation.parseVersion("QEMU emulator version 11.1.3 (Debian 1:11.1.3+ds-1~bpo13+1)") == "11.1.3")
        #expect(QEMUInstallation.isRecentEnough("10.1.0"))
        #expect(!QEMUInstallation.isRecentEnough("7.2.19"))
    }
}

@Suite("Launcher and provisioning pieces")
struct LauncherPieceTests {
    @Test func kernelPackageFromAptCacheDepends() {
        let output = """
            linux-image-amd64
              Depends: linux-image-6.1.0-56-amd64
            """
        #expect(GuestKernel.parseKernelPackage(output) == "linux-image-6.1.0-56-amd64")
        #expect(GuestKernel.parseKernelPackage("linux-image-amd64\n") == nil)
    }

    @Test func servedFilesAreDeterministic() {
        let a = ServedFiles.contents(size: 1000)
        #expect(a.count == 1000)
        #expect(a == ServedFiles.contents(size: 1000))
        #expect(a != ServedFiles.contents(size: 1001).prefix(1000))
        #expect(ServedFiles.name(size: 1_048_576) == "download-1048576.bin")
    }

    @Test func qemuLineForVFIOUser() {
        let installation = QEMUInstallation(source: .tree(root: "/t"), version: "11.1.3")
        var parameters = GuestParameters(file: "download-1.bin", sha256: "ab", workloads: ["download", "ssh"])
        parameters.receiveBuffer = 16384
        let line = QEMUCommandLine(
            installation: installation,
            program: .linux(kernel: URL(fileURLWithPath: "/k"), initramfs: URL(fileURLWithPath: "/i"), arguments: parameters.kernelArguments),
            nic: .vfioUser(socket: "/run/x.sock"))
        let argv = line.argv
        #expect(Array(argv.prefix(4)) == ["/t/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "--library-path",
                                          "/t/usr/lib/x86_64-linux-gnu", "/t/usr/bin/qemu-system-x86_64"])
        #expect(argv.contains(#"{"driver":"vfio-user-pci","socket":{"path":"/run/x.sock","type":"unix"},"rombar":0}"#))
        // Exactly what `vpio-host --print-qemu-args --socket /run/x.sock --memory 256` prints, in order.
        let printed = VFIOUserQEMUOptions(socket: "/run/x.sock", memoryMiB: 256).arguments
        #expect(printed.contains("memory-backend-memfd,id=vpio-mem,size=256M,share=on"))
        #expect(argv.indices.contains { Array(argv[$0...].prefix(printed.count)) == printed })
        let append = argv[argv.firstIndex(of: "-append")! + 1]
        #expect(append.hasPrefix("console=ttyS0 quiet panic=-1 vpio_ip=10.77.0.2/24 vpio_peer=10.77.0.1"))
        #expect(append.contains("vpio_workloads=download,ssh"))
        #expect(append.contains("vpio_rmem=16384"))
    }

    @Test func qemuLineForInProcessNE2K() {
        let nic = GuestNIC.qemuDevice(.ne2kPCI, tap: .ifname("vpiotap0"), mac: "52:54:00:12:34:56")
        #expect(nic.qemuArguments(memoryMiB: 128) == [
            "-object", "memory-backend-memfd,id=vpio-mem,size=128M,share=on", "-machine", "memory-backend=vpio-mem",
            "-netdev", "tap,id=n0,ifname=vpiotap0,script=no,downscript=no", "-device", "ne2k_pci,netdev=n0,mac=52:54:00:12:34:56"])
    }

    @Test func printedQEMUArgumentsAreOneShellLine() {
        let options = VFIOUserQEMUOptions(socket: "/run/vpio host/it's.sock", memoryMiB: 1024)
        let device = #"'{"driver":"vfio-user-pci","socket":{"path":"/run/vpio host/it'\''s.sock","type":"unix"},"rombar":0}'"#
        let expected = "-object memory-backend-memfd,id=vpio-mem,size=1024M,share=on -machine memory-backend=vpio-mem -device " + device
        #expect(options.shellLine == expected)
    }
}

@Suite("Agent summary line")
struct AgentSummaryTests {
    @Test func parsesFieldsAndIgnoresOtherLines() {
        let line = "guest| VPIO-AGENT summary accesses=308740 bpf_runs=36713 bpf_run_ns_per_hit=1289 registration=registered"
        let summary = AgentSummary.parse(line)
        #expect(summary?["accesses"] == "308740" && summary?.number("bpf_run_ns_per_hit") == 1289)
        #expect(summary?["registration"] == "registered")
        #expect(AgentSummary.parse("VPIO-RESULT done rc=0") == nil)
    }
}
