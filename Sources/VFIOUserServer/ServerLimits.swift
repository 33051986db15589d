import VFIOUserWire

/// What the server accepts from a client; every allocation a client can cause is bounded by these.
public struct ServerLimits: Sendable {
    /// Largest data transfer in one REGION_READ/WRITE (advertised as max_data_xfer_size).
    public var maxDataTransfer: UInt32 = 4096
    /// Largest whole message accepted; a header claiming more closes the connection.
    public var maxMessageSize: UInt32 = 32 * 1024
    /// Descriptors accepted with one message (advertised as max_msg_fds).
    public var maxDescriptors = 8
    public var maxDMAMaps = 1024
    /// Longest wait for the rest of a message that has begun, or for room to send a reply: a client
    /// that stalls longer loses its connection (one log line), not the server its loop. Well below
    /// QEMU's own 5 s `x-msg-timeout`.
    public var messageWaitMilliseconds = 1000

    public init() {}

    var capabilities: Capabilities {
        Capabilities(maxMessageFDs: UInt32(maxDescriptors), maxDataTransferSize: maxDataTransfer,
                     pageSizes: 4096, maxDMAMaps: UInt32(maxDMAMaps), writeMultiple: true)
    }
}
