import DeviceBus

/// What a bus-master device's DMA reaches: the client's DMA mappings, and only while the guest has bus
/// mastering enabled in the function's command register (a function with it clear must not touch
/// memory). The endpoint sets `enabled` from every config-space write.
public final class BusMasterMemory: WritableGuestMemory {
    public let table: DMAMapTable
    public internal(set) var enabled = false
    /// DMA the device attempted while bus mastering was off (refused).
    public private(set) var refusedWhileDisabled = 0

    public init(table: DMAMapTable) { self.table = table }

    public func read(guestAddress: UInt64, count: Int) -> [UInt8]? {
        guard enabled else { refusedWhileDisabled += 1; return nil }
        return table.read(guestAddress: guestAddress, count: count)
    }

    public func write(guestAddress: UInt64, bytes: [UInt8]) -> Bool {
        guard enabled else { refusedWhileDisabled += 1; return false }
        return table.write(guestAddress: guestAddress, bytes: bytes)
    }
}
