#if DEBUG
import Synchronization

/// Test hooks for the syscall wrappers, compiled only into debug builds.
///
/// The hook is task-local so that tests running in parallel do not steal each other's forced
/// interruptions.
public enum SyscallHooks {
    /// A countdown of EINTR failures to inject before the real call of one named syscall.
    public final class ForcedEINTR: Sendable {
        /// The syscall to interrupt, as named in `SystemCallError.call` (e.g. `"recvmsg"`).
        public let call: String
        private let remaining: Mutex<Int>

        /// Makes the next `count` calls of `call` fail with EINTR without reaching the kernel.
        public init(count: Int, call: String) {
            self.call = call
            self.remaining = Mutex(count)
        }

        /// Interruptions not yet delivered; 0 once the wrapper has retried through all of them.
        public var pending: Int { remaining.withLock { $0 } }

        /// Consumes one interruption if `call` is the hooked syscall and any remain.
        func consume(for call: String) -> Bool {
            guard call == self.call else { return false }
            return remaining.withLock { count in
                guard count > 0 else { return false }
                count -= 1
                return true
            }
        }
    }

    /// The interruptions to inject in the current task; nil (the default) injects none.
    @TaskLocal public static var forcedEINTR: ForcedEINTR?

    /// Runs `body` with the next `count` calls of `call` in this task failing with EINTR first,
    /// and returns its result with the number of interruptions that were never consumed.
    public static func withForcedEINTR<R>(
        count: Int, on call: String, _ body: () throws -> R
    ) rethrows -> (result: R, pending: Int) {
        let hook = ForcedEINTR(count: count, call: call)
        let result = try $forcedEINTR.withValue(hook) { try body() }
        return (result, hook.pending)
    }
}
#endif
