import DeviceBus
import VFIOUserServer

/// The agent's ring is read, and a bus master's DMA reaches, the guest RAM the client mapped for DMA.
extension DMAMapTable: WritableGuestMemory {}
