import DeviceBus
import DP8390
import NE2000Model

/// A register as the driver addressed it: offset, the page CR selected, and the direction — the
/// DP8390's name for it where it has one.
public struct RegisterName: Sendable, Hashable, CustomStringConvertible {
    public var offset: UInt8
    public var page: UInt8
    public var direction: BusAccess.Direction

    public init(offset: UInt8, page: UInt8, direction: BusAccess.Direction) {
        self.offset = offset
        self.page = page
        self.direction = direction
    }

    public var description: String {
        let verb = direction == .read ? "read" : "write"
        switch BAR0.decode(offset: UInt64(offset), width: .byte) {
        case .dataPort: return "data port \(verb)"
        case .resetPort: return "reset port \(verb)"
        default: break
        }
        let hex = "0x" + String(offset, radix: 16, uppercase: true)
        guard let name = datasheetName else { return "page \(page) \(hex) \(verb)" }
        return offset == CR.offset ? "CR \(verb)" : "\(name) (page \(page) \(hex)) \(verb)"
    }

    private var datasheetName: String? {
        let name: String? = switch (page, direction) {
        case (0, .read): Page0Read(rawValue: offset).map { "\($0)" }
        case (0, .write): Page0Write(rawValue: offset).map { "\($0)" }
        case (1, _): Page1(rawValue: offset).map { "\($0)" }
        case (2, .read): Page2Read(rawValue: offset).map { "\($0)" }
        default: offset == CR.offset ? "cr" : nil
        }
        return name?.uppercased()
    }
}

/// One place where two sides disagreed.
public struct Divergence: Sendable, Hashable, CustomStringConvertible {
    public enum What: Sendable, Hashable {
        /// A read returned `reference` on one side, `other` on the other (the candidate, or the recording).
        case read(_ reference: UInt32, _ other: UInt32)
        /// The interrupt line's level after the record.
        case line(_ reference: Bool, _ other: Bool)
        /// The lengths of the frames each side transmitted during the record.
        case transmitted(_ reference: [Int], _ other: [Int])
    }

    /// Index of the record in the trace.
    public var record: Int
    /// Index of the access among the trace's accesses (the count replayed before this record).
    public var access: Int
    /// The register read, for a read.
    public var register: RegisterName?
    public var what: What
    public var context: DivergenceContext

    public init(record: Int, access: Int, register: RegisterName?, what: What, context: DivergenceContext) {
        self.record = record
        self.access = access
        self.register = register
        self.what = what
        self.context = context
    }

    public var description: String {
        let at = "record \(record) (access \(access))"
        switch what {
        case let .read(a, b):
            let remote = context.remote.map { " (remote \($0.kind) from 0x\(String($0.start, radix: 16)), \($0.moved) bytes moved)" } ?? ""
            return "\(at): \(register.map(String.init(describing:)) ?? "read")\(remote): 0x\(String(a, radix: 16)) against 0x\(String(b, radix: 16))"
        case let .line(a, b): return "\(at): interrupt line \(a ? "high" : "low") against \(b ? "high" : "low")"
        case let .transmitted(a, b): return "\(at): transmitted \(a) bytes against \(b)"
        }
    }

    /// The same divergence with the two sides' values exchanged (to show them in a fixed order whichever
    /// side was the reference).
    public func swapped() -> Divergence {
        var copy = self
        switch what {
        case let .read(a, b): copy.what = .read(b, a)
        case let .line(a, b): copy.what = .line(b, a)
        case let .transmitted(a, b): copy.what = .transmitted(b, a)
        }
        return copy
    }

    /// What kind of disagreement, without the values: the key divergences are grouped by.
    public var kind: String {
        switch what {
        case .read: register.map(String.init(describing:)) ?? "read"
        case .line: "interrupt line"
        case .transmitted: "transmitted frames"
        }
    }
}

/// The device's state at a divergence, as the full model over the reference's stream saw it.
public struct DivergenceContext: Sendable, Hashable {
    /// The remote DMA in flight (a data-port access moves its next bytes).
    public var remote: FullModel.RemoteDMA?
    /// Whether the driver wrote CR since the last reset.
    public var commandWrittenSinceReset: Bool

    public init(remote: FullModel.RemoteDMA?, commandWrittenSinceReset: Bool) {
        self.remote = remote
        self.commandWrittenSinceReset = commandWrittenSinceReset
    }
}

/// What a differential replay found.
public struct ReplayReport: Sendable {
    public var accesses = 0
    public var reads = 0
    public var frames = 0
    public var resets = 0
    public var transmitted = 0
    /// Interrupt-line changes the recording holds.
    public var recordedEdges = 0
    /// Where the candidate disagreed with the reference.
    public var divergences: [Divergence] = []
    /// Where the reference disagreed with the recording ("other" is the recorded value): empty when the
    /// trace holds everything the reference's behaviour depended on.
    public var unfaithful: [Divergence] = []

    /// The divergences by kind and by the documented divergence that covers them (nil: none does), each
    /// group with how often and its first occurrence, most frequent first.
    public var grouped: [DivergenceGroup] {
        var groups: [String: DivergenceGroup] = [:]
        for d in divergences {
            let documented = DocumentedDivergence.explaining(d)
            groups["\(d.kind)|\(documented?.name ?? "")", default: DivergenceGroup(kind: d.kind, documented: documented, first: d)].count += 1
        }
        return groups.values.sorted { $0.count != $1.count ? $0.count > $1.count : $0.first.record < $1.first.record }
    }
}

/// Divergences of one kind, all covered by the same documented divergence or all by none.
public struct DivergenceGroup: Sendable {
    public var kind: String
    public var documented: DocumentedDivergence?
    public var first: Divergence
    public var count = 0
}
