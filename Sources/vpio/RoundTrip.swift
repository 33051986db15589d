import Foundation
import Supervision
import VFIOUserClient
import VFIOUserWire
import VPIOSystem

/// Round-trip latency of one device access over a UNIX socket, measured in one run: a bare echo of
/// the same message sizes (the floor the socket hop sets) and a 4-byte data-port REGION_READ served
/// by a real vpio-host (what QEMU waits for on every guest access), each once from one client thread
/// and once through QEMU's three-thread relay (`ThreeThreadClient`).
enum RoundTrip {
    /// A REGION_READ of 4 bytes: a 16-byte header + 16-byte access; the reply adds 4 data bytes.
    static let requestSize = 32
    static let replySize = 36

    struct Summary {
        let samples: [UInt64]
        var median: Double { percentile(0.5) }
        func percentile(_ p: Double) -> Double {
            let sorted = samples.sorted()
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
        }
    }

    /// Echo peer on the other end of a socket pair, on its own thread, as a separate process would be.
    static func bare(iterations: Int) throws -> Summary {
        try withEchoPeer { near in
            let request = [UInt8](repeating: 0x5A, count: requestSize)
            var samples: [UInt64] = []
            samples.reserveCapacity(iterations)
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                try near.send(request)
                _ = try near.receiveExactly(replySize, maxDescriptors: 0)
                samples.append(DispatchTime.now().uptimeNanoseconds - start)
            }
            return Summary(samples: samples)
        }
    }

    /// The bare reference for QEMU's client shape: the same echo peer, reached through the relay.
    static func relayedBare(iterations: Int) throws -> Summary {
        try withEchoPeer { near in
            try ThreeThreadClient(socket: near, replySize: replySize)
                .time(request: [UInt8](repeating: 0x5A, count: requestSize), iterations: iterations)
        }
    }

    /// Runs `body` on one end of a socket pair whose other end a thread echoes: a `replySize` reply
    /// for each `requestSize` request, until `body` closes its end.
    private static func withEchoPeer(_ body: (UnixSocket) throws -> Summary) throws -> Summary {
        let (near, far) = try UnixSocket.pair()
        let peer = Unchecked(far)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let reply = [UInt8](repeating: 0xA5, count: replySize)
            while let (_, _) = try? peer.value.receiveExactly(requestSize, maxDescriptors: 0) {
                if (try? peer.value.send(reply)) == nil { break }
            }
            done.signal()
        }
        defer {
            near.close()
            done.wait()
        }
        return try body(near)
    }

    /// Starts `hostBinary` on a private socket, negotiates like QEMU and times data-port reads, one
    /// client thread calling.
    static func vfioUser(hostBinary: URL, iterations: Int) throws -> Summary {
        try withHost(hostBinary) { client, _ in
            var samples: [UInt64] = []
            samples.reserveCapacity(iterations)
            for _ in 0..<iterations {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try client.read(region: 0, offset: dataPort, count: 4)
                samples.append(DispatchTime.now().uptimeNanoseconds - start)
            }
            return Summary(samples: samples)
        }
    }

    /// The same data-port reads through QEMU's three-thread relay. The request is encoded once (the
    /// server only echoes its id); one read through the ordinary client after the timed ones shows the
    /// server still answered in step.
    static func relayedVFIOUser(hostBinary: URL, iterations: Int) throws -> Summary {
        try withHost(hostBinary) { client, socket in
            let access = RegionAccess(offset: dataPort, region: 0, count: 4)
            let request = MessageHeader.message(id: 0xBE00, command: Command.regionRead.rawValue, flags: [],
                                                payload: RegionReadRequest(access: access).encode())
            precondition(request.count == requestSize)
            let summary = try ThreeThreadClient(socket: socket, replySize: replySize).time(request: request, iterations: iterations)
            _ = try client.read(region: 0, offset: dataPort, count: 4)
            return summary
        }
    }

    /// The NE2000's data port (BAR0 + 0x10): a read the device serves without side effects on the
    /// benchmark's idle NIC.
    private static let dataPort: UInt64 = 0x10

    /// Starts `hostBinary` on a private socket, connects and negotiates, and runs `body` with the
    /// client and its socket; stops vpio-host after.
    private static func withHost(_ hostBinary: URL, _ body: (VFIOUserClient, UnixSocket) throws -> Summary) throws -> Summary {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-rtt-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socketPath = directory.appendingPathComponent("rtt.sock").path
        let host = try ChildProcess(name: "vpio-host", argv: [hostBinary.path, "--socket", socketPath, "--log-level", "warning"])
        try host.start(step: "start vpio-host for the round-trip benchmark")
        defer { host.terminate() }
        let socket = try connect(to: socketPath, within: 10, host: host)
        let client = VFIOUserClient(socket: socket)
        try client.negotiate()
        return try body(client, socket)
    }

    private static func connect(to path: String, within seconds: Double, host: ChildProcess) throws -> UnixSocket {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let socket = try? UnixSocket.connect(to: FilePath(path)) { return socket }
            guard host.isRunning, Date() < deadline else {
                throw BenchError("vpio-host did not start listening on \(path) within \(Int(seconds)) s")
            }
            usleep(20_000)
        }
    }
}

/// QEMU's vfio-user client as threads: the vCPU thread (the caller) sends a request and sleeps; the I/O
/// thread polls the socket, receives the reply and wakes the vCPU thread. A round trip is timed from
/// before the send to the vCPU thread waking.
final class ThreeThreadClient: @unchecked Sendable {
    private let socket: UnixSocket
    private let replySize: Int
    /// The I/O thread signals it once per reply, after receiving the whole reply (or failing).
    private let replied = DispatchSemaphore(value: 0)
    /// Written by the I/O thread before it signals `replied`, read by the vCPU thread after waking.
    private var failure: Error?

    init(socket: UnixSocket, replySize: Int) {
        self.socket = socket
        self.replySize = replySize
    }

    func time(request: [UInt8], iterations: Int) throws -> RoundTrip.Summary {
        let ioThreadDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            receiveReplies(iterations)
            ioThreadDone.signal()
        }
        defer { ioThreadDone.wait() }
        var samples: [UInt64] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            do {
                try socket.send(request)
            } catch {
                // The I/O thread would wait for replies that never come: close so its poll ends.
                socket.close()
                throw error
            }
            replied.wait()
            if let failure { throw failure }
            samples.append(DispatchTime.now().uptimeNanoseconds - start)
        }
        return RoundTrip.Summary(samples: samples)
    }

    /// The I/O thread: `count` replies, each waited for in poll as QEMU's event loop does, then read.
    private func receiveReplies(_ count: Int) {
        for _ in 0..<count {
            do {
                _ = try Poll.wait([(socket.descriptor, .readable)], timeoutMilliseconds: 10_000)
                guard try socket.receiveExactly(replySize, maxDescriptors: 0) != nil else {
                    throw BenchError("the server closed the connection during the relayed round trips")
                }
            } catch {
                failure = error
                replied.signal()
                return
            }
            replied.signal()
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Hands a non-Sendable value to one other thread that alone uses it from then on.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
