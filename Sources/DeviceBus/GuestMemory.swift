/// Guest RAM as the host reaches it, by guest-physical address: nil for any byte the client has not
/// mapped for DMA. Addresses come from the guest (its driver, or a hostile guest), so a range that is
/// not wholly mapped is refused as a whole.
public protocol GuestMemory: AnyObject {
    func read(guestAddress: UInt64, count: Int) -> [UInt8]?
}

/// Guest RAM a bus-master device also writes (a receive ring): all or nothing, never outside.
public protocol WritableGuestMemory: GuestMemory {
    /// Writes `bytes` at `guestAddress`; false (and nothing written) when any byte is not mapped writable.
    func write(guestAddress: UInt64, bytes: [UInt8]) -> Bool
}
