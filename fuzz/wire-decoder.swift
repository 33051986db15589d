// libFuzzer target: every vfio-user decoder on arbitrary bytes. The first byte picks the decoder, the
// rest is its input. A decoder may throw; it must never trap, hang or read out of bounds (ASan).
// Built with the VFIOUserWire sources in one module by fuzz/run.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // SAFETY: libFuzzer hands `size` readable bytes at `data` for the duration of the call.
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = bytes.first else { return 0 }
    decode(selector, bytes.dropFirst())
    return 0
}

private func decode(_ selector: UInt8, _ input: ArraySlice<UInt8>) {
    switch selector % 11 {
    case 0: _ = try? MessageHeader(decoding: input, maxMessageSize: 1 << 20)
    case 1: _ = try? VersionMessage(decoding: input)
    case 2: _ = try? DMAMapRequest(decoding: input)
    case 3: _ = try? DMAUnmapRequest(decoding: input)
    case 4: _ = try? DeviceInfo(decoding: input)
    case 5: _ = try? RegionInfo(decoding: input)
    case 6: _ = try? IRQInfo(decoding: input)
    case 7: _ = try? SetIRQsRequest(decoding: input)
    case 8: _ = try? RegionReadRequest(decoding: input, maxCount: 4096)
    case 9: _ = try? RegionWriteRequest(decoding: input, maxCount: 4096)
    default: _ = try? RegionWriteMultiRequest(decoding: input)
    }
}
