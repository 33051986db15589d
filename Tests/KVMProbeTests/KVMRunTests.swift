import Foundation
import Glibc
import Testing
@testable import KVMProbe

/// Whether this machine's /dev/kvm can run a guest; when not, the reason is printed and the
/// KVM-dependent tests are skipped.
let kvmUnavailableReason: String? = {
    do {
        _ = try VCPU(vm: VirtualMachine(device: KVMDevice(), memorySize: ExitCost.memorySize))
        return nil
    } catch {
        print("KVMProbeTests: skipping the /dev/kvm tests: \(error)")
        return "\(error)"
    }
}()

@Suite(.enabled(if: kvmUnavailableReason == nil, "/dev/kvm cannot run a guest here"))
struct KVMRunTests {
    @Test(arguments: [1, 2, 1001])
    func loopMakesExactlyTheRequestedIOExitsThenOneHLT(exits: Int) throws {
        let vcpu = try VCPU(vm: VirtualMachine(device: KVMDevice(), memorySize: ExitCost.memorySize))
        let run = try ExitCost.runLoop(vcpu: vcpu, program: .ioLoop, port: 0x300, exits: exits, stampsAt: [0, exits])
        #expect(run.counts.io == exits)
        #expect(run.counts.ioIn == (exits + 1) / 2)
        #expect(run.counts.ioOut == exits / 2)
        #expect(run.counts.hlt == 1)
        #expect(run.stamps.count == 2)
    }

    @Test func measureReportsTheCountsAndWhereTheFigureCameFrom() throws {
        var options = ExitCost.Options()
        options.exits = 3000
        options.warmup = 100
        options.batches = 3
        let report = try ExitCost.measure(options)
        #expect(report.exits == .init(timed: 3000, warmup: 100, batches: 3, ioOut: 1550, ioIn: 1550, hlt: 1, other: 0))
        #expect(report.nsPerExit.batches.count == 3)
        #expect(report.cyclesPerExit.batches.count == 3)
        #expect(report.nsPerExit.min > 0 && report.nsPerExit.min <= report.nsPerExit.median && report.nsPerExit.median <= report.nsPerExit.max)
        #expect(report.kvm.apiVersion == 12)
        #expect(report.kvm.capabilities["KVM_CAP_USER_MEMORY"] == 1)
        #expect(report.source.contains("KVM_EXIT_IO"))
        #expect(report.guest.code == "ee ec e2 fc f4")
        let decoded = try JSONDecoder().decode(ExitCostReport.self, from: JSONEncoder().encode(report))
        #expect(decoded == report)
    }

    @Test func aGuestThatHaltsAtOnceNeverReachedTheLoop() throws {
        let vcpu = try VCPU(vm: VirtualMachine(device: KVMDevice(), memorySize: ExitCost.memorySize))
        let haltOnly = GuestProgram(assembling: [.hlt], outOffset: 0, inOffset: 0)
        #expect(throws: KVMError.guestDidNotReachLoop(.hlt)) {
            try ExitCost.runLoop(vcpu: vcpu, program: haltOnly, port: 0x300, exits: 2, stampsAt: [])
        }
    }

    @Test func aGuestThatRunsOffItsCodeIsReportedWithItsExit() throws {
        // Zero bytes decode as `add [eax], al`: the guest slides through its memory without
        // exiting until it fetches past the end of the slot.
        let vcpu = try VCPU(vm: VirtualMachine(device: KVMDevice(), memorySize: ExitCost.memorySize))
        let nothing = GuestProgram(assembling: [], outOffset: 0, inOffset: 0)
        do {
            _ = try ExitCost.runLoop(vcpu: vcpu, program: nothing, port: 0x300, exits: 2, stampsAt: [])
            Issue.record("an empty program reached the I/O loop")
        } catch let error as KVMError {
            guard case .guestDidNotReachLoop = error else { Issue.record("wrong reason: \(error)"); return }
            #expect(error.exitStatus == 12)
        }
    }

    @Test func aGuestThatHaltsEarlyLeftTheLoop() throws {
        let vcpu = try VCPU(vm: VirtualMachine(device: KVMDevice(), memorySize: ExitCost.memorySize))
        let oneIn = GuestProgram(assembling: [.inALDX, .hlt], outOffset: 0, inOffset: 0)
        #expect(throws: KVMError.guestLeftLoop(.hlt, afterIOExits: 1)) {
            try ExitCost.runLoop(vcpu: vcpu, program: oneIn, port: 0x300, exits: 2, stampsAt: [])
        }
    }

    @Test func anOutWhereAnInBelongsIsAnUnexpectedAccess() throws {
        let vcpu = try VCPU(vm: VirtualMachine(device: KVMDevice(), memorySize: ExitCost.memorySize))
        let twoOuts = GuestProgram(assembling: [.outDXAL, .outDXAL, .hlt], outOffset: 0, inOffset: 1)
        do {
            _ = try ExitCost.runLoop(vcpu: vcpu, program: twoOuts, port: 0x300, exits: 2, stampsAt: [])
            Issue.record("two outs passed as an out/in pair")
        } catch let error as KVMError {
            guard case .unexpectedAccess(_, afterIOExits: 1) = error else { Issue.record("wrong reason: \(error)"); return }
        }
    }
}
