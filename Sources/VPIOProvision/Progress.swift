import Foundation

/// Prints provisioning progress for a person: `[provision] step… done (Ns)`.
///
/// This is user output (stdout), not diagnostics; diagnostics go through swift-log.
public struct ProgressReporter: Sendable {
    public var prefix: String
    public var enabled: Bool

    public init(prefix: String = "[provision]", enabled: Bool = true) {
        self.prefix = prefix
        self.enabled = enabled
    }

    /// One whole line.
    public func line(_ text: String) {
        guard enabled else { return }
        write("\(prefix) \(text)\n")
    }

    /// Runs `body` between `[provision] title… ` and `done (Ns)` / `FAILED (Ns)`.
    public func step<T>(_ title: String, _ body: () throws -> T) throws -> T {
        let start = Date()
        line("\(title)…")
        do {
            let value = try body()
            line("\(title)… done (\(Self.seconds(since: start)))")
            return value
        } catch {
            line("\(title)… FAILED (\(Self.seconds(since: start)))")
            throw error
        }
    }

    static func seconds(since start: Date) -> String {
        let elapsed = Date().timeIntervalSince(start)
        return elapsed < 10 ? String(format: "%.1fs", elapsed) : String(format: "%.0fs", elapsed)
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
