import Foundation

/// An error from provisioning or from a command it ran. Every case names the step that failed.
public enum ProvisionError: Error, CustomStringConvertible, Sendable {
    /// A command exited non-zero (or was killed) while `step` ran.
    case commandFailed(step: String, argv: [String], status: Int32, output: String)
    /// A command could not be started at all.
    case launchFailed(step: String, argv: [String], reason: String)
    /// Something the step needed was not there or not usable.
    case failed(step: String, reason: String)

    public var description: String {
        switch self {
        case let .commandFailed(step, argv, status, output):
            let tail = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
            return "step '\(step)' failed: `\(argv.joined(separator: " "))` exited with status \(status)"
                + (tail.isEmpty ? "" : "\n--- last output ---\n\(tail)")
        case let .launchFailed(step, argv, reason):
            return "step '\(step)' failed: could not start `\(argv.joined(separator: " "))`: \(reason)"
        case let .failed(step, reason):
            return "step '\(step)' failed: \(reason)"
        }
    }
}

/// Runs short-lived helper commands (apt-get, dpkg-deb, cpio, …) to completion.
///
/// Output (stdout and stderr together) is captured so that a failure can show it; `passthrough` streams it
/// instead. Commands are looked up in `PATH` (with the sbin directories added, as root's shell would).
public enum Command {
    /// The search path used for bare command names.
    static let searchPath: [String] = {
        var dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for extra in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] where !dirs.contains(extra) {
            dirs.append(extra)
        }
        return dirs
    }()

    /// The absolute path of `name` in the search path, or nil.
    public static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in searchPath {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The result of a finished command.
    public struct Output: Sendable {
        public var status: Int32
        public var text: String
    }

    /// Runs `argv` and returns its status and output without judging the status.
    @discardableResult
    public static func status(
        _ argv: [String], step: String, environment: [String: String] = [:], currentDirectory: String? = nil,
        input: String? = nil
    ) throws -> Output {
        precondition(!argv.isEmpty)
        guard let executable = which(argv[0]) else {
            throw ProvisionError.launchFailed(step: step, argv: argv, reason: "\(argv[0]) not found in PATH")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = searchPath.joined(separator: ":")
        env["LC_ALL"] = "C"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        // Output goes to a temporary file: a pipe could fill up and block a chatty command (apt, debootstrap).
        let capture = FileManager.default.temporaryDirectory
            .appendingPathComponent("vpio-cmd-\(getpid())-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: capture.path, contents: nil) else {
            throw ProvisionError.launchFailed(step: step, argv: argv, reason: "cannot create \(capture.path)")
        }
        defer { try? FileManager.default.removeItem(at: capture) }
        let handle = try FileHandle(forWritingTo: capture)
        process.standardOutput = handle
        process.standardError = handle
        let stdinPipe = Pipe()
        if input != nil {
            process.standardInput = stdinPipe
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        do {
            try SignalMask.withEmptyMask { try process.run() }
        } catch {
            try? handle.close()
            throw ProvisionError.launchFailed(step: step, argv: argv, reason: "\(error)")
        }
        Running.shared.add(process)
        defer { Running.shared.remove(process) }
        if let input {
            stdinPipe.fileHandleForWriting.write(Data(input.utf8))
            try? stdinPipe.fileHandleForWriting.close()
        }
        process.waitUntilExit()
        try? handle.close()
        let data = (try? Data(contentsOf: capture)) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Output(status: status, text: text)
    }

    /// Sends SIGTERM to the process group of every command running now (each runs in its own group), so
    /// an interrupted provisioning ends its children and unwinds through its cleanups (e.g. unmounting).
    public static func interruptRunning() {
        for pid in Running.shared.pids() where pid > 0 {
            if kill(-pid, SIGTERM) != 0 { kill(pid, SIGTERM) }
        }
    }

    /// The commands started by `status` that have not finished.
    final class Running: @unchecked Sendable {
        static let shared = Running()
        private let lock = NSLock()
        private var processes: [ObjectIdentifier: Process] = [:]
        func add(_ process: Process) { lock.withLock { processes[ObjectIdentifier(process)] = process } }
        func remove(_ process: Process) { lock.withLock { processes[ObjectIdentifier(process)] = nil } }
        func pids() -> [pid_t] { lock.withLock { processes.values.map(\.processIdentifier) } }
    }

    /// Runs `argv` and throws `ProvisionError.commandFailed` unless it exits 0. Returns its output.
    @discardableResult
    public static func run(
        _ argv: [String], step: String, environment: [String: String] = [:], currentDirectory: String? = nil,
        input: String? = nil
    ) throws -> String {
        let result = try status(argv, step: step, environment: environment, currentDirectory: currentDirectory, input: input)
        guard result.status == 0 else {
            throw ProvisionError.commandFailed(step: step, argv: argv, status: result.status, output: result.text)
        }
        return result.text
    }
}
