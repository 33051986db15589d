import Testing
import VPIOSystem

@Suite struct PollSetTests {
    /// One set reused round after round: each wait reports only that round's events.
    @Test func aReusedSetReportsEachRoundAfresh() throws {
        let (a, b) = try UnixSocket.pair()
        var set = PollSet()
        set.append(b.descriptor, .readable)
        try set.wait(timeoutMilliseconds: 0)
        #expect(set.events(at: 0) == [])
        try a.send([1])
        try set.wait(timeoutMilliseconds: 1000)
        #expect(set.events(at: 0) == .readable)
        set.removeAll()
        #expect(set.count == 0)
        set.append(a.descriptor, .readable)
        set.append(b.descriptor, .writable)
        try set.wait(timeoutMilliseconds: 1000)
        #expect(set.count == 2)
        #expect(set.events(at: 0) == [] && set.events(at: 1) == .writable)
    }

    @Test func timesOutWithEmptyEvents() throws {
        let (a, b) = try UnixSocket.pair()
        var set = PollSet()
        set.append(a.descriptor, .readable)
        try set.wait(timeoutMilliseconds: 20)
        #expect(set.events(at: 0) == [])
        withExtendedLifetime(b) {}
    }
}

@Suite struct PollTests {
    @Test func readableWhenDataArrives() throws {
        let (a, b) = try UnixSocket.pair()
        #expect(try Poll.wait([(b.descriptor, .readable)], timeoutMilliseconds: 0) == [[]])
        try a.send([1])
        let events = try Poll.wait([(a.descriptor, .readable), (b.descriptor, .readable)], timeoutMilliseconds: 1000)
        #expect(events == [[], .readable])
    }

    @Test func hangupWhenPeerCloses() throws {
        let (a, b) = try UnixSocket.pair()
        a.close()
        let events = try Poll.wait([(b.descriptor, .readable)], timeoutMilliseconds: 1000)
        #expect(events[0].contains(.hangup))
    }

    @Test func writableSocket() throws {
        let (a, b) = try UnixSocket.pair()
        #expect(try Poll.wait([(a.descriptor, .writable)], timeoutMilliseconds: 0) == [.writable])
        withExtendedLifetime(b) {}
    }

    @Test func timesOutWithEmptyEvents() throws {
        let (a, b) = try UnixSocket.pair()
        #expect(try Poll.wait([(a.descriptor, .readable)], timeoutMilliseconds: 20) == [[]])
        withExtendedLifetime(b) {}
    }

    @Test func unopenedDescriptorIsInvalid() throws {
        let (a, b) = try UnixSocket.pair()
        let neverOpened = FileDescriptor(rawValue: 100_000)
        let events = try Poll.wait([(a.descriptor, .readable), (neverOpened, .readable)], timeoutMilliseconds: 0)
        withExtendedLifetime(b) {}
        #expect(events == [[], .invalid])
    }
}

@Suite struct EventFDTests {
    @Test func signalAccumulatesAndDrainResets() throws {
        let event = try EventFD()
        #expect(try event.drain() == 0)
        try event.signal()
        try event.signal(41)
        #expect(try Poll.wait([(event.descriptor, .readable)], timeoutMilliseconds: 0) == [.readable])
        #expect(try event.drain() == 42)
        #expect(try event.drain() == 0)
    }

    @Test func blockingAdoptedEventFDDoesNotBlockDrain() throws {
        // A peer's eventfd may lack O_NONBLOCK; clear it on a copy of ours to stand in for one.
        let event = try EventFD()
        let copy = try event.descriptor.duplicate()
        let adopted = EventFD(adopting: OwnedDescriptor(copy))
        try clearNonBlocking(copy)
        #expect(try adopted.drain() == 0)
        try event.signal(2)
        #expect(try adopted.drain() == 2)
    }

    /// A peer can fill its blocking eventfd to the maximum: a signal then fails instead of blocking the
    /// host's single loop (issue 11).
    @Test func aFullBlockingAdoptedEventFDDoesNotBlockSignal() throws {
        let event = try EventFD()
        let copy = try event.descriptor.duplicate()
        let adopted = EventFD(adopting: OwnedDescriptor(copy))
        try clearNonBlocking(copy)
        try event.signal(UInt64.max - 1)
        #expect(throws: EventFD.WouldBlock()) { try adopted.signal() }
        #expect(try adopted.drain() == UInt64.max - 1)
        try adopted.signal()
        #expect(try adopted.drain() == 1)
    }
}
