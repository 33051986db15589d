import Foundation

/// An executable installed beside this one (`vpio-host` next to `vpio`).
func siblingExecutable(_ name: String) -> URL {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(name)
}
