import CLibBPF
import CVPIOAgentShim
import Glibc

/// The host-visible ring: the single element of the BPF_F_MMAPABLE array `ring`, mapped into the
/// agent, locked in RAM and resolved to guest-physical page addresses.
public final class SharedRing {
    public let base: UnsafeMutableRawPointer
    public let length: Int
    public private(set) var physicalPages: [UInt64] = []
    public var ring: UnsafeMutablePointer<vpio_ring> { base.assumingMemoryBound(to: vpio_ring.self) }

    /// VPIO_RING_BYTES (a macro expression Swift does not import).
    public static let abiBytes = Int(VPIO_PAGE_SIZE) * (1 + Int(VPIO_RING_CAPACITY) * Int(VPIO_RECORD_SIZE) / Int(VPIO_PAGE_SIZE))

    public init(mapFD: Int32) throws {
        length = MemoryLayout<vpio_ring>.size
        guard length == Self.abiBytes else { throw AgentError("vpio_ring is \(length) bytes, the ABI says \(Self.abiBytes)") }
        let pointer = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, mapFD, 0)
        guard let pointer, pointer != MAP_FAILED else { throw AgentError("cannot mmap the ring map: \(errnoText(errno))") }
        base = pointer
        // Touch every page so it is mapped, then pin it (the map's pages are kernel memory and stay
        // put anyway; mlock keeps this mapping's entries present).
        for page in stride(from: 0, to: length, by: VPIOPagemap.pageSize) {
            let p = (base + page).assumingMemoryBound(to: UInt8.self)
            p.pointee = p.pointee
        }
        if mlock(base, length) != 0 {
            FileHandle.standardErrorWrite("vpio-agent: warning: mlock of the ring failed: \(errnoText(errno))\n")
        }
        physicalPages = try VPIOPagemap.physicalAddresses(of: base, length: length)
    }

    deinit {
        munlock(base, length)
        munmap(base, length)
    }

    /// Fills the identification fields, then the magic last.
    public func publishHeader(unseenSites: UInt64) {
        ring.pointee.header.version = UInt16(VPIO_RING_VERSION)
        ring.pointee.header.record_size = UInt16(VPIO_RECORD_SIZE)
        ring.pointee.header.capacity = UInt32(VPIO_RING_CAPACITY)
        ring.pointee.header.agent_pid = UInt32(getpid())
        ring.pointee.header.unseen_sites = unseenSites
        withUnsafeMutablePointer(to: &ring.pointee.header.magic) { vpio_store_release_u32($0, VPIO_RING_MAGIC) }
    }

    public var accessesSeen: UInt64 { withUnsafePointer(to: &ring.pointee.header.accesses_seen) { vpio_atomic_load_u64($0) } }
    public var intentsWritten: UInt64 { withUnsafePointer(to: &ring.pointee.header.intents_written) { vpio_atomic_load_u64($0) } }
    public var head: UInt64 { withUnsafePointer(to: &ring.pointee.header.head) { vpio_atomic_load_u64($0) } }

    /// Claims a slot and writes `record` (its seq is set here, last).
    public func append(_ record: vpio_record) {
        let n = withUnsafeMutablePointer(to: &ring.pointee.header.head) { vpio_atomic_fetch_add_u64($0, 1) }
        let slot = Int(n & UInt64(VPIO_RING_CAPACITY - 1))
        let records = (base + Int(VPIO_PAGE_SIZE)).assumingMemoryBound(to: vpio_record.self)
        var body = record
        body.seq = 0
        // Body first (seq stays whatever it was: a reader compares it with n + 1), then seq.
        withUnsafeBytes(of: &body) { bytes in
            let target = UnsafeMutableRawPointer(records + slot)
            (target + 8).copyMemory(from: bytes.baseAddress! + 8, byteCount: bytes.count - 8)
        }
        withUnsafeMutablePointer(to: &records[slot].seq) { vpio_store_release_u64($0, n + 1) }
    }
}

enum FileHandle {
    static func standardErrorWrite(_ text: String) {
        var text = text
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
