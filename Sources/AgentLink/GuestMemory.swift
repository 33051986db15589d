import DeviceBus
import VFIOUserServer

/// The agent's ring is read from the guest RAM the client mapped for DMA.
extension DMAMapTable: GuestMemory {}
