import Foundation
import Logging
import Supervision
import Testing

@Suite struct ChildProcessTests {
    @Test func runCapturesStdoutAndStderrTogether() throws {
        #expect(try ChildProcess.run(["/bin/sh", "-c", "echo out; echo err >&2"], step: "echo") == "out\nerr\n")
    }

    @Test func aFailingCommandIsAStepErrorWithItsOutput() {
        #expect {
            try ChildProcess.run(["/bin/sh", "-c", "echo boom; exit 3"], step: "explode")
        } throws: { error in
            guard let error = error as? StepError, case let .commandFailed(argv, status, output) = error.cause else { return false }
            return error.step == "explode" && argv.first == "/bin/sh" && status == 3 && output == "boom\n"
                && error.description.hasPrefix("step 'explode' failed: `/bin/sh -c echo boom; exit 3` exited with status 3")
                && error.description.hasSuffix("--- last output ---\nboom")
        }
    }

    @Test func aMissingExecutableCannotStart() {
        #expect {
            try ChildProcess.run(["/nonexistent/vpio-test"], step: "start nothing")
        } throws: { error in
            (error as? StepError)?.step == "start nothing" && "\(error)".contains("cannot start `/nonexistent/vpio-test`")
        }
    }

    @Test func inputReachesTheCommand() throws {
        #expect(try ChildProcess.run(["/bin/cat"], step: "cat", input: "abc") == "abc")
    }

    @Test func environmentIsAdded() throws {
        #expect(try ChildProcess.run(["/bin/sh", "-c", "echo $VPIO_TEST_VALUE"], step: "env", environment: ["VPIO_TEST_VALUE": "42"]) == "42\n")
    }

    @Test func aSignalledCommandReports128PlusTheSignal() throws {
        #expect(try ChildProcess.complete(["/bin/sh", "-c", "kill -9 $$"], step: "suicide").status == 137)
    }

    @Test func interruptAllEndsRunningChildren() throws {
        let supervisor = Supervisor()
        let child = try ChildProcess(name: "sleep", argv: ["/bin/sleep", "30"], supervisor: supervisor)
        try child.start(step: "sleep")
        supervisor.interruptAll()
        #expect(child.wait(timeout: 5))
        #expect(child.exitStatus == 128 + SIGTERM)
    }

    /// A server's forked children are in its group: they go with it.
    @Test func terminateTakesTheWholeGroup() throws {
        let child = try ChildProcess(name: "sh", argv: ["/bin/sh", "-c", "sleep 30 & echo $!; wait"], stdout: .pipe)
        try child.start(step: "fork")
        let line = try #require(child.standardOutput?.readLine())
        let grandchild = try #require(pid_t(line))
        #expect(child.terminate(grace: 0) == 128 + SIGKILL)
        let deadline = Date().addingTimeInterval(5)
        while Self.isAlive(grandchild), Date() < deadline { usleep(20_000) }
        #expect(!Self.isAlive(grandchild), "the forked sleep \(grandchild) outlived its group leader")
    }

    /// Running, not a zombie waiting for init to reap it.
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }
}

@Suite struct StepErrorTests {
    @Test func descriptions() {
        #expect("\(StepError(step: "boot", reason: "no kernel"))" == "step 'boot' failed: no kernel")
        #expect("\(StepError.interrupted(step: "guest run"))" == "interrupted during 'guest run'")
        #expect("\(StepError(step: "wait", cause: .timedOut(seconds: 30)))" == "step 'wait' timed out after 30 s")
        #expect(StepError.interrupted(step: "x").isInterruption && !StepError(step: "x", reason: "y").isInterruption)
    }
}

@Suite struct CleanupStackTests {
    struct Failure: Error {}

    @Test func runsInReverseOnceEachAndPastAFailure() {
        let stack = CleanupStack(logger: Logger(label: "test"))
        var order: [String] = []
        stack.push("first") { order.append("first") }
        stack.push("failing") { order.append("failing"); throw Failure() }
        stack.push("last") { order.append("last") }
        stack.runAll()
        stack.runAll()
        #expect(order == ["last", "failing", "first"])
    }
}

extension FileHandle {
    /// One line from a pipe, without its newline (nil at EOF).
    func readLine() -> String? {
        var bytes: [UInt8] = []
        while true {
            let byte = readData(ofLength: 1)
            guard let first = byte.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if first == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(first)
        }
    }
}
