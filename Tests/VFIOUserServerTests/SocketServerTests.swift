import DeviceBus
import Foundation
import Logging
import PCIFunction
import Testing
import VFIOUserClient
import VFIOUserServer
import VFIOUserWire
import VPIOSystem

/// A device with one writable byte register per offset, so reconnects can see kept state.
final class ScratchDevice: BusDevice {
    let regionSizes: [UInt32: UInt32] = [0: 32]
    var registers = [UInt8](repeating: 0, count: 32)
    func read(region: UInt32, offset: UInt64, width: AccessWidth) -> UInt32 { UInt32(registers[Int(offset)]) }
    func write(region: UInt32, offset: UInt64, width: AccessWidth, value: UInt32) {
        registers[Int(offset)] = UInt8(truncatingIfNeeded: value)
    }
    func reset() { registers = [UInt8](repeating: 0, count: 32) }
}

/// Runs the real poll loop on its own thread until stopped.
final class ServerThread: @unchecked Sendable {
    let path: String
    private let stop = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)

    init() throws {
        path = NSTemporaryDirectory() + "vpio-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let listener = try UnixSocket.listen(at: FilePath(path))
        let box = UncheckedBox(listener)
        Thread.detachNewThread { [self] in
            let device = ScratchDevice()
            let intx = INTxRouter()
            let line = InterruptLine { intx.lineChanged($0) }
            let endpoint = PCIEndpoint(identity: .rtl8029, device: device, interruptLine: line, intx: intx)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let server = VFIOUserServer(endpoint: endpoint, logger: logger)
            try? server.run(listener: box.value, sources: [], tickMilliseconds: 20) { self.stop.withLock { self.stopping } }
            done.signal()
        }
    }

    func shutdown() {
        stop.withLock { stopping = true }
        done.wait()
        try? FileManager.default.removeItem(atPath: path)
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

@Suite(.serialized) struct SocketServerTests {
    @Test func servesOverARealSocketAndKeepsDeviceStateAcrossReconnects() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        do {
            let client = try VFIOUserClient(connectingTo: FilePath(server.path))
            try client.negotiate()
            #expect(client.serverVersion?.capabilities.writeMultiple == true)
            try client.write(region: 0, offset: 5, data: [0x5A])
            #expect(try client.read(region: 0, offset: 5, count: 1) == [0x5A])
            #expect(throws: VFIOUserClient.ServerError(command: 9, errno: Errno.EINVAL)) {
                try client.read(region: 3, offset: 0, count: 1)
            }
        }
        // The first client is gone; a second one finds the register as it was left.
        let again = try VFIOUserClient(connectingTo: FilePath(server.path))
        try again.negotiate()
        #expect(try again.read(region: 0, offset: 5, count: 1) == [0x5A])
    }

    @Test func garbageHeaderDropsOnlyThatConnection() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let bad = try UnixSocket.connect(to: FilePath(server.path))
        try bad.send([UInt8](repeating: 0xFF, count: 16))
        #expect(try bad.receiveExactly(1, maxDescriptors: 0) == nil)  // server closed it
        let good = try VFIOUserClient(connectingTo: FilePath(server.path))
        try good.negotiate()
        #expect(try good.read(region: 7, offset: 0, count: 2) == [0xEC, 0x10])
    }

    @Test func tooManyDescriptorsAreRefusedAndTheConnectionGoesOn() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let client = try VFIOUserClient(connectingTo: FilePath(server.path))
        try client.negotiate()
        let fds = try (0..<9).map { _ in try EventFD() }
        let map = DMAMapRequest(flags: [.readable], fileOffset: 0, address: 0, size: 0x1000)
        #expect(throws: VFIOUserClient.ServerError(command: Command.dmaMap.rawValue, errno: Errno.EINVAL)) {
            _ = try client.call(.dmaMap, map.encode(), descriptors: fds.map(\.descriptor))
        }
        #expect(try client.read(region: 7, offset: 2, count: 2) == [0x29, 0x80])
    }

    /// QEMU sends DMA_MAP/UNMAP batches without waiting, then waits for the last reply: messages read
    /// ahead with the first must be answered without waiting for more bytes (issue 11: 5 s per batch).
    @Test func everyMessageOfABatchSentAtOnceIsAnsweredAtOnce() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let socket = try UnixSocket.connect(to: FilePath(server.path))
        let version = VersionMessage(major: 0, minor: 1, capabilities: Capabilities(maxMessageFDs: 16, maxDataTransferSize: 1 << 20))
        let read = RegionReadRequest(access: RegionAccess(offset: 0, region: 7, count: 2)).encode()
        var batch = MessageHeader.message(id: 100, command: Command.version.rawValue, flags: [], payload: version.encode())
        for id in 101...104 { batch += MessageHeader.message(id: UInt16(id), command: Command.regionRead.rawValue, flags: [], payload: read) }
        try socket.send(batch)
        for id in 100...104 {
            // Bounded: a server that leaves read-ahead messages unanswered never replies at all here.
            let ready = try Poll.wait([(socket.descriptor, .readable)], timeoutMilliseconds: 2000)
            guard ready.first?.isEmpty == false else {
                Issue.record("no reply to message \(id) within 2 s")
                return
            }
            let header = try #require(try socket.receiveExactly(MessageHeader.size, maxDescriptors: 0))
            let decoded = try MessageHeader(decoding: header.bytes[...], maxMessageSize: 1 << 20)
            #expect(Int(decoded.messageID) == id)
            _ = try socket.receiveExactly(Int(decoded.size) - MessageHeader.size, maxDescriptors: 0)
        }
    }

    /// A client that sends half a message and stops loses its connection after the bounded wait; the
    /// server's loop goes on and the next client is served (issue 11: accepted sockets blocked for good).
    @Test func aPartialMessageClosesOnlyItsConnectionAfterTheBoundedWait() throws {
        let server = try ServerThread()
        defer { server.shutdown() }
        let stalled = try UnixSocket.connect(to: FilePath(server.path))
        try stalled.send(Array(MessageHeader.message(id: 1, command: Command.version.rawValue, flags: [], payload: [0, 1, 0, 0]).prefix(10)))
        let ready = try Poll.wait([(stalled.descriptor, .readable)], timeoutMilliseconds: 3000)
        #expect(ready.first?.isEmpty == false, "the server never gave up on the partial message")
        #expect(try stalled.receiveAvailable(maxBytes: 16, maxDescriptors: 0) == nil, "closed, without a reply")
        let next = try VFIOUserClient(connectingTo: FilePath(server.path))
        try next.negotiate()
        #expect(try next.read(region: 7, offset: 0, count: 2) == [0xEC, 0x10])
    }
}
