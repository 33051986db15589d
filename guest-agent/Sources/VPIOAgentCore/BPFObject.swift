import CLibBPF
import CVPIOAgentShim
import Glibc
import NE2000Model

/// An error from the BPF side, with what the user can do about it.
public struct AgentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The agent's BPF object (vpio_agent.bpf.o): open → configure → load → fill the site table → attach.
/// `close()` destroys every link (no kprobe stays behind) and the object.
///
/// `@safe`: the libbpf handles never leave the class except `map(_:)`'s, which the executable hands
/// back to libbpf. Every `unsafe` below relies on one invariant: `object`, `program` and each link
/// are handles libbpf gave this object, valid until `close()` (which sets them nil and empties
/// `links`); libbpf's accessors accept a NULL handle and fail with -EINVAL or NULL.
@safe public final class AgentBPFObject {
    public let path: String
    private var object: OpaquePointer?
    private var program: OpaquePointer?
    private var links: [Int: OpaquePointer] = unsafe [:]

    /// Opens the object file without loading it (maps and programs can be inspected).
    public init(path: String) throws {
        self.path = path
        // Fails here, with the file's own errno, rather than inside libbpf's error path.
        do { _ = try AgentFile(path) } catch { throw AgentError("BPF object \(path): \(errnoText(error.errno))") }
        // SAFETY: the C string lives for the call; NULL options mean libbpf's defaults.
        guard let object = unsafe bpf_object__open_file(path, nil) else {
            throw AgentError("cannot open BPF object \(path): \(errnoText(errno))")
        }
        unsafe self.object = object
        // SAFETY: the handle invariant above; the C string lives for the call.
        unsafe program = unsafe bpf_object__find_program_by_name(object, "vpio_site")
        guard unsafe program != nil else { throw AgentError("\(path) has no program vpio_site") }
    }

    deinit { close() }

    /// Kprobes attached now.
    public var linkCount: Int { unsafe links.count }

    /// A map by name, or nil.
    public func map(_ name: String) -> OpaquePointer? {
        // SAFETY: the handle invariant above; the C string lives for the call.
        unsafe bpf_object__find_map_by_name(object, name)
    }

    /// The descriptor of a map by name, or nil.
    public func mapDescriptor(_ name: String) -> Int32? {
        // SAFETY: `map` belongs to the live object (handle invariant).
        unsafe map(name).map { unsafe bpf_map__fd($0) }
    }

    /// (value size, max entries, flags) of a map.
    public func mapShape(_ name: String) -> (valueSize: Int, maxEntries: Int, flags: UInt32)? {
        guard let map = unsafe map(name) else { return nil }
        // SAFETY: `map` belongs to the live object (handle invariant).
        return unsafe (Int(bpf_map__value_size(map)), Int(bpf_map__max_entries(map)), bpf_map__map_flags(map))
    }

    /// Sets the BAR0 port base and the device in .rodata; before `load`. (The register blocks' sizes
    /// are compiled into the program from the generated dp8390.h and rtl8139.h.)
    public func configure(bar0Base: UInt16, device: AgentDevice = .ne2000) throws {
        var base = bar0Base, code = device.bpfCode
        // SAFETY: the handle invariant; the shim copies exactly the size given, that of the variable
        // passed, which lives for the call.
        var rc = unsafe vpio_set_rodata(object, "bar0_base", &base, 2)
        if rc == 0 { rc = unsafe vpio_set_rodata(object, "device", &code, 1) }
        guard rc == 0 else { throw AgentError("cannot set bar0_base/device in \(path): \(errnoText(rc))") }
    }

    /// Loads the object into the kernel.
    public func load() throws {
        // SAFETY: the handle invariant above.
        let rc = unsafe bpf_object__load(object)
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

    // SAFETY: the handle invariant above.
    public var programFD: Int32 { unsafe bpf_program__fd(program) }

    /// Writes the site table (`sites` map) so the program knows each cookie's kind.
    public func fillSites(_ sites: [ProbeSite]) throws {
        for site in sites {
            guard site.id < Int(VPIO_AGENT_MAX_SITES) else { throw AgentError("more than \(VPIO_AGENT_MAX_SITES) sites") }
            let value = vpio_site(kind: site.kind.rawValue, width: UInt8(site.width), rep: site.rep ? 1 : 0,
                                  reserved: 0, pair: UInt32(truncatingIfNeeded: site.pair ?? -1))
            try update("sites", index: site.id, to: value)
        }
    }

    /// Describes one site id in the `sites` map (what `fillSites` does for a scanned site; `vpio agent-cost`
    /// describes its user-space stand-ins this way).
    public func describeSite(id: Int, kind: SiteKind, width: Int, rep: Bool) throws {
        guard id >= 0, id < Int(VPIO_AGENT_MAX_SITES) else { throw AgentError("site id \(id) outside the site table") }
        try update("sites", index: id, to: vpio_site(kind: kind.rawValue, width: UInt8(width), rep: rep ? 1 : 0, reserved: 0, pair: UInt32.max))
    }

    /// Writes the CR rule (`cr_effect` map) from the DP8390 module, the one definition of what a CR
    /// write does; before any probe is attached.
    public func fillCommandEffects() throws {
        for index in 0..<DP8390CHeader.entryCount {
            try update("cr_effect", index: index, to: DP8390CHeader.entry(index: index))
        }
    }

    /// Sets entry `index` of the array map `name` to `value` (whose type must be the map's value type).
    private func update<Value: BitwiseCopyable>(_ name: String, index: Int, to value: Value) throws {
        guard let map = unsafe map(name) else { throw AgentError("no \(name) map") }
        // SAFETY: `map` belongs to the live object; the kernel copies the map's value size from `value`,
        // which must be exactly its size (checked here), and the key is a u32 like the array map's.
        guard unsafe Int(bpf_map__value_size(map)) == MemoryLayout<Value>.size else {
            throw AgentError("the \(name) map's values are not \(MemoryLayout<Value>.size) bytes")
        }
        var key = UInt32(index), value = value
        let rc = unsafe bpf_map_update_elem(bpf_map__fd(map), &key, &value, UInt64(BPF_ANY))
        guard rc == 0 else { throw AgentError("cannot fill \(name)[\(index)]: \(errnoText(errno))") }
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
            // SAFETY: the handle invariant; the C string and `err` live for the call.
            if let link = unsafe vpio_attach_kprobe(program, target, UInt64(offset), UInt64(site.id), &err) {
                unsafe links[site.id] = link
                outcome.attachedOffset = offset
                outcome.error = 0
                return outcome
            }
            outcome.error = err
            if err != -EILSEQ { break }
        }
        return outcome
    }

    /// Attaches the program as a uprobe at `fileOffset` of `binary` in this process only (cookie = `id`),
    /// replacing the link `id` had.
    public func attachUprobe(id: Int, binary: String, fileOffset: UInt64) throws {
        detach(id)
        var err: Int32 = 0
        // SAFETY: the handle invariant; the C string and `err` live for the call; pid 0 is this process.
        guard let link = unsafe vpio_attach_uprobe(program, 0, binary, fileOffset, UInt64(id), &err) else {
            throw AgentError("cannot attach a uprobe at \(binary)+0x\(String(fileOffset, radix: 16)): \(errnoText(err))")
        }
        unsafe links[id] = link
    }

    /// Attaches the program as a kprobe at the entry of kernel function `function` (cookie = `id`).
    public func attachKprobe(id: Int, function: String) throws {
        detach(id)
        var err: Int32 = 0
        // SAFETY: the handle invariant; the C string and `err` live for the call.
        guard let link = unsafe vpio_attach_kprobe(program, function, 0, UInt64(id), &err) else {
            throw AgentError("cannot attach a kprobe at \(function): \(errnoText(err))")
        }
        unsafe links[id] = link
    }

    /// Destroys the link of `id`, if any.
    public func detach(_ id: Int) {
        // SAFETY: the handle invariant; the link is removed from `links` as it is destroyed.
        if let link = unsafe links.removeValue(forKey: id) { unsafe bpf_link__destroy(link) }
    }

    /// Destroys every link (detaches every kprobe), from several threads so the removals share RCU
    /// grace periods.
    public func detachAll() {
        var all: [OpaquePointer?] = unsafe links.values.map { unsafe Optional($0) }
        if unsafe !all.isEmpty {
            // SAFETY: the buffer holds `count` live links (handle invariant), each destroyed once; the
            // dictionary that also held them is emptied right after.
            unsafe all.withUnsafeMutableBufferPointer { buffer in
                unsafe vpio_destroy_links(buffer.baseAddress, Int32(buffer.count), 32)
            }
        }
        unsafe links.removeAll()
    }

    public func close() {
        detachAll()
        // SAFETY: the handle invariant; the handles are cleared at once so nothing uses them again.
        if let object = unsafe object { unsafe bpf_object__close(object) }
        unsafe object = nil
        unsafe program = nil
    }

    /// (run count, run time ns, recursion misses) from the kernel's BPF statistics.
    public func runStats() -> (runs: UInt64, nanoseconds: UInt64, misses: UInt64)? {
        var runs: UInt64 = 0, ns: UInt64 = 0, misses: UInt64 = 0
        // SAFETY: the three counters live for the call; the shim writes one u64 to each.
        guard unsafe vpio_prog_run_stats(programFD, &runs, &ns, &misses) == 0 else { return nil }
        return (runs, ns, misses)
    }
}
