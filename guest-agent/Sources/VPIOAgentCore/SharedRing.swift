import CLibBPF
import CVPIOAgentShim
import Glibc

/// The host-visible ring: the single element of the BPF_F_MMAPABLE array `ring`, mapped into the
/// agent, locked in RAM and resolved to guest-physical page addresses.
///
/// `@safe`: the mapping's address never leaves the class. Every `unsafe` below relies on one
/// invariant: `base` is the live mapping of the ring map, exactly MemoryLayout<vpio_ring>.size bytes
/// (checked in init), made in init and unmapped only in deinit. The BPF program and the host share
/// it, so the fields they also write (head, the counters, each record's seq) go through the shim's
/// atomics.
@safe public final class SharedRing {
    private let base: UnsafeMutableRawPointer
    public let length: Int
    public private(set) var physicalPages: [UInt64] = []

    /// VPIO_RING_BYTES (a macro expression Swift does not import).
    public static let abiBytes = Int(VPIO_PAGE_SIZE) * (1 + Int(VPIO_RING_CAPACITY) * Int(VPIO_RECORD_SIZE) / Int(VPIO_PAGE_SIZE))

    public init(mapFD: Int32) throws {
        length = MemoryLayout<vpio_ring>.size
        guard length == Self.abiBytes else { throw AgentError("vpio_ring is \(length) bytes, the ABI says \(Self.abiBytes)") }
        do {
            unsafe base = try AgentSyscall.mapShared(length: length, descriptor: mapFD)
        } catch {
            throw AgentError("cannot mmap the ring map: \(error)")
        }
        // Touch every page so it is mapped, then pin it (the map's pages are kernel memory and stay
        // put anyway; mlock keeps this mapping's entries present).
        for page in stride(from: 0, to: length, by: VPIOPagemap.pageSize) {
            // SAFETY: `page` < length, inside the mapping; rewriting a byte with itself changes nothing.
            unsafe base.storeBytes(of: base.load(fromByteOffset: page, as: UInt8.self), toByteOffset: page, as: UInt8.self)
        }
        do {
            try unsafe AgentSyscall.lock(base, length: length)
        } catch {
            AgentSyscall.writeStandardError("vpio-agent: warning: mlock of the ring failed: \(error)\n")
        }
        physicalPages = try VPIOPagemap.physicalAddresses(ofVirtual: UInt(bitPattern: unsafe base), length: length)
    }

    deinit {
        // SAFETY: `base`/`length` are exactly the mapping made in init; nothing reaches it after deinit.
        unsafe AgentSyscall.unmap(base, length: length)
    }

    /// Fills the identification fields, then the magic last.
    public func publishHeader(unseenSites: UInt64) {
        // SAFETY: the mapping invariant above; these fields are the agent's alone, and the magic's
        // release store publishes them to the host.
        unsafe header.pointee.version = UInt16(VPIO_RING_VERSION)
        unsafe header.pointee.record_size = UInt16(VPIO_RECORD_SIZE)
        unsafe header.pointee.capacity = UInt32(VPIO_RING_CAPACITY)
        unsafe header.pointee.agent_pid = UInt32(getpid())
        unsafe header.pointee.unseen_sites = unseenSites
        unsafe vpio_store_release_u32(&header.pointee.magic, VPIO_RING_MAGIC)
    }

    // SAFETY (the three counters): the mapping invariant above; atomic loads, as the BPF program writes them.
    public var accessesSeen: UInt64 { unsafe vpio_atomic_load_u64(&header.pointee.accesses_seen) }
    public var intentsWritten: UInt64 { unsafe vpio_atomic_load_u64(&header.pointee.intents_written) }
    public var head: UInt64 { unsafe vpio_atomic_load_u64(&header.pointee.head) }

    /// Claims a slot and writes `record` (its seq is set here, last).
    public func append(_ record: vpio_record) {
        // SAFETY: the mapping invariant above; head is claimed atomically, as the BPF program does.
        let n = unsafe vpio_atomic_fetch_add_u64(&header.pointee.head, 1)
        let slot = Int(n & UInt64(VPIO_RING_CAPACITY - 1))
        // SAFETY: slot < VPIO_RING_CAPACITY, so the record lies inside `records` (the ring's pages 1…).
        let target = unsafe records + slot
        var body = record
        body.seq = 0
        // Body first (seq stays whatever it was: a reader compares it with n + 1), then seq.
        // SAFETY: both sides are one vpio_record; the first 8 bytes (seq) are skipped.
        unsafe withUnsafeBytes(of: &body) { bytes in
            unsafe (UnsafeMutableRawPointer(target) + 8).copyMemory(from: bytes.baseAddress! + 8, byteCount: bytes.count - 8)
        }
        // SAFETY: as above; the release store publishes the body.
        unsafe vpio_store_release_u64(&target.pointee.seq, n + 1)
    }

    private var header: UnsafeMutablePointer<vpio_ring_header> { unsafe base.assumingMemoryBound(to: vpio_ring_header.self) }

    private var records: UnsafeMutablePointer<vpio_record> {
        unsafe (base + Int(VPIO_PAGE_SIZE)).assumingMemoryBound(to: vpio_record.self)
    }
}
