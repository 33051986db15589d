import CKVM
import Foundation
import SystemPackage

/// Measures the round trip of a port-I/O VM exit to user space on a KVM device: a tiny guest in
/// 32-bit flat protected mode loops `out`/`in` on one port; every access exits with KVM_EXIT_IO,
/// is handled here, and KVM_RUN re-enters the guest.
public enum ExitCost {
    /// What to measure.
    public struct Options: Sendable {
        /// The KVM device to open.
        public var devicePath = "/dev/kvm"
        /// Exits timed (after the warm-up).
        public var exits = 20000
        /// Exits run first and not timed (page faults, caches, frequency ramp-up).
        public var warmup = 1000
        /// The timed exits are split into this many consecutive batches; the figures are the
        /// median over batches, with the spread (min, max) beside it.
        public var batches = 10
        /// The I/O port the guest uses (no device behind it: user space answers).
        public var port: UInt16 = 0x300

        public init() {}
    }

    /// Guest-physical address the code is loaded and run at.
    static let codeAddress = 0x1000
    /// Guest RAM: the code's page and a little more. A guest that runs off its code ends in an
    /// MMIO exit at the end of this slot instead of looping without exits.
    static let memorySize = 0x10000
    /// AL when the guest starts (the first `out` carries it when the run starts at the `out`).
    static let initialAL: UInt8 = 0x5A

    /// Runs the measurement and describes where the figure came from.
    ///
    /// `options` must have 1 ≤ batches ≤ exits and warmup ≥ 0 (the CLI validates them). Throws
    /// `KVMError` with the reason when KVM cannot be used or the guest does not behave; the VM,
    /// its memory and the vCPU are released on every path.
    public static func measure(_ options: Options) throws -> ExitCostReport {
        precondition(options.exits >= 1 && options.batches >= 1 && options.batches <= options.exits && options.warmup >= 0)
        let device = try KVMDevice(path: options.devicePath)
        let capabilities = Self.capabilities.compactMap { name, number in device.checkExtension(number).map { (name, $0) } }
        let vm = try VirtualMachine(device: device, memorySize: memorySize)
        let vcpu = try VCPU(vm: vm)
        // Batch boundaries in completed I/O exits: the end of the warm-up, then each batch's end.
        let boundaries = [options.warmup] + (1...options.batches).map { options.warmup + options.exits * $0 / options.batches }
        let run = try runLoop(vcpu: vcpu, program: .ioLoop, port: options.port, exits: options.warmup + options.exits, stampsAt: boundaries)

        var nsPerExit: [Double] = [], cyclesPerExit: [Double] = []
        for batch in 0..<options.batches {
            let count = Double(boundaries[batch + 1] - boundaries[batch])
            nsPerExit.append(Double(run.stamps[batch + 1].ns - run.stamps[batch].ns) / count)
            cyclesPerExit.append(Double(run.stamps[batch + 1].tsc - run.stamps[batch].tsc) / count)
        }
        let first = run.stamps[0], last = run.stamps[options.batches]
        let host = HostFacts.read()
        return ExitCostReport(
            source: source(host: host, devicePath: options.devicePath),
            host: host,
            kvm: .init(devicePath: options.devicePath, apiVersion: KVMDevice.expectedAPIVersion,
                       capabilities: Dictionary(uniqueKeysWithValues: capabilities), vcpuTSCKHz: vcpu.tscKHz),
            guest: .init(mode: "32-bit flat protected mode, no paging", codeAddress: codeAddress,
                         code: GuestProgram.ioLoop.bytes.map { String(format: "%02x", $0) }.joined(separator: " "),
                         port: Int(options.port), accessSize: 1),
            exits: .init(timed: options.exits, warmup: options.warmup, batches: options.batches,
                         ioOut: run.counts.ioOut, ioIn: run.counts.ioIn, hlt: run.counts.hlt, other: 0),
            nsPerExit: .init(nsPerExit),
            cyclesPerExit: .init(cyclesPerExit),
            tscGHz: Double(last.tsc - first.tsc) / Double(last.ns - first.ns),
            measuredAt: ISO8601DateFormatter().string(from: Date()))
    }

    /// KVM_CHECK_EXTENSION results worth recording beside the figure: whether exits could have
    /// been avoided (coalesced PIO/MMIO), whether an in-kernel irqchip exists, and the vCPU limits.
    static let capabilities: [(String, Int32)] = [
        ("KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY),
        ("KVM_CAP_NR_VCPUS", KVM_CAP_NR_VCPUS),
        ("KVM_CAP_MAX_VCPUS", KVM_CAP_MAX_VCPUS),
        ("KVM_CAP_IRQCHIP", KVM_CAP_IRQCHIP),
        ("KVM_CAP_COALESCED_MMIO", KVM_CAP_COALESCED_MMIO),
        ("KVM_CAP_COALESCED_PIO", KVM_CAP_COALESCED_PIO),
        ("KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT),
        ("KVM_CAP_GET_TSC_KHZ", KVM_CAP_GET_TSC_KHZ),
    ]

    private static func source(host: HostFacts, devicePath: String) -> String {
        var kind: [String] = []
        if host.kvmModules.contains("kvm_pvm") { kind.append("nested PVM KVM (kvm_pvm loaded)") }
        if host.hypervisorFlag { kind.append("host is itself a guest (CPU hypervisor flag)") }
        return "\(devicePath) port-I/O round trip: KVM_EXIT_IO to user space and KVM_RUN back, one-byte out/in, "
            + "measured on this machine (\(host.kernel))" + (kind.isEmpty ? "" : ", " + kind.joined(separator: ", "))
    }

    /// Exit counts of one guest run.
    struct Counts: Equatable {
        var ioOut = 0
        var ioIn = 0
        var hlt = 0
        var io: Int { ioOut + ioIn }
    }

    /// A CLOCK_MONOTONIC and TSC reading taken together.
    struct Stamp {
        var ns: UInt64
        var tsc: UInt64

        static func now() -> Stamp {
            Stamp(ns: KVMSyscall.monotonicNanoseconds(), tsc: ckvm_rdtsc())
        }
    }

    /// Runs `program` until HLT, expecting exactly `exits` one-byte accesses on `port`, alternating
    /// out/in, each `out` carrying the previous `in`'s answer. Takes a stamp whenever the number of
    /// completed I/O exits reaches the next value in `stampsAt` (ascending, each ≤ `exits`).
    static func runLoop(vcpu: VCPU, program: GuestProgram, port: UInt16, exits: Int, stampsAt: [Int]) throws -> (counts: Counts, stamps: [Stamp]) {
        let entry = program.entry(forExits: exits)
        precondition(vcpu.vm.memory.copy(program.bytes, to: codeAddress), "guest code outside guest memory")
        try vcpu.enterFlatProtectedMode()
        try vcpu.setRegisters(rip: UInt64(codeAddress + entry.offset), rax: UInt64(initialAL),
                              rcx: UInt64(entry.iterations), rdx: UInt64(port))

        var counts = Counts()
        var stamps: [Stamp] = []
        stamps.reserveCapacity(stampsAt.count)
        var nextStamp = 0
        var expectIn = entry.offset == program.inOffset
        var lastValue = initialAL
        while true {
            while nextStamp < stampsAt.count && stampsAt[nextStamp] == counts.io {
                stamps.append(.now())
                nextStamp += 1
            }
            let exit: GuestExit
            do {
                exit = try vcpu.runUntilExit()
            } catch {
                throw KVMError.runFailed(errno: error, afterIOExits: counts.io)
            }
            guard case .io(let access) = exit else {
                if exit == .hlt && counts.io == exits {
                    counts.hlt += 1
                    return (counts, stamps)
                }
                throw counts.io == 0 ? KVMError.guestDidNotReachLoop(exit) : KVMError.guestLeftLoop(exit, afterIOExits: counts.io)
            }
            guard counts.io < exits, access.port == port, access.size == 1, access.count == 1, access.isIn == expectIn else {
                throw KVMError.unexpectedAccess("\(exit); expected \(expectIn ? "in" : "out") port \(hex(port)), 1 byte x 1", afterIOExits: counts.io)
            }
            if access.isIn {
                lastValue &+= 1
                guard vcpu.answerIn(lastValue) else {
                    throw KVMError.unexpectedAccess("KVM's I/O data offset lies outside kvm_run", afterIOExits: counts.io)
                }
                counts.ioIn += 1
            } else {
                guard let value = vcpu.outByte(), value == lastValue else {
                    throw KVMError.unexpectedAccess("out carried \(vcpu.outByte().map { hex($0) } ?? "nothing"), expected \(hex(lastValue)) (the last answer)", afterIOExits: counts.io)
                }
                counts.ioOut += 1
            }
            expectIn.toggle()
        }
    }
}
