import AccessTrace
import DeviceBus
import DP8390
import NE2000Model

/// What a device under replay did to the outside: its interrupt line and the frames it transmitted.
/// Hand `line` and `sink` to the device at its creation.
public final class ReplayOutside {
    public let line = InterruptLine()
    private var transmitted: [[UInt8]] = []

    public init() {}

    public var sink: FrameSink { { self.transmitted.append($0) } }

    /// The frames transmitted since the last call.
    func takeTransmitted() -> [[UInt8]] {
        defer { transmitted.removeAll() }
        return transmitted
    }
}

/// One device a trace is replayed on.
public struct ReplaySide {
    public var device: NetworkBusDevice
    public var outside: ReplayOutside

    public init(device: NetworkBusDevice, outside: ReplayOutside) {
        self.device = device
        self.outside = outside
    }
}

/// Replays a recorded trace on two devices at once — the reference (the device the trace was recorded
/// on) and a candidate — with every write, reset and received frame given to both at the point the
/// recording had it. Compared: each read's value, the interrupt line after each record, and every
/// transmitted frame (reference against candidate); and the reference against the recording itself
/// (each read's value, and the line level before each write and frame and at the end), which shows
/// the trace holds everything the device's behaviour depended on.
public enum DifferentialReplay {
    public static func run(_ records: [TraceRecord], reference: ReplaySide, candidate: ReplaySide) -> ReplayReport {
        var state = ReplayState(reference: reference, candidate: candidate)
        for (index, record) in records.enumerated() { state.replay(record, at: index) }
        state.finish(at: records.count)
        return state.report
    }
}

/// Where the replay is: the full model over the reference's stream (the register page, the remote DMA
/// in flight), whether CR was written since the last reset, the line the recording shows.
struct ReplayState {
    let reference: ReplaySide
    let candidate: ReplaySide
    var report = ReplayReport()
    var model = FullModel()
    var commandWrittenSinceReset = false
    var recordedLine = false

    init(reference: ReplaySide, candidate: ReplaySide) {
        self.reference = reference
        self.candidate = candidate
    }

    mutating func replay(_ record: TraceRecord, at index: Int) {
        switch record {
        case .event(.access(let access)):
            if access.direction == .write { checkRecordedLine(at: index) }
            replay(access, at: index)
            report.accesses += 1
        case .event(.interrupt(let asserted)):
            recordedLine = asserted
            report.recordedEdges += 1
        case .event(.reset):
            reference.device.reset()
            candidate.device.reset()
            model.apply(.reset)
            commandWrittenSinceReset = false
            report.resets += 1
        case .frameArrived(let frame):
            checkRecordedLine(at: index)
            reference.device.receive(frame: frame)
            candidate.device.receive(frame: frame)
            report.frames += 1
        }
        compareOutside(at: index)
    }

    private mutating func replay(_ access: PortAccess, at index: Int) {
        let register = RegisterName(offset: access.offset, page: model.state.page, direction: access.direction)
        let (offset, width) = (UInt64(access.offset), access.width)
        var seen = access
        switch access.direction {
        case .write:
            reference.device.write(region: 0, offset: offset, width: width, value: access.value)
            candidate.device.write(region: 0, offset: offset, width: width, value: access.value)
        case .read:
            let ours = reference.device.read(region: 0, offset: offset, width: width)
            let theirs = candidate.device.read(region: 0, offset: offset, width: width)
            report.reads += 1
            if ours != access.value { report.unfaithful.append(divergence(index, register, .read(ours, access.value))) }
            if ours != theirs { report.divergences.append(divergence(index, register, .read(ours, theirs))) }
            seen.value = ours
        }
        model.apply(seen)
        switch access.port {
        case .register(CR.offset) where access.direction == .write: commandWrittenSinceReset = true
        case .resetPort where access.direction == .read: commandWrittenSinceReset = false
        default: break
        }
    }

    /// Before a write or a frame every earlier record has been replayed, and a line change is recorded
    /// right after the write or frame that caused it (a read's, just before the read): no ambiguity here.
    private mutating func checkRecordedLine(at index: Int) {
        let line = reference.outside.line.isAsserted
        if line != recordedLine { report.unfaithful.append(divergence(index, nil, .line(line, recordedLine))) }
    }

    private mutating func compareOutside(at index: Int) {
        let (ours, theirs) = (reference.outside.line.isAsserted, candidate.outside.line.isAsserted)
        if ours != theirs { report.divergences.append(divergence(index, nil, .line(ours, theirs))) }
        let (sent, theirsSent) = (reference.outside.takeTransmitted(), candidate.outside.takeTransmitted())
        report.transmitted += sent.count
        if sent != theirsSent { report.divergences.append(divergence(index, nil, .transmitted(sent.map(\.count), theirsSent.map(\.count)))) }
    }

    mutating func finish(at index: Int) {
        checkRecordedLine(at: index)
    }

    private func divergence(_ index: Int, _ register: RegisterName?, _ what: Divergence.What) -> Divergence {
        Divergence(record: index, access: report.accesses, register: register, what: what,
                   context: DivergenceContext(remote: model.state.remote, commandWrittenSinceReset: commandWrittenSinceReset))
    }
}
