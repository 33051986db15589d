import Foundation
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

/// Runs a command and returns its exit status and standard output.
@discardableResult
func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Clears O_NONBLOCK on `fd` (and on every descriptor sharing its open file description).
func clearNonBlocking(_ fd: FileDescriptor) throws {
    let flags = fcntl(fd.rawValue, F_GETFL)
    guard flags >= 0, fcntl(fd.rawValue, F_SETFL, flags & ~O_NONBLOCK) == 0 else {
        throw SystemCallError(call: "fcntl", errno: Errno(rawValue: errno))
    }
}
