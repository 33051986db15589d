import Foundation
import Logging

/// The one registry of running children: what an interrupt stops and an emergency exit kills. A tool
/// has one, `shared`; a test makes its own so that it cannot signal another test's children.
public final class Supervisor: @unchecked Sendable {
    public static let shared = Supervisor()

    public init() {}
    private let lock = NSLock()
    private var children: [ObjectIdentifier: ChildProcess] = [:]

    func register(_ child: ChildProcess) {
        lock.withLock { children[ObjectIdentifier(child)] = child }
    }

    func unregister(_ child: ChildProcess) {
        lock.withLock { children[ObjectIdentifier(child)] = nil }
    }

    private var running: [ChildProcess] { lock.withLock { Array(children.values) } }

    /// SIGTERM to every running child's group, so an interrupted step ends its commands and unwinds
    /// through its cleanups (unmounting, deleting a namespace).
    public func interruptAll() {
        for child in running { child.signal(SIGTERM) }
    }

    /// SIGKILLs the process group of every running child.
    public func killAll() {
        for child in running { child.signal(SIGKILL) }
    }
}

/// Turns SIGINT and SIGTERM into a flag plus callbacks (run on a dispatch queue, not in signal context).
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

/// Teardown actions, run once each in reverse order; failures are logged, never thrown. Each step that
/// starts or creates something pushes its own.
public final class CleanupStack: @unchecked Sendable {
    private let lock = NSLock()
    private var actions: [(String, () throws -> Void)] = []
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func push(_ name: String, _ action: @escaping () throws -> Void) {
        lock.withLock { actions.append((name, action)) }
    }

    public func runAll() {
        while let (name, action) = lock.withLock({ actions.popLast() }) {
            do {
                try action()
            } catch {
                logger.error("cleanup '\(name)' failed: \(error)")
                FileHandle.standardError.write(Data("vpio: cleanup '\(name)' failed: \(error)\n".utf8))
            }
        }
    }
}
