import VFIOUserServer

/// Guest RAM as the host can read it: nil for any byte the client has not mapped for DMA.
public protocol GuestMemory: AnyObject {
    func read(guestAddress: UInt64, count: Int) -> [UInt8]?
}

extension DMAMapTable: GuestMemory {}
