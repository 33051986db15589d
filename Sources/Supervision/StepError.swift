import Foundation

/// The one error of every step that sets something up — provisioning, a namespace, a child process, a
/// guest, a device QEMU: which step, and why.
public struct StepError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Cause: Sendable, Equatable {
        /// Something the step needed was not there or not usable.
        case failed(String)
        /// A command exited non-zero (or was killed); `output` is what it printed.
        case commandFailed(argv: [String], status: Int32, output: String)
        /// A signal asked the run to stop while the step ran.
        case interrupted
        case timedOut(seconds: Double)
    }

    public var step: String
    public var cause: Cause

    public init(step: String, cause: Cause) {
        self.step = step
        self.cause = cause
    }

    public init(step: String, reason: String) {
        self.init(step: step, cause: .failed(reason))
    }

    public static func interrupted(step: String) -> StepError { StepError(step: step, cause: .interrupted) }

    public var isInterruption: Bool { cause == .interrupted }

    public var description: String {
        switch cause {
        case let .failed(reason): return "step '\(step)' failed: \(reason)"
        case let .commandFailed(argv, status, output):
            let tail = output.split(separator: "\n", omittingEmptySubsequences: false).suffix(20).joined(separator: "\n")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return "step '\(step)' failed: `\(argv.joined(separator: " "))` exited with status \(status)"
                + (tail.isEmpty ? "" : "\n--- last output ---\n\(tail)")
        case .interrupted: return "interrupted during '\(step)'"
        case let .timedOut(seconds): return "step '\(step)' timed out after \(Int(seconds)) s"
        }
    }
}
