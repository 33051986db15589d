import CLibBPF
import CVPIOAgentShim
import Glibc
import NE2000Model

/// An error from the BPF side, with what the user can do about it.
public struct AgentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public func errnoText(_ code: Int32) -> String { String(cString: strerror(code < 0 ? -code : code)) }

/// The agent's BPF object (vpio_agent.bpf.o): open → configure → load → fill the site table → attach.
/// `close()` destroys every link (no kprobe stays behind) and the object.
public final class AgentBPFObject {
    public let path: String
    private var object: OpaquePointer?
    public private(set) var program: OpaquePointer?
    public private(set) var links: [Int: OpaquePointer] = [:]

    /// Opens the object file without loading it (maps and programs can be inspected).
    public init(path: String) throws {
        self.path = path
        guard access(path, R_OK) == 0 else { throw AgentError("BPF object \(path): \(errnoText(errno))") }
        guard let object = bpf_object__open_file(path, nil) else {
            throw AgentError("cannot open BPF object \(path): \(errnoText(errno))")
        }
        self.object = object
        program = bpf_object__find_program_by_name(object, "vpio_site")
        guard program != nil else { throw AgentError("\(path) has no program vpio_site") }
    }

    deinit { close() }

    /// A map by name, or nil.
    public func map(_ name: String) -> OpaquePointer? { bpf_object__find_map_by_name(object, name) }

    /// (value size, max entries, flags) of a map.
    public func mapShape(_ name: String) -> (valueSize: Int, maxEntries: Int, flags: UInt32)? {
        guard let map = map(name) else { return nil }
        return (Int(bpf_map__value_size(map)), Int(bpf_map__max_entries(map)), bpf_map__map_flags(map))
    }

    /// Sets the BAR0 port base in .rodata; before `load`. (The register block's size is the DP8390's,
    /// compiled into the program from the generated dp8390.h.)
    public func configure(bar0Base: UInt16) throws {
        var v = bar0Base
        let rc = vpio_set_rodata(object, "bar0_base", &v, 2)
        guard rc == 0 else { throw AgentError("cannot set bar0_base in \(path): \(errnoText(rc))") }
    }

    /// Loads the object into the kernel.
    public func load() throws {
        let rc = bpf_object__load(object)
        guard rc == 0 else {
            let hint: String
            switch -rc {
            case EPERM, EACCES: hint = " (not root, or kernel lockdown / unprivileged BPF restrictions)"
            case ENOSYS, EINVAL, EOPNOTSUPP: hint = " (kernel without BPF support: needs CONFIG_BPF_SYSCALL, CONFIG_KPROBES, BPF ring buffer, kernel >= 5.15)"
            default: hint = ""
            }
            throw AgentError("the kernel refused the BPF program: \(errnoText(rc))\(hint)")
        }
    }

    public var programFD: Int32 { bpf_program__fd(program) }

    /// Writes the site table (`sites` map) so the program knows each cookie's kind.
    public func fillSites(_ sites: [ProbeSite]) throws {
        guard let map = map("sites") else { throw AgentError("no sites map") }
        let fd = bpf_map__fd(map)
        for site in sites {
            guard site.id < Int(VPIO_AGENT_MAX_SITES) else { throw AgentError("more than \(VPIO_AGENT_MAX_SITES) sites") }
            var key = UInt32(site.id)
            var value = vpio_site(kind: site.kind.rawValue, width: UInt8(site.width), rep: site.rep ? 1 : 0,
                                  reserved: 0, pair: UInt32(truncatingIfNeeded: site.pair ?? -1))
            let rc = bpf_map_update_elem(fd, &key, &value, UInt64(BPF_ANY))
            guard rc == 0 else { throw AgentError("cannot fill site \(site.id): \(errnoText(errno))") }
        }
    }

    /// Writes the CR rule (`cr_effect` map) from the DP8390 module, the one definition of what a CR
    /// write does; before any probe is attached.
    public func fillCommandEffects() throws {
        guard let map = map("cr_effect") else { throw AgentError("no cr_effect map") }
        let fd = bpf_map__fd(map)
        for index in 0..<DP8390CHeader.entryCount {
            var key = UInt32(index)
            var value = DP8390CHeader.entry(index: index)
            let rc = bpf_map_update_elem(fd, &key, &value, UInt64(BPF_ANY))
            guard rc == 0 else { throw AgentError("cannot fill cr_effect[\(index)]: \(errnoText(errno))") }
        }
    }

    /// The outcome of attaching one site.
    public struct AttachOutcome: Sendable {
        public var site: ProbeSite
        /// The offset the kprobe went to, when attached.
        public var attachedOffset: Int?
        /// -errno of the last refusal.
        public var error: Int32 = 0
        public var attached: Bool { attachedOffset != nil }
        /// Refused because the offset is not an instruction boundary: not a real site.
        public var notAnInstruction: Bool { !attached && error == -EILSEQ }
    }

    /// Attaches the program at `site` (module:function+offset, cookie = id), trying the fallback
    /// offsets on EILSEQ.
    public func attach(_ site: ProbeSite) -> AttachOutcome {
        var outcome = AttachOutcome(site: site)
        for offset in [site.offset] + site.fallbackOffsets {
            var err: Int32 = 0
            let target = "\(site.module):\(site.function)"
            if let link = vpio_attach_kprobe(program, target, UInt64(offset), UInt64(site.id), &err) {
                links[site.id] = link
                outcome.attachedOffset = offset
                outcome.error = 0
                return outcome
            }
            outcome.error = err
            if err != -EILSEQ { break }
        }
        return outcome
    }

    /// Destroys every link (detaches every kprobe), from several threads so the removals share RCU
    /// grace periods.
    public func detachAll() {
        var all: [OpaquePointer?] = links.values.map { Optional($0) }
        if !all.isEmpty {
            all.withUnsafeMutableBufferPointer { buffer in
                vpio_destroy_links(buffer.baseAddress, Int32(buffer.count), 32)
            }
        }
        links.removeAll()
    }

    public func close() {
        detachAll()
        if let object { bpf_object__close(object) }
        object = nil
        program = nil
    }

    /// (run count, run time ns, recursion misses) from the kernel's BPF statistics.
    public func runStats() -> (runs: UInt64, nanoseconds: UInt64, misses: UInt64)? {
        var runs: UInt64 = 0, ns: UInt64 = 0, misses: UInt64 = 0
        guard vpio_prog_run_stats(programFD, &runs, &ns, &misses) == 0 else { return nil }
        return (runs, ns, misses)
    }

    /// The program's private counters (`stats` map).
    public func stats() -> vpio_stats {
        var value = vpio_stats()
        var key: UInt32 = 0
        if let map = map("stats") { _ = bpf_map_lookup_elem(bpf_map__fd(map), &key, &value) }
        return value
    }
}
