import Foundation
import Supervision

/// Runs short-lived helper commands (apt-get, dpkg-deb, cpio, …) to completion as `ChildProcess`es.
///
/// Output (stdout and stderr together) is captured so that a failure can show it. Commands are looked up
/// in `PATH` (with the sbin directories added, as root's shell would) and run with `LC_ALL=C`.
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

    /// Runs `argv` and returns its status and output without judging the status.
    @discardableResult
    public static func status(
        _ argv: [String], step: String, environment: [String: String] = [:], currentDirectory: String? = nil,
        input: String? = nil
    ) throws -> ChildProcess.Completion {
        try ChildProcess.complete(resolved(argv, step: step), step: step, environment: commandEnvironment(environment),
                                  currentDirectory: currentDirectory, input: input)
    }

    /// Runs `argv` and throws a `StepError` with its output unless it exits 0. Returns its output.
    @discardableResult
    public static func run(
        _ argv: [String], step: String, environment: [String: String] = [:], currentDirectory: String? = nil,
        input: String? = nil
    ) throws -> String {
        let result = try status(argv, step: step, environment: environment, currentDirectory: currentDirectory, input: input)
        guard result.status == 0 else {
            throw StepError(step: step, cause: .commandFailed(argv: argv, status: result.status, output: result.text))
        }
        return result.text
    }

    private static func resolved(_ argv: [String], step: String) throws -> [String] {
        precondition(!argv.isEmpty)
        guard let executable = which(argv[0]) else {
            throw StepError(step: step, reason: "could not start `\(argv.joined(separator: " "))`: \(argv[0]) not found in PATH")
        }
        return [executable] + argv.dropFirst()
    }

    private static func commandEnvironment(_ extra: [String: String]) -> [String: String] {
        ["PATH": searchPath.joined(separator: ":"), "LC_ALL": "C"].merging(extra) { $1 }
    }
}
