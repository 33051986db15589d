import DeviceBus
import Foundation
import Supervision
import VPIOSystem

/// A device-only QEMU holding one `ne2k_pci`: no firmware, no CPU running (`-accel qtest`), the NIC
/// reached over qtest and its network over `-netdev stream`, both UNIX sockets in `directory` that
/// QEMU connects to. QEMU's stderr goes to `qemu-device.log` there. `stop()` (or deinit) kills it
/// (nothing in it is worth a graceful exit, and under qtest SIGTERM is slow); if this process dies
/// first, `exit-with-parent` ends QEMU too — a closed qtest socket alone does not.
public final class DeviceOnlyQEMU {
    public let device: QTestNE2000
    public let log: URL
    private let process: ChildProcess

    static let slot = 3
    static let step = "start QEMU's ne2k_pci"

    /// - Parameters: `command`, QEMU's argv prefix (the binary and its -L options); `environment` added
    ///   to this process's (QEMU_MODULE_DIR for a QEMU outside /usr, which loads qtest as a module).
    public init(command: [String], environment: [String: String] = [:], directory: URL, mac: String,
                interrupt: InterruptLine, sink: @escaping FrameSink, timeout: TimeInterval = 10) throws {
        let qtestPath = directory.appendingPathComponent("qtest.sock").path
        let netPath = directory.appendingPathComponent("netdev.sock").path
        let qtestListener = try UnixSocket.listen(at: FilePath(qtestPath))
        let netListener = try UnixSocket.listen(at: FilePath(netPath))
        defer {
            qtestListener.close()
            netListener.close()
        }
        log = directory.appendingPathComponent("qemu-device.log")
        try? FileManager.default.removeItem(at: log)
        process = try ChildProcess(name: "qemu-device", argv: command + [
            "-machine", "pc", "-accel", "qtest", "-qtest", "unix:\(qtestPath)", "-qtest-log", "/dev/null",
            "-run-with", "exit-with-parent=on", "-display", "none", "-nodefaults", "-device", "ne2k_pci,addr=\(String(Self.slot, radix: 16)).0,netdev=n0,mac=\(mac)",
            "-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path=\(netPath)",
        ], stderr: .file(log), environment: environment)
        try process.start(step: Self.step)
        do {
            let qtest = try Self.accept(qtestListener, what: "qtest", process: process, log: log, timeout: timeout)
            let net = try Self.accept(netListener, what: "netdev", process: process, log: log, timeout: timeout)
            device = try QTestNE2000(link: QTestSocketLink(socket: qtest), frames: StreamFrameLink(socket: net),
                                     interrupt: interrupt, sink: sink, slot: Self.slot)
        } catch {
            process.terminate(grace: 0)
            throw error
        }
    }

    deinit { stop() }

    /// Ends QEMU (SIGKILL) and reaps it.
    public func stop() { process.terminate(grace: 0) }

    private static func accept(_ listener: UnixSocket, what: String, process: ChildProcess, log: URL, timeout: TimeInterval) throws -> UnixSocket {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            guard process.isRunning else {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                process.wait(timeout: 1)
                throw StepError(step: step, reason: "QEMU exited (status \(process.exitStatus ?? -1)) before connecting its \(what) socket: "
                                  + text.split(separator: "\n").suffix(3).joined(separator: " | "))
            }
            if try Poll.wait([(listener.descriptor, .readable)], timeoutMilliseconds: 100).first?.isEmpty == false {
                return try listener.accept()
            }
        }
        throw StepError(step: step, reason: "QEMU did not connect its \(what) socket within \(Int(timeout)) s")
    }
}
