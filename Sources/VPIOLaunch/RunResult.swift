import Foundation

/// One `VPIO-RESULT <kind> key=value… [status]` line from the guest console.
///
/// Values are single words, except one `key=[…]` per line whose value runs to the last `]` (it may hold
/// spaces). A bare word is the line's status (`ok`, `mismatch`, `failed`).
public struct ResultLine: Sendable, Equatable {
    public static let marker = "VPIO-RESULT "

    public var kind: String
    public var fields: [String: String]
    public var status: String?

    public init(kind: String, fields: [String: String] = [:], status: String? = nil) {
        self.kind = kind
        self.fields = fields
        self.status = status
    }

    /// Parses a console line; nil when it holds no result.
    public static func parse(_ line: String) -> ResultLine? {
        guard let start = line.range(of: marker) else { return nil }
        var rest = Substring(line[start.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines))
        guard let kindEnd = rest.firstIndex(of: " ") ?? (rest.isEmpty ? nil : rest.endIndex) else { return nil }
        var result = ResultLine(kind: String(rest[..<kindEnd]))
        rest = rest[kindEnd...].drop { $0 == " " }
        while !rest.isEmpty {
            if let eq = rest.firstIndex(of: "="), !rest[..<eq].contains(" ") {
                let key = String(rest[..<eq])
                let afterEq = rest.index(after: eq)
                if afterEq < rest.endIndex, rest[afterEq] == "[", let close = rest.lastIndex(of: "]"), close > afterEq {
                    result.fields[key] = String(rest[rest.index(after: afterEq)..<close])
                    rest = rest[rest.index(after: close)...]
                } else {
                    let end = rest[afterEq...].firstIndex(of: " ") ?? rest.endIndex
                    result.fields[key] = String(rest[afterEq..<end])
                    rest = rest[end...]
                }
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                result.status = String(rest[..<end])
                rest = rest[end...]
            }
            rest = rest.drop { $0 == " " }
        }
        return result
    }
}

/// What a run found out, assembled from the guest's result lines and the host side.
public struct RunResult: Sendable, Codable, Equatable {
    public struct NIC: Sendable, Codable, Equatable {
        public var driver: String
        public var mac: String
        public var ok: Bool
    }

    public struct Download: Sendable, Codable, Equatable {
        public var bytes: Int
        public var seconds: Double
        public var sha256: String?
        /// `ok`, `mismatch` or `failed`.
        public var status: String
        public var error: String?
        public var checksumOK: Bool { status == "ok" }
        public var mibPerSecond: Double { seconds > 0 ? Double(bytes) / 1_048_576 / seconds : 0 }
    }

    public struct SSH: Sendable, Codable, Equatable {
        public var seconds: Double
        public var output: String
        public var ok: Bool
    }

    /// The `ssh-session` workload: one dropbear login, `commands` short commands over stdin, logout.
    public struct SSHSession: Sendable, Codable, Equatable {
        public var commands: Int
        /// Command markers that came back (all `commands` when the session worked).
        public var markers: Int
        /// The guest's eth0 rx+tx bytes during the session.
        public var bytes: Int
        public var seconds: Double
        public var ok: Bool
    }

    /// The workloads that attack the host's enforcement (guest-agent/tools); each prints one result
    /// line of its own kind, kept in `checks`.
    public static var enforcementWorkloads: [String] {
        rogueModes.map { "rogue-\($0)" } + tamperModes.map { "tamper-\($0)" } + ["kill-agent"]
            + rogue8139Modes.map { "rogue8139-\($0)" }
    }
    /// Workloads that print one result line of their own kind, kept in `checks`: the enforcement ones, and
    /// `agent-cost` (`vpio-agent --measure-cost` in the guest: its kernel has the kprobes the host may lack).
    public static var checkedWorkloads: [String] { enforcementWorkloads + ["agent-cost"] }
    /// What the full Debian guest checks on its own after the workloads (vpio-guest-run): the agent
    /// package's upgrade and removal.
    public static let guestChecks = ["package-cycle"]
    /// `vpio-rogue MODE` (raw port I/O as root in the guest), run by the `rogue-MODE` workloads.
    public static let rogueModes = ["stealth", "steer", "both", "wide", "probe-memory", "receive", "snoop"]
    /// `vpio-rogue8139 MODE` (the RTL8139's bus-master DMA aimed outside the guest's memory), run by `rogue8139-MODE`.
    public static let rogue8139Modes = ["tx-outside", "rx-outside", "ring"]
    /// `vpio-tamper MODE` (a misbehaving agent ring), run by the `tamper-MODE` workloads.
    public static let tamperModes = ["outside", "garbage", "flood", "lie", "overflow", "forge", "reregister"]

    /// One enforcement workload's line: its fields as printed, and whether it said `ok`.
    public struct Check: Sendable, Codable, Equatable {
        public var fields: [String: String]
        public var ok: Bool
    }

    /// The NIC configuration ("vpio-host" or "qemu-ne2k").
    public var configuration: String
    public var workloads: [String]
    public var bootUptime: Double?
    public var nic: NIC?
    public var download: Download?
    public var ssh: SSH?
    public var sshSession: SSHSession?
    /// The guest agent's closing summary line, when an agent ran.
    public var agentSummary: AgentSummary?
    /// Results of the enforcement workloads, by workload name.
    public var checks: [String: Check] = [:]
    /// The guest's eth0 counters (rx_packets, rx_errors, …).
    public var guestStatistics: [String: Int] = [:]
    /// The guest's final `rc` (nil: the guest never reported `done`).
    public var guestRC: Int?
    public var timedOut = false
    public var interrupted = false
    public var qemuExitStatus: Int32?
    public var wallSeconds: Double = 0
    /// vpio-host's `--stats-json` file, passed through as it was written.
    public var hostStatisticsJSON: String?
    /// Host-side problems (a server or vpio-host that failed, …).
    public var hostErrors: [String] = []
    /// The injected fault's report, when the run injected one.
    public var fault: FaultReport?
    /// The results of guests 2… when several shared one vpio-host (this one is guest 1's).
    public var otherGuests: [RunResult] = []

    public init(configuration: String, workloads: [String]) {
        self.configuration = configuration
        self.workloads = workloads
    }

    /// Folds one result line in.
    public mutating func apply(_ line: ResultLine) {
        let f = line.fields
        switch line.kind {
        case "boot":
            bootUptime = f["uptime"].flatMap(Double.init)
        case "nic":
            nic = NIC(driver: f["driver"] ?? "?", mac: f["mac"] ?? "?", ok: line.status == "ok")
        case "download":
            download = Download(
                bytes: f["bytes"].flatMap { Int($0) } ?? 0, seconds: f["secs"].flatMap(Double.init) ?? 0,
                sha256: f["sha256"], status: line.status ?? "failed", error: f["error"])
        case "ssh":
            ssh = SSH(seconds: f["secs"].flatMap(Double.init) ?? 0, output: f["output"] ?? "", ok: line.status == "ok")
        case "ssh-session":
            sshSession = SSHSession(
                commands: f["commands"].flatMap { Int($0) } ?? 0, markers: f["markers"].flatMap { Int($0) } ?? 0,
                bytes: f["bytes"].flatMap { Int($0) } ?? 0, seconds: f["secs"].flatMap(Double.init) ?? 0,
                ok: line.status == "ok")
        case "stats":
            for (key, value) in f { if let number = Int(value) { guestStatistics[key] = number } }
        case "done":
            guestRC = f["rc"].flatMap { Int($0) }
        case let kind where Self.checkedWorkloads.contains(kind) || Self.guestChecks.contains(kind):
            checks[kind] = Check(fields: f, ok: line.status == "ok")
        default:
            break
        }
    }

    /// Why the run counts as failed; empty when every requested workload succeeded.
    public var failures: [String] {
        var reasons: [String] = []
        if interrupted { reasons.append("interrupted") }
        if timedOut { reasons.append("timed out") }
        if nic?.ok != true { reasons.append(nic == nil ? "the guest reported no NIC" : "NIC setup failed in the guest") }
        for workload in workloads {
            switch workload {
            case "download":
                if let download {
                    if !download.checksumOK { reasons.append("download \(download.status)\(download.error.map { ": \($0)" } ?? "")") }
                } else {
                    reasons.append("no download result")
                }
            case "ssh":
                if let ssh {
                    if !ssh.ok { reasons.append("ssh failed (output: [\(ssh.output)])") }
                } else {
                    reasons.append("no ssh result")
                }
            case "ssh-session":
                if let sshSession {
                    if !sshSession.ok { reasons.append("ssh-session failed (\(sshSession.markers) of \(sshSession.commands) command markers)") }
                } else {
                    reasons.append("no ssh-session result")
                }
            case "none":
                break
            case let name where Self.checkedWorkloads.contains(name):
                if let check = checks[name] {
                    if !check.ok { reasons.append("\(name) failed\(check.fields["error"].map { ": \($0)" } ?? "")") }
                } else {
                    reasons.append("no \(name) result")
                }
            default:
                reasons.append("unknown workload \(workload)")
            }
        }
        for name in Self.guestChecks { if let check = checks[name], !check.ok { reasons.append("\(name) failed: \(check.fields)") } }
        if let guestRC, guestRC != 0, reasons.isEmpty { reasons.append("guest rc=\(guestRC)") }
        if guestRC == nil, !timedOut, !interrupted { reasons.append("the guest never reported done") }
        reasons += hostErrors
        for (index, other) in otherGuests.enumerated() {
            reasons += other.failures.map { "guest \(index + 2): \($0)" }
        }
        return reasons
    }

    public var succeeded: Bool { failures.isEmpty }

    /// A few human-readable summary lines.
    public var summary: [String] {
        var lines: [String] = []
        if let nic { lines.append("nic: \(nic.driver) \(nic.mac) \(nic.ok ? "ok" : "FAILED")") }
        if let download {
            let rate = String(format: "%.2f s = %.3f MiB/s", download.seconds, download.mibPerSecond)
            // A guest without a checksum tool (iPXE) is checked on the host (IPXEDownloadCheck).
            let check = download.sha256 == nil && download.status != "failed" ? "host check" : "checksum"
            lines.append("download: \(download.bytes) bytes in \(rate), \(check) \(download.checksumOK ? "ok" : download.status.uppercased())")
        }
        if let ssh {
            lines.append("ssh: \(ssh.ok ? "ok" : "FAILED") in \(String(format: "%.2f", ssh.seconds)) s: [\(ssh.output)]")
        }
        if let sshSession {
            lines.append("ssh-session: \(sshSession.ok ? "ok" : "FAILED"), \(sshSession.markers)/\(sshSession.commands) commands, "
                + "\(sshSession.bytes) bytes on eth0 in \(String(format: "%.2f", sshSession.seconds)) s")
        }
        for (name, check) in checks.sorted(by: { $0.key < $1.key }) {
            lines.append("\(name): \(check.ok ? "ok" : "FAILED") "
                + check.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        if !guestStatistics.isEmpty {
            lines.append("guest eth0: " + guestStatistics.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        lines.append("guest rc=\(guestRC.map(String.init) ?? "none"), wall \(String(format: "%.1f", wallSeconds)) s")
        for (index, other) in otherGuests.enumerated() {
            lines += other.summary.dropLast(2).map { "guest \(index + 2): \($0)" }
            lines.append("guest \(index + 2): guest rc=\(other.guestRC.map(String.init) ?? "none")")
        }
        lines.append(succeeded ? "result: OK" : "result: FAILED (\(failures.joined(separator: "; ")))")
        return lines
    }
}
