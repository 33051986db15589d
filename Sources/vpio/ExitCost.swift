import ArgumentParser
import Foundation
import KVMProbe

struct ExitCostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exit-cost",
        abstract: "Measure a port-I/O VM exit round trip on /dev/kvm (ns and cycles per exit).",
        discussion: """
            A tiny guest (32-bit flat protected mode) loops `out dx,al; in al,dx` on one port, then halts. \
            Every access exits to user space (KVM_EXIT_IO), is answered here, and KVM_RUN re-enters the guest: \
            the figure is the cost of one such round trip on this machine, the per-exit cost the exit counts \
            of `vpio run` are multiplied by. After a warm-up, the timed exits are split into batches; the \
            report gives the median over batches and the spread (CLOCK_MONOTONIC and rdtsc).

            When KVM cannot be used the command prints one line saying why and exits with its own status: \
            3 no device, 4 permission denied, 5 cannot open, 6 not a KVM device, 7 wrong API version, \
            8 KVM_CREATE_VM failed, 9 guest memory setup failed, 10 vCPU setup failed, 11 KVM_RUN failed, \
            12 the guest did not reach its I/O loop, 13 the guest left the loop early, 14 an unexpected access.
            """)

    @Option(help: "Port-I/O exits to time (after the warm-up).")
    var exits = 20000

    @Option(help: "Exits to run before timing.")
    var warmup = 1000

    @Option(help: "Batches the timed exits are split into (median and spread are over batches).")
    var batches = 10

    @Option(help: ArgumentHelp("The KVM device.", valueName: "path"))
    var device = "/dev/kvm"

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard batches >= 1 else { throw ValidationError("--batches must be at least 1") }
        guard exits >= batches else { throw ValidationError("--exits must be at least --batches") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
    }

    func run() throws {
        var options = ExitCost.Options()
        options.devicePath = device
        options.exits = exits
        options.warmup = warmup
        options.batches = batches
        let report: ExitCostReport
        do {
            report = try ExitCost.measure(options)
        } catch let error as KVMError {
            FileHandle.standardError.write(Data("vpio exit-cost: \(error)\n".utf8))
            throw ExitCode(error.exitStatus)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            say(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            printText(report)
        }
    }

    private func printText(_ report: ExitCostReport) {
        let e = report.exits, kvm = report.kvm
        say("vpio exit-cost — \(report.source)")
        say("  guest: \(report.guest.mode), code at \(String(format: "0x%x", report.guest.codeAddress)): \(report.guest.code); port \(String(format: "0x%x", report.guest.port))")
        say("  KVM API \(kvm.apiVersion); modules \(report.host.kvmModules.joined(separator: ", ")); CPU \(report.host.cpuModel)"
            + (report.host.hypervisorFlag ? " (hypervisor flag set)" : "")
            + String(format: "; load average %.2f", report.host.loadAverage))
        say("  capabilities: " + kvm.capabilities.sorted { $0.key < $1.key }.map { "\($0.key.replacingOccurrences(of: "KVM_CAP_", with: ""))=\($0.value)" }.joined(separator: " "))
        say("  exits: \(e.timed) timed in \(e.batches) batches after \(e.warmup) warm-up; KVM_EXIT_IO \(e.ioOut + e.ioIn) (\(e.ioOut) out, \(e.ioIn) in), KVM_EXIT_HLT \(e.hlt), other \(e.other)")
        say(String(format: "  ns per exit      %10.1f median  (min %.1f, max %.1f over batches)",
                   report.nsPerExit.median, report.nsPerExit.min, report.nsPerExit.max))
        say(String(format: "  cycles per exit  %10.0f median  (min %.0f, max %.0f)",
                   report.cyclesPerExit.median, report.cyclesPerExit.min, report.cyclesPerExit.max))
        say(String(format: "  TSC              %10.3f GHz (rdtsc over CLOCK_MONOTONIC during the run)", report.tscGHz)
            + (kvm.vcpuTSCKHz.map { String(format: "; KVM_GET_TSC_KHZ %.3f GHz", Double($0) / 1e6) } ?? ""))
    }
}
