import Foundation
import Supervision
import Glibc
import Testing
import VPIOSystem

/// A fresh directory under the system temp dir, removed with its contents on deinit.
final class TemporaryDirectory {
    let url: URL
    var path: FilePath { FilePath(url.path) }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("vpio-sys-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func appending(_ name: String) -> FilePath { path.appending(name) }
}

/// Whether the peer of `fd` has gone away: its last copy closed, so `fd` reports a hang-up.
func peerClosed(_ fd: FileDescriptor) throws -> Bool {
    try Poll.wait([(fd, [])], timeoutMilliseconds: 0)[0].contains(.hangup)
}

/// Runs a command (looked up by /usr/bin/env) and returns its exit status and output.
@discardableResult
func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let completion = try ChildProcess.complete(["/usr/bin/env"] + arguments, step: arguments.joined(separator: " "))
    return (completion.status, completion.text)
}

/// Clears O_NONBLOCK on `fd` (and on every descriptor sharing its open file description).
func clearNonBlocking(_ fd: FileDescriptor) throws {
    let flags = fcntl(fd.rawValue, F_GETFL)
    guard flags >= 0, fcntl(fd.rawValue, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
        throw SystemCallError(call: "fcntl", errno: Errno(rawValue: errno))
    }
}
