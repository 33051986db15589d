import Foundation

/// Capabilities exchanged in VERSION as JSON: `{"capabilities": {...}}`. Absent keys take the
/// protocol defaults; unknown keys are ignored, as the spec asks.
public struct Capabilities: Codable, Equatable, Sendable {
    public var maxMessageFDs: UInt32?
    public var maxDataTransferSize: UInt32?
    public var pageSizes: UInt64?
    public var maxDMAMaps: UInt32?
    public var writeMultiple: Bool?

    enum CodingKeys: String, CodingKey {
        case maxMessageFDs = "max_msg_fds"
        case maxDataTransferSize = "max_data_xfer_size"
        case pageSizes = "pgsizes"
        case maxDMAMaps = "max_dma_maps"
        case writeMultiple = "write_multiple"
    }

    public init(maxMessageFDs: UInt32? = nil, maxDataTransferSize: UInt32? = nil, pageSizes: UInt64? = nil,
                maxDMAMaps: UInt32? = nil, writeMultiple: Bool? = nil) {
        self.maxMessageFDs = maxMessageFDs
        self.maxDataTransferSize = maxDataTransferSize
        self.pageSizes = pageSizes
        self.maxDMAMaps = maxDMAMaps
        self.writeMultiple = writeMultiple
    }
}

/// VFIO_USER_VERSION payload (both directions): major, minor, then an optional NUL-terminated JSON
/// capabilities string.
public struct VersionMessage: Equatable, Sendable {
    public var major: UInt16
    public var minor: UInt16
    public var capabilities: Capabilities

    public init(major: UInt16, minor: UInt16, capabilities: Capabilities) {
        self.major = major
        self.minor = minor
        self.capabilities = capabilities
    }

    private struct Envelope: Codable { var capabilities: Capabilities? }

    public init(decoding payload: ArraySlice<UInt8>) throws {
        var r = ByteReader(payload)
        major = try r.u16()
        minor = try r.u16()
        var json = Array(r.rest())
        if let nul = json.firstIndex(of: 0) {
            guard json[nul...].allSatisfy({ $0 == 0 }) else { throw WireError.invalidField("bytes after capabilities NUL") }
            json.removeSubrange(nul...)
        }
        if json.isEmpty {
            capabilities = Capabilities()
            return
        }
        do {
            capabilities = try JSONDecoder().decode(Envelope.self, from: Data(json)).capabilities ?? Capabilities()
        } catch {
            throw WireError.invalidField("capabilities JSON")
        }
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.u16(major)
        w.u16(minor)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding a plain Codable struct of integers cannot fail.
        let json = (try? encoder.encode(Envelope(capabilities: capabilities))) ?? Data()
        w.append(json)
        w.u8(0)
        return w.bytes
    }
}
