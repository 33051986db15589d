import CKVM
import Glibc
import SystemPackage
import Testing
@testable import KVMProbe

@Suite struct KVMSyscallTests {
    /// A syscall stand-in that fails with `errors` first (one per call), then returns `result`.
    final class ScriptedCall {
        var errors: [Int32]
        var calls = 0
        init(_ errors: [Int32]) { self.errors = errors }

        func call(result: Int32) -> Int32 {
            calls += 1
            guard !errors.isEmpty else { return result }
            errno = errors.removeFirst()
            return -1
        }
    }

    @Test func eintrIsRetriedUntilTheCallSucceeds() throws {
        let scripted = ScriptedCall([EINTR, EINTR, EINTR])
        #expect(try KVMSyscall.retryingEINTR { scripted.call(result: 7) } == 7)
        #expect(scripted.calls == 4)
    }

    @Test func anotherErrorIsThrownAfterTheInterruptions() {
        let scripted = ScriptedCall([EINTR, ENOTTY])
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try KVMSyscall.retryingEINTR { scripted.call(result: 0) } }
        #expect(scripted.calls == 2)
    }

    @Test func anIoctlOnAFileThatIsNotKVMFailsWithItsErrno() throws {
        let null = try FileDescriptor.open("/dev/null", .readWrite, options: .closeOnExec)
        defer { try? null.close() }
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try KVMSyscall.ioctl(null, CKVM_GET_API_VERSION) }
        var regs = kvm_regs()
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try KVMSyscall.ioctl(null, .setRegisters, &regs) }
    }

    @Test func everyPointerRequestEncodesItsArgumentsSize() {
        #expect(PointerRequest.setUserMemoryRegion.number == CKVM_SET_USER_MEMORY_REGION)
        #expect(PointerRequest.getSpecialRegisters.number == CKVM_GET_SREGS)
        #expect(PointerRequest.setSpecialRegisters.number == CKVM_SET_SREGS)
        #expect(PointerRequest.setRegisters.number == CKVM_SET_REGS)
        #expect(PointerRequest<kvm_regs>.encodedSize(of: CKVM_SET_REGS) == MemoryLayout<kvm_regs>.size)
        // _IO requests (no argument) encode size 0.
        #expect(PointerRequest<kvm_regs>.encodedSize(of: CKVM_RUN) == 0)
    }

    @Test func theMonotonicClockMovesForward() {
        let first = KVMSyscall.monotonicNanoseconds()
        #expect(first > 0 && KVMSyscall.monotonicNanoseconds() >= first)
    }
}

@Suite struct SharedMappingTests {
    @Test func anonymousMemoryStartsZeroedAndKeepsWhatIsCopiedIn() throws {
        let memory = try SharedMapping(length: 4096)
        #expect(memory.byte(at: 0) == 0 && memory.byte(at: 4095) == 0)
        #expect(memory.copy([1, 2, 3], to: 4093))
        #expect(memory.byte(at: 4093) == 1 && memory.byte(at: 4095) == 3)
        #expect(memory.setByte(0xAB, at: 10))
        #expect(memory.byte(at: 10) == 0xAB)
        #expect(memory.address != 0 && memory.address % 4096 == 0)
    }

    @Test func accessesOutsideTheMappingChangeNothing() throws {
        let memory = try SharedMapping(length: 4096)
        #expect(!memory.copy([1, 2], to: 4095))
        #expect(!memory.copy([1], to: -1))
        #expect(!memory.copy([1], to: Int.max))
        #expect(memory.byte(at: 4095) == 0)
        #expect(memory.byte(at: 4096) == nil && memory.byte(at: -1) == nil)
        #expect(!memory.setByte(1, at: 4096))
    }

    @Test func aDescriptorMappingSharesTheFilesBytes() throws {
        let path = "/tmp/kvmprobe-mapping-\(getpid())"
        let file = try FileDescriptor.open(FilePath(path), .readWrite, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite)
        defer { try? file.close(); unlink(path) }
        _ = try file.writeAll(toAbsoluteOffset: 0, [UInt8](repeating: 0x11, count: 4096))
        let mapping = try SharedMapping(length: 4096, descriptor: file)
        #expect(mapping.byte(at: 100) == 0x11)
        #expect(mapping.setByte(0x22, at: 100))
        var readBack = [UInt8](repeating: 0, count: 1)
        _ = try readBack.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: 100, into: $0) }
        #expect(readBack == [0x22])
    }

    @Test func aZeroLengthMappingIsRefused() {
        #expect(throws: Errno.invalidArgument) { try SharedMapping(length: 0) }
    }
}
