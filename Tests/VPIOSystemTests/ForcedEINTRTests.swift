#if DEBUG
import Testing
import VPIOSystem

/// Each wrapper must retry an interrupted call transparently; the hook makes the next calls of
/// one syscall fail with EINTR before they reach the kernel.
@Suite struct ForcedEINTRTests {
    @Test func receiveRetriesInterruptedRecvmsg() throws {
        let (a, b) = try UnixSocket.pair()
        try a.send([1, 2, 3, 4])
        let (message, pending) = try SyscallHooks.withForcedEINTR(count: 3, on: "recvmsg") {
            try b.receiveExactly(4, maxDescriptors: 0)
        }
        #expect(pending == 0)
        #expect(message?.bytes == [1, 2, 3, 4])
    }

    @Test func sendRetriesInterruptedSendmsgWithDescriptors() throws {
        let (a, b) = try UnixSocket.pair()
        let event = try EventFD()
        let (_, pending) = try SyscallHooks.withForcedEINTR(count: 2, on: "sendmsg") {
            try a.send([9, 8, 7], descriptors: [event.descriptor])
        }
        #expect(pending == 0)
        let message = try #require(try b.receiveExactly(3, maxDescriptors: 1))
        #expect(message.bytes == [9, 8, 7])
        // Sent exactly once: one descriptor, and nothing more in the stream.
        #expect(message.descriptors.count == 1)
        #expect(try Poll.wait([(b.descriptor, .readable)], timeoutMilliseconds: 0) == [[]])
    }

    @Test func pollRetriesInterruptedWait() throws {
        let (a, b) = try UnixSocket.pair()
        try a.send([1])
        let (events, pending) = try SyscallHooks.withForcedEINTR(count: 2, on: "poll") {
            try Poll.wait([(b.descriptor, .readable)], timeoutMilliseconds: 1000)
        }
        #expect(pending == 0)
        #expect(events == [.readable])
    }

    @Test func readAndWriteRetryInterruptions() throws {
        let event = try EventFD()
        let (_, writesPending) = try SyscallHooks.withForcedEINTR(count: 2, on: "write") {
            try event.signal(5)
        }
        let (value, readsPending) = try SyscallHooks.withForcedEINTR(count: 2, on: "read") {
            try event.drain()
        }
        #expect(writesPending == 0 && readsPending == 0)
        #expect(value == 5)
    }

    @Test func hookOnlyTouchesTheNamedCallInItsTask() throws {
        let (a, b) = try UnixSocket.pair()
        let (_, pending) = try SyscallHooks.withForcedEINTR(count: 1, on: "recvmsg") {
            try a.send([1])
        }
        #expect(pending == 1)
        #expect(try b.receiveExactly(1, maxDescriptors: 0)?.bytes == [1])
    }
}
#endif
