import Glibc
import Testing
import VPIOSystem

@Suite struct DescriptorPassingTests {
    @Test func memfdAndEventFDTravelAndWork() throws {
        let (sender, receiver) = try UnixSocket.pair()
        let guestRAM = try OwnedDescriptor.memoryFile(name: "vpio-test-ram", length: 8192)
        let senderView = try MappedRegion(descriptor: guestRAM.descriptor, offset: 0, length: 8192, writable: true)
        try senderView.write(Array("hello from the sender".utf8), at: 4096 + 10)
        let interrupt = try EventFD()

        try sender.send([0xD0, 0x0D], descriptors: [guestRAM.descriptor, interrupt.descriptor])
        let message = try #require(try receiver.receiveExactly(2, maxDescriptors: 4))
        #expect(message.bytes == [0xD0, 0x0D])
        try #require(message.descriptors.count == 2)

        // The received memfd maps the same pages: data written before and after the transfer.
        let receiverView = try MappedRegion(
            descriptor: message.descriptors[0].descriptor, offset: 4096, length: 4096, writable: true)
        #expect(try receiverView.read(at: 10, count: 21) == Array("hello from the sender".utf8))
        try receiverView.write([42], at: 0)
        #expect(try senderView.read(at: 4096, count: 1) == [42])

        // The received eventfd is the sender's counter.
        let adopted = EventFD(adopting: message.descriptors[1])
        #expect(!message.descriptors[1].isOwned)
        try interrupt.signal(3)
        try interrupt.signal()
        #expect(try adopted.drain() == 4)
        #expect(try adopted.drain() == 0)
        try adopted.signal(7)
        #expect(try interrupt.drain() == 7)
    }

    @Test func tooManyDescriptorsAreClosedAndReported() throws {
        let (sender, receiver) = try UnixSocket.pair()
        // Send one end of three socket pairs; once every copy of an end is closed, the other
        // end reports a hang-up, which shows the receiver closed what it got.
        let pairs = try (0..<3).map { _ in try UnixSocket.pair() }
        try sender.send([1, 2, 3, 4], descriptors: pairs.map { $0.0.descriptor })
        pairs.forEach { $0.0.close() }
        try sender.send([5, 6])  // the next message must still be readable afterwards

        #expect(throws: UnixSocket.ReceiveError.tooManyDescriptors(bytes: [1, 2, 3, 4], received: 3, limit: 2)) {
            try receiver.receiveExactly(4, maxDescriptors: 2)
        }
        for (_, far) in pairs {
            #expect(try peerClosed(far.descriptor))
        }
        #expect(try receiver.receiveExactly(2, maxDescriptors: 0)?.bytes == [5, 6])
    }

    @Test func unclaimedDescriptorsCloseOnDeinit() throws {
        let (sender, receiver) = try UnixSocket.pair()
        let (near, far) = try UnixSocket.pair()
        try sender.send([1], descriptors: [near.descriptor])
        near.close()
        do {
            let message = try #require(try receiver.receiveExactly(1, maxDescriptors: 1))
            #expect(message.descriptors.count == 1)
            #expect(try !peerClosed(far.descriptor))
        }
        #expect(try peerClosed(far.descriptor))
    }

    @Test func takenDescriptorStaysOpen() throws {
        let (near, far) = try UnixSocket.pair()
        let owned = OwnedDescriptor(near.descriptor)
        _ = owned.take()  // `near` still owns it and closes it
        #expect(!owned.isOwned)
        owned.close()  // a no-op once taken
        #expect(try !peerClosed(far.descriptor))
        near.close()
        #expect(try peerClosed(far.descriptor))
    }

    @Test func receivedDescriptorsAreCloseOnExec() throws {
        let (sender, receiver) = try UnixSocket.pair()
        let eventfd = try EventFD()
        try sender.send([0], descriptors: [eventfd.descriptor])
        let message = try #require(try receiver.receiveExactly(1, maxDescriptors: 1))
        let flags = fcntl(message.descriptors[0].rawValue, F_GETFD)
        #expect(flags >= 0 && flags & FD_CLOEXEC != 0)
    }
}
