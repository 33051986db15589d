import Foundation
import Supervision
import VFIOUserClient
import VPIOSystem

/// Round-trip latency of one device access over a UNIX socket, measured two ways in one run:
/// a bare echo of the same message sizes (the floor the socket hop sets), and a 4-byte data-port
/// REGION_READ served by a real vpio-host (what QEMU waits for on every guest access).
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
        let request = [UInt8](repeating: 0x5A, count: requestSize)
        var samples: [UInt64] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            try near.send(request)
            _ = try near.receiveExactly(replySize, maxDescriptors: 0)
            samples.append(DispatchTime.now().uptimeNanoseconds - start)
        }
        near.close()
        done.wait()
        return Summary(samples: samples)
    }

    /// Starts `hostBinary` on a private socket, negotiates like QEMU and times data-port reads.
    static func vfioUser(hostBinary: URL, iterations: Int) throws -> Summary {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-rtt-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socketPath = directory.appendingPathComponent("rtt.sock").path
        let host = try ChildProcess(name: "vpio-host", argv: [hostBinary.path, "--socket", socketPath, "--log-level", "warning"])
        try host.start(step: "start vpio-host for the round-trip benchmark")
        defer { host.terminate() }
        let client = try connect(to: socketPath, within: 10, host: host)
        try client.negotiate()
        var samples: [UInt64] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try client.read(region: 0, offset: 0x10, count: 4)
            samples.append(DispatchTime.now().uptimeNanoseconds - start)
        }
        return Summary(samples: samples)
    }

    private static func connect(to path: String, within seconds: Double, host: ChildProcess) throws -> VFIOUserClient {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let client = try? VFIOUserClient(connectingTo: FilePath(path)) { return client }
            guard host.isRunning, Date() < deadline else {
                throw BenchError("vpio-host did not start listening on \(path) within \(Int(seconds)) s")
            }
            usleep(20_000)
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
