import Foundation

/// The one child-process type: a long-running child (QEMU, vpio-host, a peer server, a device QEMU)
/// or a command run to completion (`run`), started with Foundation's `Process`.
///
/// Foundation starts each child in its own process group (pgid = pid), so a terminal's Ctrl-C reaches only
/// `vpio`, and `signal` reaches the whole group (a server's forked children too). Every started child is
/// registered with a `Supervisor` (`.shared` unless told) until it is reaped, so an interrupt or an emergency exit reaches
/// what is left. Children are spawned with an empty signal mask (`SignalMask`).
public final class ChildProcess: @unchecked Sendable {
    /// Where a child's stdout or stderr goes.
    public enum Output: Sendable {
        case null
        /// Appended to a file (created if needed); stdout and stderr may share one.
        case file(URL)
        /// A pipe the caller reads through `standardOutput` / `standardError`.
        case pipe
    }

    public let name: String
    public let argv: [String]
    let process = Process()
    private var stdoutPipe: Pipe?
    private var stderrPipe: Pipe?
    private var stdinPipe: Pipe?
    private var openHandles: [FileHandle] = []
    private let supervisor: Supervisor

    /// - Parameters: `argv[0]` an absolute path; `environment` added to this process's; `input` a pipe the
    ///   caller writes through `standardInput` (else stdin reads /dev/null); `supervisor` the registry it
    ///   joins while it runs.
    public init(name: String, argv: [String], stdout: Output = .null, stderr: Output = .null,
                environment: [String: String] = [:], currentDirectory: String? = nil, input: Bool = false,
                supervisor: Supervisor = .shared) throws {
        precondition(!argv.isEmpty)
        self.name = name
        self.argv = argv
        self.supervisor = supervisor
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        if input {
            stdinPipe = Pipe()
            process.standardInput = stdinPipe
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        process.standardOutput = try Self.target(stdout, pipe: &stdoutPipe, handles: &openHandles)
        process.standardError = try Self.target(stderr, pipe: &stderrPipe, handles: &openHandles)
    }

    private static func target(_ output: Output, pipe: inout Pipe?, handles: inout [FileHandle]) throws -> Any {
        switch output {
        case .null:
            return FileHandle.nullDevice
        case let .file(url):
            // O_APPEND: stdout and stderr to one file are two descriptors, each writing at the end.
            let descriptor = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw StepError(step: "open log", reason: "cannot open \(url.path): \(String(cString: strerror(errno)))")
            }
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            handles.append(handle)
            return handle
        case .pipe:
            let newPipe = Pipe()
            pipe = newPipe
            return newPipe
        }
    }

    /// The read end of the stdout pipe (when started with `.pipe`).
    public var standardOutput: FileHandle? { stdoutPipe?.fileHandleForReading }
    /// The read end of the stderr pipe (when started with `.pipe`).
    public var standardError: FileHandle? { stderrPipe?.fileHandleForReading }
    /// The write end of the stdin pipe (when created with `input: true`).
    public var standardInput: FileHandle? { stdinPipe?.fileHandleForWriting }

    public var pid: pid_t { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Starts the child. Throws a `StepError` naming `step` when it cannot start.
    public func start(step: String) throws {
        do {
            try SignalMask.withEmptyMask { try process.run() }
        } catch {
            throw StepError(step: step, reason: "cannot start `\(argv.joined(separator: " "))`: \(error)")
        }
        // The child holds its own copies; close ours so a reader sees EOF when the child exits.
        for handle in openHandles { try? handle.close() }
        openHandles.removeAll()
        try? stdoutPipe?.fileHandleForWriting.close()
        try? stderrPipe?.fileHandleForWriting.close()
        try? stdinPipe?.fileHandleForReading.close()
        supervisor.register(self)
    }

    /// Waits until the child exits or `timeout` passes (nil: forever). Returns whether it exited.
    @discardableResult
    public func wait(timeout: TimeInterval? = nil) -> Bool {
        if let timeout {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning {
                if Date() >= deadline { return false }
                usleep(20_000)
            }
        }
        process.waitUntilExit()
        supervisor.unregister(self)
        return true
    }

    /// The exit status (128+signal when killed by a signal); nil while running.
    public var exitStatus: Int32? {
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// Sends `signal` to the child's process group.
    public func signal(_ signal: Int32) {
        guard process.processIdentifier > 0, process.isRunning else { return }
        if kill(-process.processIdentifier, signal) != 0 {
            kill(process.processIdentifier, signal)
        }
    }

    /// SIGTERM to the group, then SIGKILL after `grace` seconds (at once when 0); waits for the exit.
    /// Returns the exit status.
    @discardableResult
    public func terminate(grace: TimeInterval = 5) -> Int32? {
        if process.isRunning {
            if grace > 0 { signal(SIGTERM) }
            if grace == 0 || !wait(timeout: grace) {
                signal(SIGKILL)
                wait(timeout: 5)
            }
        } else {
            wait(timeout: 1)
        }
        // Whatever the group leader left behind (forked servers) goes too.
        if process.processIdentifier > 0 { kill(-process.processIdentifier, SIGKILL) }
        return exitStatus
    }
}

extension ChildProcess {
    /// A finished command's status and output (stdout and stderr together).
    public struct Completion: Sendable {
        public var status: Int32
        public var text: String
    }

    /// Runs `argv` to completion and returns its status and output without judging the status. Output
    /// goes to a temporary file: a pipe could fill up and block a chatty command (apt, debootstrap).
    public static func complete(_ argv: [String], step: String, environment: [String: String] = [:],
                                currentDirectory: String? = nil, input: String? = nil) throws -> Completion {
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-cmd-\(getpid())-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: capture.path, contents: nil) else {
            throw StepError(step: step, reason: "cannot create \(capture.path)")
        }
        defer { try? FileManager.default.removeItem(at: capture) }
        let child = try ChildProcess(name: argv[0], argv: argv, stdout: .file(capture), stderr: .file(capture),
                                     environment: environment, currentDirectory: currentDirectory, input: input != nil)
        try child.start(step: step)
        if let input, let writer = child.standardInput {
            writer.write(Data(input.utf8))
            try? writer.close()
        }
        child.wait()
        let text = String(decoding: (try? Data(contentsOf: capture)) ?? Data(), as: UTF8.self)
        return Completion(status: child.exitStatus ?? -1, text: text)
    }

    /// Runs `argv` to completion; throws a `StepError` (with its output) unless it exits 0. Returns its output.
    @discardableResult
    public static func run(_ argv: [String], step: String, environment: [String: String] = [:],
                           currentDirectory: String? = nil, input: String? = nil) throws -> String {
        let result = try complete(argv, step: step, environment: environment, currentDirectory: currentDirectory, input: input)
        guard result.status == 0 else {
            throw StepError(step: step, cause: .commandFailed(argv: argv, status: result.status, output: result.text))
        }
        return result.text
    }
}
