import DeviceBus
import Foundation
import Logging
import Testing
import VFIOUserClient
import VFIOUserServer
import VPIOSystem

@Suite struct ServerLoopTests {
    /// A spinning loop serves like a sleeping one, still stops when told, and counts its busy time.
    @Test(arguments: [0, 2000]) func servesAndStopsWhateverItsSpin(spinMicroseconds: Int) throws {
        let path = NSTemporaryDirectory() + "vpio-loop-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let listener = UncheckedBox(try UnixSocket.listen(at: FilePath(path)))
        let stop = NSLock()
        nonisolated(unsafe) var stopping = false
        nonisolated(unsafe) var counters = ServerLoop.Counters()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let intx = INTxRouter()
            let line = InterruptLine { intx.lineChanged($0) }
            let endpoint = PCIEndpoint(identity: .rtl8029, device: ScratchDevice(), interruptLine: line, intx: intx)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let loop = ServerLoop(servers: [(VFIOUserServer(endpoint: endpoint, logger: logger), listener.value)], sources: [],
                                  spinMicroseconds: spinMicroseconds)
            try? loop.run(tickMilliseconds: 20) { stop.withLock { stopping } }
            counters = loop.counters
            done.signal()
        }
        let client = try VFIOUserClient(connectingTo: FilePath(path))
        try client.negotiate()
        for offset in 0..<10 { try client.write(region: 0, offset: UInt64(offset), data: [UInt8(offset + 1)]) }
        for offset in 0..<10 { #expect(try client.read(region: 0, offset: UInt64(offset), count: 1) == [UInt8(offset + 1)]) }
        stop.withLock { stopping = true }
        #expect(done.wait(timeout: .now() + 5) == .success, "the loop stopped")
        // Accept, VERSION, 20 accesses: each round that found something ready counted, with its time.
        #expect(counters.busyRounds >= 22 && counters.rounds >= counters.busyRounds)
        #expect(counters.handlingNanoseconds > 0)
    }
}
