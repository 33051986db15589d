import Foundation

/// The calling thread's signal mask.
///
/// Foundation's `Process` starts a child with the spawning thread's mask. A thread of a dispatch or Swift
/// concurrency pool blocks nearly every signal, and a program started from one (e.g. `vpio` under
/// `swift test`) inherits that mask on its main thread: its children would then ignore SIGTERM for good.
/// Children are therefore always spawned with an empty mask.
public enum SignalMask {
    /// Unblocks every signal on the calling thread (call first thing in a tool's main thread).
    public static func clear() {
        var empty = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, nil)
    }

    /// Runs `body` (a spawn) with an empty mask on the calling thread, then restores the previous one.
    public static func withEmptyMask<T>(_ body: () throws -> T) rethrows -> T {
        var empty = sigset_t()
        var previous = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }
}
