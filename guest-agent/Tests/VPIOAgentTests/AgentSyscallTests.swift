import Glibc
import Testing
@testable import VPIOAgentCore

@Suite struct AgentSyscallTests {
    /// A fresh file holding `bytes`, removed when the test ends.
    final class ScratchFile {
        let path = "/tmp/vpio-agent-syscall-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        init(_ bytes: [UInt8]) throws {
            _ = try AgentSyscall.retryingEINTR("creat") { creat(path, 0o600) }.closing()
            #expect(try AgentFile(path, writable: true).write(bytes, at: 0) == bytes.count)
        }
        deinit { unlink(path) }
    }

    @Test func eintrIsRetriedAndOtherErrorsAreThrownWithTheCall() throws {
        var failures: [Int32] = [EINTR, EINTR]
        var calls = 0
        let result = try AgentSyscall.retryingEINTR("fake") { () -> Int32 in
            calls += 1
            guard !failures.isEmpty else { return 5 }
            errno = failures.removeFirst()
            return -1
        }
        #expect(result == 5 && calls == 3)
        #expect(throws: AgentSyscallError(call: "fake", errno: EIO)) {
            try AgentSyscall.retryingEINTR("fake") { () -> Int32 in errno = EIO; return -1 }
        }
    }

    @Test func aWholeFileIsReadUpToTheLimit() throws {
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        let file = try ScratchFile(bytes)
        #expect(try AgentFile(file.path).readAll(limit: 1 << 20) == bytes)
        #expect(try AgentFile(file.path).readAll(limit: 4097) == Array(bytes.prefix(4097)))
    }

    @Test func positionedReadsAndWritesTouchOnlyTheirBytes() throws {
        let file = try ScratchFile([UInt8](repeating: 0, count: 16))
        #expect(try AgentFile(file.path, writable: true).write([0xAA, 0xBB], at: 6) == 2)
        let reader = try AgentFile(file.path)
        #expect(try reader.read(count: 4, at: 5) == [0, 0xAA, 0xBB, 0])
        #expect(try reader.read(count: 4, at: 14) == [0, 0])   // short at the end
        #expect(try reader.read(count: 4, at: 16) == [])
    }

    @Test func aMissingFileFailsWithItsErrno() {
        #expect(throws: AgentSyscallError(call: "open /nonexistent/vpio", errno: ENOENT)) { try AgentFile("/nonexistent/vpio") }
        #expect(readFile("/nonexistent/vpio") == nil)
        #expect(AgentSyscallError(call: "open x", errno: ENOENT).description == "open x: No such file or directory")
    }

    @Test func aReadOnlyFileRefusesWrites() throws {
        let file = try ScratchFile([1])
        #expect(throws: AgentSyscallError(call: "pwrite", errno: EBADF)) { try AgentFile(file.path).write([2], at: 0) }
    }

    @Test func directoryListingsLeaveOutDotEntries() throws {
        let file = try ScratchFile([])
        let names = listDirectory("/tmp")
        #expect(names.contains(String(file.path.dropFirst("/tmp/".count))))
        #expect(!names.contains(".") && !names.contains(".."))
        #expect(listDirectory("/nonexistent/vpio").isEmpty)
    }

    @Test func theRingMappingSharesTheFilesBytesAndCanBeLocked() throws {
        let file = try ScratchFile([UInt8](repeating: 7, count: 4096))
        let fd = open(file.path, O_RDWR | O_CLOEXEC)
        defer { close(fd) }
        let base = try AgentSyscall.mapShared(length: 4096, descriptor: fd)
        defer { AgentSyscall.unmap(base, length: 4096) }
        #expect(base.load(fromByteOffset: 4095, as: UInt8.self) == 7)
        base.storeBytes(of: 9, toByteOffset: 0, as: UInt8.self)
        #expect(try AgentFile(file.path).read(count: 1, at: 0) == [9])
        try AgentSyscall.lock(base, length: 4096)
        #expect(throws: AgentSyscallError(call: "mmap", errno: EBADF)) { try AgentSyscall.mapShared(length: 4096, descriptor: -1) }
    }

    @Test func errnoTextTakesEitherSign() {
        #expect(errnoText(ENOENT) == "No such file or directory")
        #expect(errnoText(-ENOENT) == errnoText(ENOENT))
    }
}

@Suite struct ELFObjectTests {
    @Test func thisTestBinaryHasTextAndSymbols() throws {
        let elf = try ELFObject(path: "/proc/self/exe")
        let text = try #require(elf.sections.first { $0.name == ".text" })
        #expect(!text.bytes.isEmpty && text.bytes.count == Int(text.header.sh_size))
        let symbols = try #require(elf.symbols)
        #expect(symbols.contains { $0.size > 0 && $0.section == text.index })
    }

    @Test func aFileThatIsNotELFIsRefused() throws {
        let file = try AgentSyscallTests.ScratchFile(Array("not an ELF object".utf8))
        do {
            _ = try ELFObject(path: file.path)
            Issue.record("a text file parsed as ELF")
        } catch {
            guard case .notELF = error else { Issue.record("wrong error: \(error)"); return }
        }
        #expect(throws: ScanError.self) { try ELFObject(path: "/nonexistent/vpio.ko") }
    }
}

private extension Int32 {
    /// Closes this descriptor (test helper for `creat`).
    func closing() { _ = close(self) }
}
