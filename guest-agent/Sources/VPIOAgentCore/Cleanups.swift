/// The undo actions of the agent's steps: each step that acquires something adds the action that
/// releases it, and the one owner of the stack runs them all on its way out, newest first, so what
/// was acquired last is released first whichever step ended the run (error, signal or done).
public final class Cleanups {
    private var actions: [() -> Void] = []

    public init() {}

    public func add(_ action: @escaping () -> Void) { actions.append(action) }

    /// Runs every action added so far, newest first; each runs once (they are removed as they run).
    public func runAll() {
        while let action = actions.popLast() { action() }
    }
}
