import Foundation

/// A fault a run injects once the guest's first download is under way (issue 11's fault-injection tests;
/// `vpio run --fault`). One fault per run, fired at most once; what happened is in `RunResult.fault`.
public struct FaultInjection: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// SIGKILL QEMU, then boot a new guest (a new QEMU running `restartWorkloads`) on the same
        /// vpio-host process and socket.
        case killQEMU = "kill-qemu"
        /// SIGKILL vpio-host and start it again with the same arguments on the same socket path, under
        /// the running guest.
        case restartHost = "restart-host"
        /// SIGKILL the peer's HTTP server (busybox httpd, with the connection it is serving) and start it
        /// again at once.
        case killHTTP = "kill-http"
    }

    public var kind: Kind
    /// Fires once the peer's end of the link has sent this many bytes towards the guest (a boot sends
    /// a few hundred; the download's data is nearly all of it).
    public var afterPeerBytes: Int
    /// kill-qemu: what the guest booted after the kill runs.
    public var restartWorkloads: [String]

    public init(kind: Kind, afterPeerBytes: Int, restartWorkloads: [String] = ["download"]) {
        self.kind = kind
        self.afterPeerBytes = afterPeerBytes
        self.restartWorkloads = restartWorkloads
    }
}

extension RunResult {
    /// What a run's injected fault did, as the runner saw it.
    public struct FaultReport: Sendable, Codable, Equatable {
        public struct Event: Sendable, Codable, Equatable {
            /// Seconds since the fault fired.
            public var seconds: Double
            public var text: String
        }

        public var kind: String
        /// Seconds from the run's start to the injection; nil when it never fired.
        public var firedAt: Double?
        /// Bytes the peer's link had sent when it fired.
        public var peerBytes: Int?
        /// What the runner did and saw after it fired, in order.
        public var events: [Event] = []
        /// The QEMU that ran when the fault fired: seconds from the injection to its exit, and its status
        /// (128+signal); nil while it outlived the run (then the runner stopped it).
        public var qemuExitAfter: Double?
        public var qemuExitStatus: Int32?
        /// QEMU processes started during the run (2 after kill-qemu).
        public var guestsBooted = 1

        public init(kind: String) { self.kind = kind }
    }
}

/// Decides when the fault is due and keeps its report; the runner performs it.
final class FaultInjector: @unchecked Sendable {
    let fault: FaultInjection
    private let lock = NSLock()
    private var stored: RunResult.FaultReport
    private var firedDate: Date?

    init(_ fault: FaultInjection) {
        self.fault = fault
        stored = RunResult.FaultReport(kind: fault.kind.rawValue)
    }

    var report: RunResult.FaultReport { lock.withLock { stored } }
    var hasFired: Bool { lock.withLock { firedDate != nil } }

    /// True once, when the peer's link has sent enough (`peerBytes` nil: unknown yet).
    func isDue(peerBytes: Int?, runStarted: Date) -> Bool {
        lock.withLock {
            guard firedDate == nil, let peerBytes, peerBytes >= fault.afterPeerBytes else { return false }
            firedDate = Date()
            stored.firedAt = Date().timeIntervalSince(runStarted)
            stored.peerBytes = peerBytes
            return true
        }
    }

    /// Seconds since the fault fired (0 before).
    var sinceFired: Double { lock.withLock { firedDate.map { Date().timeIntervalSince($0) } ?? 0 } }

    func note(_ text: String) {
        let seconds = sinceFired
        lock.withLock { stored.events.append(.init(seconds: seconds, text: text)) }
    }

    func guestBooted() { lock.withLock { stored.guestsBooted += 1 } }

    /// The QEMU running at the injection exited with `status`.
    func qemuExited(status: Int32?) {
        let seconds = sinceFired
        lock.withLock {
            guard stored.qemuExitAfter == nil else { return }
            stored.qemuExitAfter = seconds
            stored.qemuExitStatus = status
        }
    }
}

extension RunResult.FaultReport {
    /// Human-readable lines: when it fired, and each event after.
    public var summary: [String] {
        guard let firedAt else { return ["fault \(kind): never fired"] }
        var lines = ["fault \(kind): fired \(String(format: "%.1f", firedAt)) s into the run, the peer had sent \(peerBytes ?? 0) bytes"]
        lines += events.map { "fault \(kind): +\(String(format: "%.1f", $0.seconds)) s \($0.text)" }
        if let qemuExitAfter {
            lines.append("fault \(kind): the QEMU running at the fault exited \(String(format: "%.1f", qemuExitAfter)) s after it, status \(qemuExitStatus ?? -1)")
        }
        return lines
    }
}
