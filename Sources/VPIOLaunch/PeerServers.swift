import Foundation
import Supervision
import PacketBackend
import VPIOProvision

/// The guest's peer inside the run's network namespace: busybox `httpd` serving the cache's served files,
/// and `dropbear` (key authentication as root). dropbear runs in a private mount namespace where the
/// cache's stand-in home is bind-mounted over /root, so the host's /root/.ssh is never read or written.
public final class PeerServers: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The peer's address (no prefix length), e.g. 10.77.0.1.
        public var address: String
        public var httpPort: Int
        public var sshPort: Int
        public var servedDirectory: URL
        public var hostKey: URL
        /// Bind-mounted over /root for dropbear (holds .ssh/authorized_keys).
        public var home: URL

        public init(address: String, httpPort: Int, sshPort: Int, layout: CacheLayout) {
            self.address = address
            self.httpPort = httpPort
            self.sshPort = sshPort
            servedDirectory = layout.servedDirectory
            hostKey = layout.hostKey
            home = layout.peerHome
        }
    }

    /// The HTTP server now (`restartHTTP` replaces it).
    public var http: ChildProcess { lock.withLock { currentHTTP } }
    public let ssh: ChildProcess
    /// The HTTP server's log: with `-vv`, each request's `url:` and `response:` lines.
    public let httpLog: URL
    private let lock = NSLock()
    private var currentHTTP: ChildProcess
    private let restart: () throws -> ChildProcess

    private init(http: ChildProcess, ssh: ChildProcess, httpLog: URL, restart: @escaping () throws -> ChildProcess) {
        currentHTTP = http
        self.ssh = ssh
        self.httpLog = httpLog
        self.restart = restart
    }

    /// Starts both servers in `namespace` (the address must already exist there) and waits until both
    /// listen. Logs go to `logDirectory`.
    public static func start(in namespace: NetworkNamespace, configuration c: Configuration, logDirectory: URL,
                             timeout: TimeInterval = 10) throws -> PeerServers {
        guard let busybox = ["/bin/busybox", "/usr/bin/busybox"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              let unshare = Command.which("unshare"), let dropbear = Command.which("dropbear")
        else {
            throw StepError(step: "start peer servers", reason: "busybox, unshare or dropbear missing (run `vpio provision`)")
        }
        let startHTTP = {
            let http = try ChildProcess(
                name: "httpd",
                argv: namespace.execPrefix + [busybox, "httpd", "-f", "-vv", "-p", "\(c.address):\(c.httpPort)", "-h", c.servedDirectory.path],
                stdout: .file(logDirectory.appendingPathComponent("httpd.log")),
                stderr: .file(logDirectory.appendingPathComponent("httpd.log")))
            try http.start(step: "start peer HTTP server")
            return http
        }
        let http = try startHTTP()
        let script = #"mount --bind "$0" /root && exec "$1" -F -E -s -r "$2" -p "$3" -P "$4""#
        let ssh = try ChildProcess(
            name: "dropbear",
            argv: namespace.execPrefix + [
                unshare, "-m", "--propagation", "private", "/bin/sh", "-c", script,
                c.home.path, dropbear, c.hostKey.path, "\(c.address):\(c.sshPort)",
                logDirectory.appendingPathComponent("dropbear.pid").path,
            ],
            stdout: .file(logDirectory.appendingPathComponent("dropbear.log")),
            stderr: .file(logDirectory.appendingPathComponent("dropbear.log")))
        do {
            try ssh.start(step: "start peer ssh server")
        } catch {
            http.terminate(grace: 1)
            throw error
        }
        let httpLog = logDirectory.appendingPathComponent("httpd.log")
        let servers = PeerServers(http: http, ssh: ssh, httpLog: httpLog) {
            let http = try startHTTP()
            do {
                try waitListening(http, port: c.httpPort, what: "HTTP server", log: httpLog, timeout: timeout)
            } catch {
                http.terminate(grace: 1)
                throw error
            }
            return http
        }
        do {
            try waitListening(servers.http, port: c.httpPort, what: "HTTP server", log: httpLog, timeout: timeout)
            try waitListening(servers.ssh, port: c.sshPort, what: "ssh server", log: logDirectory.appendingPathComponent("dropbear.log"), timeout: timeout)
        } catch {
            servers.stop()
            throw error
        }
        return servers
    }

    /// Waits until `child` (whose /proc/PID/net shows its namespace's sockets) has a TCP listener on `port`.
    static func waitListening(_ child: ChildProcess, port: Int, what: String, log: URL, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !child.isRunning {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw StepError(
                    step: "start peer \(what)", reason: "exited with status \(child.exitStatus ?? -1): \(text.suffix(800))")
            }
            if isListening(pid: child.pid, port: port) { return }
            usleep(50_000)
        }
        throw StepError(step: "start peer \(what) (waiting for port \(port))", cause: .timedOut(seconds: timeout))
    }

    /// Whether /proc/PID/net/tcp lists a listening socket (state 0A) on `port`.
    static func isListening(pid: pid_t, port: Int) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/net/tcp", encoding: .utf8) else { return false }
        let portHex = String(format: ":%04X", port)
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > 3, fields[1].hasSuffix(portHex), fields[3] == "0A" { return true }
        }
        return false
    }

    /// SIGKILLs the HTTP server's process group (the connections it serves die with it), then starts
    /// a new one and waits until it listens. Returns the old one's exit status.
    @discardableResult
    public func restartHTTP() throws -> Int32? {
        let old = http
        old.signal(SIGKILL)
        old.wait(timeout: 5)
        let replacement = try restart()
        lock.withLock { currentHTTP = replacement }
        return old.exitStatus
    }

    /// Bytes `link` (in the servers' namespace) has transmitted, from /proc/PID/net/dev of a server;
    /// nil when it cannot be read (no such link yet).
    public func bytesSent(on link: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(ssh.pid)/net/dev", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == link else { continue }
            let fields = parts[1].split(separator: " ")
            return fields.count > 8 ? Int(fields[8]) : nil
        }
        return nil
    }

    /// Stops both servers (their whole process groups).
    public func stop() {
        ssh.terminate(grace: 2)
        http.terminate(grace: 2)
    }
}
