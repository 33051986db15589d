import CLibBPF
import CVPIOAgentShim
import Glibc

/// The BPF program's own counters (the one element of the BPF_F_MMAPABLE array `stats`), read through
/// a mapping instead of a map-lookup syscall. The syscall marks its CPU as running BPF while it copies
/// the value (the kernel's bpf_prog_active, raised by bpf_disable_instrumentation); a kprobe whose
/// program fires in that window — the NIC's interrupt handler doing port I/O on the same CPU — is
/// skipped, and before 6.7 not even counted: every heartbeat would risk blinding the probes to an
/// access the host then finds unreported.
///
/// `@safe`: the mapping's address never leaves the class. Every `unsafe` below relies on one
/// invariant: `base` is the live mapping of the stats map, at least MemoryLayout<vpio_stats>.size
/// bytes (checked in init), made in init and unmapped only in deinit.
@safe public final class ProgramCounters {
    private let base: UnsafeMutableRawPointer
    private let length: Int

    /// Maps the map behind `mapFD`; the kernel refuses one created without BPF_F_MMAPABLE.
    public init(mapFD: Int32, valueSize: Int) throws {
        guard valueSize == MemoryLayout<vpio_stats>.size else {
            throw AgentError("the stats map's values are \(valueSize) bytes, vpio_stats is \(MemoryLayout<vpio_stats>.size)")
        }
        length = VPIOPagemap.pageSize
        do {
            unsafe base = try AgentSyscall.mapShared(length: length, descriptor: mapFD)
        } catch {
            throw AgentError("cannot mmap the stats map: \(error)")
        }
    }

    deinit {
        // SAFETY: `base`/`length` are exactly the mapping made in init; nothing reaches it after deinit.
        unsafe AgentSyscall.unmap(base, length: length)
    }

    /// The counters now; each field an atomic load, since the program adds to them on every CPU.
    public func read() -> vpio_stats {
        let stats = unsafe base.assumingMemoryBound(to: vpio_stats.self)
        // SAFETY: the mapping invariant above; the fields are naturally aligned u64s.
        return unsafe vpio_stats(hits: vpio_atomic_load_u64(&stats.pointee.hits),
                                 events_lost: vpio_atomic_load_u64(&stats.pointee.events_lost),
                                 unknown_sites: vpio_atomic_load_u64(&stats.pointee.unknown_sites),
                                 intents: vpio_atomic_load_u64(&stats.pointee.intents),
                                 foreign: vpio_atomic_load_u64(&stats.pointee.foreign),
                                 unmodelled: vpio_atomic_load_u64(&stats.pointee.unmodelled))
    }
}
