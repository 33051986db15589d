import AccessTrace
import DeviceBus
import Foundation
import Logging
import NE2000Model
import VPIOMonitor

/// Hears each frame the wire hands the NIC, before the NIC acts on it.
public protocol FrameArrivalObserver: AnyObject {
    func frameArrived(_ frame: [UInt8])
}

/// The guest's shadow monitors (one per mode), the optional trace recorder, and the live console line.
/// Everything runs on the server's poll thread, in the order the device saw the events.
public final class GuestLedger: FrameArrivalObserver {
    public private(set) var monitors: GuestMonitors
    private var recorder: TraceRecorder?
    private let live: Bool
    private var lastLive = Date()

    private let logger: Logger
    /// The buffer memory the guest may reach by DMA: every model of this guest judges against it.
    public let grant: BufferGrant

    public init(enforced: Mode, grant: BufferGrant = .wholeDevice, recordPath: String?, live: Bool,
                logger: Logger = Logger(label: "vpio-host")) throws {
        self.grant = grant
        self.logger = logger
        monitors = GuestMonitors(enforced: enforced, grant: grant)
        recorder = try recordPath.map(TraceRecorder.init(path:))
        self.live = live
    }

    /// A BAR access as PCIEndpoint reports it; only BAR0 (the NE2000's I/O ports) is the device.
    /// Returns each mode's decision when the access starts a DMA.
    @discardableResult
    public func observe(_ access: BusAccess, circumstances: AccessCircumstances = .alone) -> ModeDecisions {
        guard access.region == 0, access.offset < 0x20 else { return ModeDecisions() }
        if access.width != .byte, BAR0.decode(offset: access.offset, width: access.width) == .ignored { wideAccessesIgnored += 1 }
        return feed(.access(PortAccess(access.direction, offset: UInt8(access.offset), width: access.width, value: access.value)),
                    circumstances: circumstances)
    }

    public func interrupt(_ asserted: Bool) { feed(.interrupt(asserted: asserted)) }

    public func reset() { feed(.reset) }

    /// A frame goes into the trace only: no mode's monitor sees the wire (a VMM with the device passed
    /// through does not), but a differential replay must hand both devices the same frames at the same point.
    public func frameArrived(_ frame: [UInt8]) { recorder?.append(.frameArrived(frame)) }

    /// Accesses wider than the block they hit takes (a word or dword over the byte-wide registers, or
    /// one running off BAR0): the device drops them; every mode whose bitmap covers a port they touch
    /// counts them as exits.
    public private(set) var wideAccessesIgnored = 0

    /// Device accesses seen so far.
    public var accesses: Int { monitors.accesses }

    @discardableResult
    private func feed(_ event: DeviceEvent, circumstances: AccessCircumstances = .alone) -> ModeDecisions {
        recorder?.append(.event(event))
        return monitors.observe(event, circumstances: circumstances)
    }

    /// Called between poll rounds: about once a second, the one-line summary.
    public func tick() {
        guard live, Date().timeIntervalSince(lastLive) >= 1 else { return }
        lastLive = Date()
        logger.notice("live \(monitors.ledger.summaryLine)")
    }

    /// Flushes the trace, prints the ledger table and writes it as JSON.
    public func finish(jsonPath: String?) throws {
        try recorder?.close()
        let ledger = monitors.ledger
        for line in ledger.table { logger.notice("ledger \(line)") }
        guard let jsonPath else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(ledger).write(to: URL(fileURLWithPath: jsonPath))
    }
}

/// Writes the access stream to a file in the `AccessTrace` format, in chunks of about 1 MiB.
private final class TraceRecorder {
    private var encoder = TraceEncoder(reservingCapacity: 1 << 20 + 16)
    private let file: FileHandle

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        self.file = file
    }

    func append(_ record: TraceRecord) {
        encoder.append(record)
        if encoder.bytes.count >= 1 << 20 { file.write(Data(encoder.takeBytes())) }
    }

    func close() throws {
        file.write(Data(encoder.takeBytes()))
        try file.close()
    }
}
