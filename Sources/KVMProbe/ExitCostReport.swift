import Foundation

/// One `vpio exit-cost` measurement, as `--json` prints it (and as `vpio compare` reads it).
public struct ExitCostReport: Codable, Equatable, Sendable {
    /// Where the figure came from, in one sentence (device, what was timed, what kind of KVM).
    public var source: String
    public var host: HostFacts
    public var kvm: KVMFacts
    public var guest: GuestFacts
    public var exits: ExitCounts
    /// Wall time (CLOCK_MONOTONIC) per I/O exit, nanoseconds.
    public var nsPerExit: Spread
    /// Host TSC cycles (rdtsc) per I/O exit.
    public var cyclesPerExit: Spread
    /// TSC ticks per nanosecond over the timed exits: the host TSC frequency in GHz.
    public var tscGHz: Double
    /// When it was measured (ISO 8601, UTC).
    public var measuredAt: String

    /// What KVM itself reported.
    public struct KVMFacts: Codable, Equatable, Sendable {
        public var devicePath: String
        /// KVM_GET_API_VERSION (always 12 here: anything else is refused).
        public var apiVersion: Int32
        /// KVM_CHECK_EXTENSION results by capability name (0 = absent).
        public var capabilities: [String: Int32]
        /// KVM_GET_TSC_KHZ on the vCPU, if the ioctl answered.
        public var vcpuTSCKHz: Int32?
    }

    /// The guest that made the exits.
    public struct GuestFacts: Codable, Equatable, Sendable {
        public var mode: String
        public var codeAddress: Int
        /// The code bytes, hex, space-separated.
        public var code: String
        public var port: Int
        /// Bytes per access.
        public var accessSize: Int
    }

    /// Every exit of the run, by kind. A clean run has `ioOut + ioIn == warmup + timed`, one HLT
    /// and nothing else (any other exit aborts the measurement with an error instead).
    public struct ExitCounts: Codable, Equatable, Sendable {
        /// I/O exits timed.
        public var timed: Int
        /// I/O exits run before timing.
        public var warmup: Int
        /// Batches the timed exits were split into.
        public var batches: Int
        /// KVM_EXIT_IO exits for `out` and for `in`.
        public var ioOut: Int
        public var ioIn: Int
        /// KVM_EXIT_HLT exits.
        public var hlt: Int
        /// Exits of any other kind.
        public var other: Int
    }

    /// A per-batch figure: the median over batches and the spread.
    public struct Spread: Codable, Equatable, Sendable {
        /// The median over batches (mean of the middle two for an even count).
        public var median: Double
        /// The fastest and the slowest batch.
        public var min: Double
        public var max: Double
        /// Each batch's figure, in run order.
        public var batches: [Double]

        /// Summarizes the per-batch `values` (non-empty).
        public init(_ values: [Double]) {
            let sorted = values.sorted()
            let middle = sorted.count / 2
            median = sorted.count.isMultiple(of: 2) ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[middle]
            min = sorted[0]
            max = sorted[sorted.count - 1]
            batches = values
        }
    }
}

/// What the host says about itself: enough to tell a nested KVM from a bare-metal one.
public struct HostFacts: Codable, Equatable, Sendable {
    /// uname release.
    public var kernel: String
    /// /proc/cpuinfo "model name".
    public var cpuModel: String
    /// /proc/cpuinfo lists the `hypervisor` flag: this host is itself a virtual machine.
    public var hypervisorFlag: Bool
    /// Loaded modules whose name starts with `kvm` (`kvm_pvm` marks the nested PVM KVM).
    public var kvmModules: [String]
    /// The 1-minute load average when measured: on a shared machine a high load explains a wide spread.
    public var loadAverage: Double

    static func read() -> HostFacts {
        // /proc/sys/kernel/osrelease is uname's release, /proc/loadavg getloadavg's source: read as
        // text, so no C buffer is involved.
        let kernel = procText("/proc/sys/kernel/osrelease")
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let firstCPU = cpuinfo.components(separatedBy: "\n\n").first ?? ""
        var model = "", flags: [Substring] = []
        for line in firstCPU.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            if key == "model name" { model = parts[1].trimmingCharacters(in: .whitespaces) }
            if key == "flags" { flags = parts[1].split(separator: " ") }
        }
        let modules = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/module")) ?? [])
            .filter { $0.hasPrefix("kvm") }.sorted()
        let load = procText("/proc/loadavg").split(separator: " ").first.flatMap { Double($0) } ?? 0
        return HostFacts(kernel: kernel, cpuModel: model, hypervisorFlag: flags.contains("hypervisor"),
                         kvmModules: modules, loadAverage: load)
    }

    /// A /proc file's text without its trailing newline; empty if it cannot be read.
    private static func procText(_ path: String) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
