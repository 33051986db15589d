import Foundation
import Logging
import VPIOProvision

/// A long-running child (QEMU, vpio-host, a peer server) started with Foundation's `Process`.
///
/// Foundation starts each child in its own process group (pgid = pid), so a terminal's Ctrl-C reaches only
/// `vpio`, and `terminate` signals the whole group (a server's forked children too). Every started child is
/// registered with `Supervisor.shared` until it is reaped, so an emergency exit can kill what is left.
public final class ChildProcess: @unchecked Sendable {
    /// Where a child's stdout or stderr goes.
    public enum Output: Sendable {
        case null
        /// Appended to a file (created if needed).
        case file(URL)
        /// A pipe the caller reads through `standardOutput` / `standardError`.
        case pipe
    }

    public let name: String
    public let argv: [String]
    let process = Process()
    private let lock = NSLock()
    private var stdoutPipe: Pipe?
    private var stderrPipe: Pipe?
    private var openHandles: [FileHandle] = []

    public init(name: String, argv: [String], stdout: Output = .null, stderr: Output = .null,
                environment: [String: String] = [:]) throws {
        precondition(!argv.isEmpty)
        self.name = name
        self.argv = argv
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try Self.target(stdout, pipe: &stdoutPipe, handles: &openHandles)
        process.standardError = try Self.target(stderr, pipe: &stderrPipe, handles: &openHandles)
    }

    private static func target(_ output: Output, pipe: inout Pipe?, handles: inout [FileHandle]) throws -> Any {
        switch output {
        case .null:
            return FileHandle.nullDevice
        case let .file(url):
            if !FileManager.default.fileExists(atPath: url.path) {
                guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                    throw LaunchError.failed(step: "open log", reason: "cannot create \(url.path)")
                }
            }
            let handle = try FileHandle(forWritingTo: url)
            handle.seekToEndOfFile()
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

    public var pid: pid_t { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Starts the child. Throws `LaunchError.failed` naming `step` when it cannot start.
    public func start(step: String) throws {
        do {
            try SignalMask.withEmptyMask { try process.run() }
        } catch {
            throw LaunchError.failed(step: step, reason: "cannot start `\(argv.joined(separator: " "))`: \(error)")
        }
        // The child holds its own copies; close ours so a reader sees EOF when the child exits.
        for handle in openHandles { try? handle.close() }
        openHandles.removeAll()
        try? stdoutPipe?.fileHandleForWriting.close()
        try? stderrPipe?.fileHandleForWriting.close()
        Supervisor.shared.register(self)
    }

    /// Waits until the child exits or `timeout` passes (nil: forever). Returns whether it exited.
    @discardableResult
    public func wait(timeout: TimeInterval? = nil) -> Bool {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        while process.isRunning {
            if let deadline, Date() >= deadline { return false }
            usleep(20_000)
        }
        process.waitUntilExit()
        Supervisor.shared.unregister(self)
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

    /// SIGTERM to the group, then SIGKILL after `grace` seconds; waits for the exit. Returns the exit status.
    @discardableResult
    public func terminate(grace: TimeInterval = 5) -> Int32? {
        if process.isRunning {
            signal(SIGTERM)
            if !wait(timeout: grace) {
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

/// Keeps track of every running child and of the cleanups to run if `vpio` must leave abruptly
/// (a second SIGINT, or a fatal error path).
public final class Supervisor: @unchecked Sendable {
    public static let shared = Supervisor()
    private let lock = NSLock()
    private var children: [ObjectIdentifier: ChildProcess] = [:]

    func register(_ child: ChildProcess) {
        lock.lock(); defer { lock.unlock() }
        children[ObjectIdentifier(child)] = child
    }

    func unregister(_ child: ChildProcess) {
        lock.lock(); defer { lock.unlock() }
        children[ObjectIdentifier(child)] = nil
    }

    /// SIGKILLs the process group of every registered child.
    public func killAll() {
        lock.lock()
        let all = Array(children.values)
        lock.unlock()
        for child in all { child.signal(SIGKILL) }
    }
}

/// Turns SIGINT and SIGTERM into a flag plus a callback (run on a dispatch queue, not in signal context).
/// The first signal asks the run to stop (it then cleans up on its normal path); a second one kills every
/// child and runs `emergency` before exiting with 130.
public final class SignalTrap: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []
    private var count = 0
    private var onSignal: [@Sendable () -> Void] = []
    private let emergency: @Sendable () -> Void

    public init(emergency: @escaping @Sendable () -> Void) {
        self.emergency = emergency
        for sig in [SIGINT, SIGTERM] {
            Foundation.signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.fire(sig) }
            source.resume()
            sources.append(source)
        }
    }

    /// Whether a signal arrived.
    public var interrupted: Bool {
        lock.lock(); defer { lock.unlock() }
        return count > 0
    }

    /// Adds a callback for the first signal (e.g. terminate QEMU so the run's wait ends).
    public func onInterrupt(_ callback: @escaping @Sendable () -> Void) {
        lock.lock(); defer { lock.unlock() }
        onSignal.append(callback)
    }

    private func fire(_ sig: Int32) {
        lock.lock()
        count += 1
        let first = count == 1
        let callbacks = onSignal
        lock.unlock()
        if first {
            FileHandle.standardError.write(Data("vpio: signal \(sig), stopping (again to force)\n".utf8))
            for callback in callbacks { callback() }
        } else {
            Supervisor.shared.killAll()
            emergency()
            exit(130)
        }
    }

    /// Restores the default dispositions.
    public func cancel() {
        for source in sources { source.cancel() }
        Foundation.signal(SIGINT, SIG_DFL)
        Foundation.signal(SIGTERM, SIG_DFL)
    }
}

/// An error from a run, naming the step that failed.
public enum LaunchError: Error, CustomStringConvertible, Sendable {
    case failed(step: String, reason: String)
    case interrupted(step: String)
    case timedOut(step: String, seconds: Double)

    public var description: String {
        switch self {
        case let .failed(step, reason): return "step '\(step)' failed: \(reason)"
        case let .interrupted(step): return "interrupted during '\(step)'"
        case let .timedOut(step, seconds): return "step '\(step)' timed out after \(Int(seconds)) s"
        }
    }
}
