import Testing
import VPIOSystem

@Suite struct UnixSocketStreamTests {
    @Test func socketPairRoundTrip() throws {
        let (a, b) = try UnixSocket.pair()
        try a.send([1, 2, 3, 4, 5])
        let message = try #require(try b.receiveExactly(5, maxDescriptors: 0))
        #expect(message.bytes == [1, 2, 3, 4, 5])
        #expect(message.descriptors.isEmpty)

        try b.send(Array(repeating: 0xAB, count: 4096))
        let reply = try #require(try a.receiveExactly(4096, maxDescriptors: 0))
        #expect(reply.bytes == Array(repeating: 0xAB, count: 4096))
    }

    @Test func receiveExactlyJoinsSplitSends() throws {
        let (a, b) = try UnixSocket.pair()
        // The kernel never merges a chunk carrying descriptors with the next one in one
        // recvmsg, so this takes at least two reads, each with its own descriptor.
        let (x, y) = try UnixSocket.pair()
        try a.send([1, 2, 3], descriptors: [x.descriptor])
        try a.send([4, 5], descriptors: [y.descriptor])
        try a.send([6, 7])
        let message = try #require(try b.receiveExactly(7, maxDescriptors: 2))
        #expect(message.bytes == [1, 2, 3, 4, 5, 6, 7])
        #expect(message.descriptors.count == 2)
    }

    @Test func receiveStopsAtMessageBoundary() throws {
        let (a, b) = try UnixSocket.pair()
        try a.send([1, 2, 3, 4, 5, 6])
        #expect(try b.receiveExactly(2, maxDescriptors: 0)?.bytes == [1, 2])
        #expect(try b.receiveExactly(4, maxDescriptors: 0)?.bytes == [3, 4, 5, 6])
    }

    @Test func endOfStreamBeforeFirstByteIsNil() throws {
        let (a, b) = try UnixSocket.pair()
        a.close()
        #expect(try b.receiveExactly(16, maxDescriptors: 0) == nil)
    }

    @Test func endOfStreamMidMessageThrows() throws {
        let (a, b) = try UnixSocket.pair()
        try a.send([9, 9, 9])
        a.close()
        #expect(throws: UnixSocket.ReceiveError.endOfStream(received: 3, expected: 8)) {
            try b.receiveExactly(8, maxDescriptors: 0)
        }
    }

    @Test func sendToClosedPeerThrowsEPIPE() throws {
        let (a, b) = try UnixSocket.pair()
        b.close()
        // MSG_NOSIGNAL: an error, not a SIGPIPE that would kill the test process.
        #expect(throws: SystemCallError(call: "sendmsg", errno: .brokenPipe)) {
            try a.send([1])
        }
    }

    @Test func closeIsIdempotent() throws {
        let (a, b) = try UnixSocket.pair()
        a.close()
        a.close()
        #expect(try peerClosed(b.descriptor))
    }
}

@Suite struct UnixSocketPathTests {
    @Test func listenAcceptConnect() throws {
        let directory = try TemporaryDirectory()
        let path = directory.appending("server.sock")
        let server = try UnixSocket.listen(at: path)
        let client = try UnixSocket.connect(to: path)
        let connection = try server.accept()
        try client.send(Array("ping".utf8))
        #expect(try connection.receiveExactly(4, maxDescriptors: 0)?.bytes == Array("ping".utf8))
        try connection.send(Array("pong".utf8))
        #expect(try client.receiveExactly(4, maxDescriptors: 0)?.bytes == Array("pong".utf8))
    }

    @Test func staleSocketFileIsReplaced() throws {
        let directory = try TemporaryDirectory()
        let path = directory.appending("stale.sock")
        let first = try UnixSocket.listen(at: path)
        first.close()  // the socket file stays behind with no listener
        let second = try UnixSocket.listen(at: path)
        let client = try UnixSocket.connect(to: path)
        let connection = try second.accept()
        try client.send([1])
        #expect(try connection.receiveExactly(1, maxDescriptors: 0)?.bytes == [1])
    }

    @Test func liveListenerIsNotReplaced() throws {
        let directory = try TemporaryDirectory()
        let path = directory.appending("live.sock")
        let first = try UnixSocket.listen(at: path)
        #expect(throws: UnixSocket.AddressError.inUse(path)) {
            try UnixSocket.listen(at: path)
        }
        // The first listener still owns the path. It was sent one probe connection, already
        // closed, which reads as an immediate end of stream.
        let probe = try first.accept()
        #expect(try probe.receiveExactly(1, maxDescriptors: 0) == nil)
        let client = try UnixSocket.connect(to: path)
        let connection = try first.accept()
        try client.send([1])
        #expect(try connection.receiveExactly(1, maxDescriptors: 0)?.bytes == [1])
    }

    @Test func regularFileIsRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.appending("not-a-socket")
        let file = try FileDescriptor.open(path, .writeOnly, options: [.create], permissions: .ownerReadWrite)
        try file.writeAll(Array("keep me".utf8))
        try file.close()
        #expect(throws: UnixSocket.AddressError.notASocket(path)) {
            try UnixSocket.listen(at: path)
        }
        let kept = try FileDescriptor.open(path, .readOnly)
        defer { try? kept.close() }
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = try buffer.withUnsafeMutableBytes { try kept.read(into: $0) }
        #expect(Array(buffer[..<count]) == Array("keep me".utf8))
    }

    @Test func overlongAndEmptyPathsAreRefused() throws {
        let long = FilePath("/tmp/" + String(repeating: "x", count: 200))
        #expect(throws: UnixSocket.AddressError.invalidPath(long, limit: 107)) {
            try UnixSocket.listen(at: long)
        }
        #expect(throws: UnixSocket.AddressError.invalidPath("", limit: 107)) {
            try UnixSocket.connect(to: "")
        }
    }

    @Test func connectWithoutListenerThrows() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: SystemCallError(call: "connect", errno: .noSuchFileOrDirectory)) {
            try UnixSocket.connect(to: directory.appending("absent.sock"))
        }
    }
}

@Suite struct ReceiveAvailableTests {
    @Test func returnsWhatIsThereAndNilAtEnd() throws {
        let (a, b) = try UnixSocket.pair()
        try a.send([1, 2, 3])
        try a.send([4, 5])
        var got: [UInt8] = []
        while got.count < 5, let (bytes, fds) = try b.receiveAvailable(maxBytes: 64, maxDescriptors: 0) {
            #expect(fds.isEmpty)
            got += bytes
        }
        #expect(got == [1, 2, 3, 4, 5])
        a.close()
        #expect(try b.receiveAvailable(maxBytes: 64, maxDescriptors: 0) == nil)
    }

    @Test func descriptorsStayWithTheirBytes() throws {
        let (a, b) = try UnixSocket.pair()
        let e = try EventFD()
        try a.send([9, 9], descriptors: [e.descriptor])
        try a.send([7])
        let first = try #require(try b.receiveAvailable(maxBytes: 64, maxDescriptors: 1))
        #expect(first.bytes == [9, 9] && first.descriptors.count == 1)
        let second = try #require(try b.receiveAvailable(maxBytes: 64, maxDescriptors: 1))
        #expect(second.bytes == [7] && second.descriptors.isEmpty)
    }

    /// The framing loop's receive: bytes land after what the buffer holds, nothing available leaves it
    /// as it was, the end of stream is nil.
    @Test func receiveAppendingKeepsWhatTheBufferHeld() throws {
        let (a, b) = try UnixSocket.pair()
        var buffer: [UInt8] = [7, 7]
        #expect(try b.receiveAvailable(appendingTo: &buffer, maxBytes: 64, maxDescriptors: 0)?.isEmpty == true)
        #expect(buffer == [7, 7])
        try a.send([1, 2, 3])
        #expect(try b.receiveAvailable(appendingTo: &buffer, maxBytes: 2, maxDescriptors: 0)?.isEmpty == true)
        #expect(buffer == [7, 7, 1, 2], "at most maxBytes")
        #expect(try b.receiveAvailable(appendingTo: &buffer, maxBytes: 64, maxDescriptors: 0)?.isEmpty == true)
        #expect(buffer == [7, 7, 1, 2, 3])
        a.close()
        #expect(try b.receiveAvailable(appendingTo: &buffer, maxBytes: 64, maxDescriptors: 0) == nil)
        #expect(buffer == [7, 7, 1, 2, 3])
    }

    /// Too many descriptors: all closed, the bytes in the error, the buffer as it was.
    @Test func receiveAppendingWithTooManyDescriptorsLeavesTheBuffer() throws {
        let (a, b) = try UnixSocket.pair()
        let (e1, e2) = (try EventFD(), try EventFD())
        try a.send([4, 5], descriptors: [e1.descriptor, e2.descriptor])
        var buffer: [UInt8] = [9]
        #expect(throws: UnixSocket.ReceiveError.tooManyDescriptors(bytes: [4, 5], received: 2, limit: 1)) {
            try b.receiveAvailable(appendingTo: &buffer, maxBytes: 64, maxDescriptors: 1)
        }
        #expect(buffer == [9])
    }

    /// The control buffer is the socket's own and reused: descriptors still come with their bytes,
    /// receive after receive.
    @Test func descriptorsArriveOverManyReceivesWithOneControlBuffer() throws {
        let (a, b) = try UnixSocket.pair()
        for round in 0..<3 {
            let e = try EventFD()
            try a.send([UInt8(round)], descriptors: [e.descriptor])
            var buffer: [UInt8] = []
            let descriptors = try #require(try b.receiveAvailable(appendingTo: &buffer, maxBytes: 64, maxDescriptors: 1))
            #expect(buffer == [UInt8(round)] && descriptors.count == 1)
        }
    }
}
