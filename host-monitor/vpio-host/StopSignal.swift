#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM/SIGINT set a flag that the server loop checks between poll rounds; the handler does
/// nothing else, so it is async-signal-safe.
enum StopSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static func install() {
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
        signal(SIGINT) { _ in StopSignal.flag = 1 }
        signal(SIGPIPE, SIG_IGN)
    }

    static func requested() -> Bool { flag != 0 }
}
