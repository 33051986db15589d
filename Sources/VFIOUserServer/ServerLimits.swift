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
    /// Longest a client may leave a message incomplete (from its first byte), or its replies untaken:
    /// one that stalls longer loses its connection (one log line). The server never waits on a client,
    /// so this bounds what a stalled client holds, not the loop. Below QEMU's 5 s `x-msg-timeout`.
    public var messageWaitMilliseconds = 1000
    /// Longest a device access may be held for a shared device's owner to change (SHARING.md): then
    /// it fails with EBUSY. The sharing's own hold bound is shorter; this is the server's backstop,
    /// below QEMU's 5 s `x-msg-timeout`.
    public var holdMilliseconds = 3000

    public init() {}

    var capabilities: Capabilities {
        Capabilities(maxMessageFDs: UInt32(maxDescriptors), maxDataTransferSize: maxDataTransfer,
                     pageSizes: 4096, maxDMAMaps: UInt32(maxDMAMaps), writeMultiple: true)
    }
}
