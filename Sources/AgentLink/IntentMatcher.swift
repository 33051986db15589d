import VPIOProtocol

/// Pairs each DMA start the host serves with the intent the agent's probe wrote before it, by
/// intent index (the agent numbers its intents 0, 1, 2…; the host counts its DMA starts from the
/// index the ring showed at registration). Indexes are the guest's numbers: they are ordered modulo
/// 2^64, so no value traps.
public final class IntentMatcher {
    public struct Counters: Codable, Equatable, Sendable {
        public var dmaStarts = 0
        /// The intent was in the ring, with the same kind (and address and count when checked).
        public var hits = 0
        /// No intent with the expected index had been written when the DMA started.
        public var misses = 0
        /// The intent disagreed with the access: kind, start or count.
        public var mismatches = 0
        /// Intents the host never saw a DMA start for.
        public var unmatched = 0
        /// Times the expected index passed 2^64-1: a protocol violation no honest agent commits.
        public var indexWraps = 0

        public init(dmaStarts: Int = 0, hits: Int = 0, misses: Int = 0, mismatches: Int = 0, unmatched: Int = 0,
                    indexWraps: Int = 0) {
            self.dmaStarts = dmaStarts
            self.hits = hits
            self.misses = misses
            self.mismatches = mismatches
            self.unmatched = unmatched
            self.indexWraps = indexWraps
        }
    }

    public enum Outcome: Equatable, Sendable {
        case hit
        /// No intent `expected` in the ring; `next` is the lowest index it does hold beyond, if any.
        case miss(expected: UInt64, next: UInt64?)
        case mismatch(expected: IntentKind, found: IntentKind, start: UInt32, count: UInt32)
    }

    public private(set) var counters = Counters()
    private var pending: [(index: UInt64, kind: IntentKind, start: UInt32, count: UInt32)] = []
    private var expected: UInt64 = 0
    /// Bounds memory if the guest floods intents the host never consumes.
    static let maxPending = 1024

    public init() {}

    /// Starts counting from `base`, the agent's `intents_written` at registration.
    public func reset(base: UInt64) {
        pending.removeAll()
        expected = base
    }

    public func ingest(_ records: [RingRecord]) {
        for record in records {
            guard case let .dmaIntent(kind, _, start, count, index, _) = record.body else { continue }
            if pending.count == Self.maxPending {
                pending.removeFirst()
                counters.unmatched += 1
            }
            pending.append((index, kind, start, count))
        }
    }

    /// A DMA of `kind` is starting; `start`/`count`, when the host knows them, are checked too.
    public func dmaStarted(kind: IntentKind, start: UInt32? = nil, count: UInt32? = nil) -> Outcome {
        counters.dmaStarts += 1
        while let first = pending.first, expected.isAhead(of: first.index) {
            pending.removeFirst()
            counters.unmatched += 1
        }
        guard let intent = pending.first, intent.index == expected else {
            // The agent did not see this start; its next intent will carry this index.
            counters.misses += 1
            return .miss(expected: expected, next: pending.first?.index)
        }
        pending.removeFirst()
        expected &+= 1
        if expected == 0 { counters.indexWraps += 1 }
        guard intent.kind == kind, start.map({ $0 == intent.start }) ?? true, count.map({ $0 == intent.count }) ?? true else {
            counters.mismatches += 1
            return .mismatch(expected: kind, found: intent.kind, start: intent.start, count: intent.count)
        }
        counters.hits += 1
        return .hit
    }
}
