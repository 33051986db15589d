// Shared by the package-built fuzz targets (session, config-space, ring-reader): a reader that turns
// libFuzzer's bytes into choices, and the open-descriptor count the leak checks compare.
import Glibc

/// Consumes the fuzzer's input front to back. Past the end every read gives zeros, so a short input
/// is still a complete program (libFuzzer shortens inputs; they must stay meaningful).
struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        // SAFETY: libFuzzer hands `size` readable bytes at `data` for the duration of the call.
        bytes = Array(UnsafeBufferPointer(start: data, count: size))[...]
    }

    var isEmpty: Bool { bytes.isEmpty }

    mutating func u8() -> UInt8 { bytes.popFirst() ?? 0 }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    mutating func bool() -> Bool { u8() & 1 != 0 }

    /// Up to `count` bytes (fewer at the end of the input).
    mutating func take(_ count: Int) -> [UInt8] {
        let out = Array(bytes.prefix(count))
        bytes = bytes.dropFirst(out.count)
        return out
    }

    /// One of `choices`, picked by the next byte.
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(u8()) % choices.count] }
}

/// Descriptors of the kinds inputs create (memfds and eventfds) open in this process now, each as its
/// /proc/self/fd entry and link. Other descriptors come and go with libFuzzer itself (its symbolizer's
/// pipes, corpus files), so they are not counted.
func openInputDescriptors() -> [String] {
    guard let dir = opendir("/proc/self/fd") else { return [] }
    defer { closedir(dir) }
    var found: [String] = []
    while let entry = readdir(dir) {
        // A record is only d_reclen bytes: read the name as a C string from d_name's address, never by
        // loading the whole struct (that reads past glibc's buffer).
        let nameOffset = MemoryLayout<dirent>.offset(of: \.d_name)!
        let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
        var target = [CChar](repeating: 0, count: 256)
        let length = readlink("/proc/self/fd/" + name, &target, target.count - 1)
        guard length > 0 else { continue }
        let link = String(cString: target)
        if link.hasPrefix("/memfd:") || link == "anon_inode:[eventfd]" { found.append(name + " → " + link) }
    }
    return found
}

/// Fails the run (libFuzzer saves the input) when a memfd or eventfd stays open after an input: each
/// input must close every one it created once its connection is gone. Checked on the first input
/// and every `every` inputs after it (FUZZ_FD_CHECK_EVERY, default 16: the directory walk costs about
/// as much as a short input; set it to 1 to replay a reported leak).
struct DescriptorLeakCheck {
    private var baseline: Int?
    private var runs = 0
    private let every: Int

    init() {
        every = max(1, getenv("FUZZ_FD_CHECK_EVERY").flatMap { Int(String(cString: $0)) } ?? 16)
    }

    /// Call before the first input builds anything.
    mutating func start() {
        if baseline == nil { baseline = openInputDescriptors().count }
    }

    /// Call after each input, once everything it made is gone.
    mutating func check() {
        runs += 1
        guard runs == 1 || runs % every == 0, let baseline else { return }
        let open = openInputDescriptors()
        if open.count > baseline {
            fputs("descriptor leak: \(open.count) memfds/eventfds open after input \(runs), \(baseline) before the first: "
                  + open.joined(separator: ", ") + "\n", stderr)
            abort()
        }
    }
}
