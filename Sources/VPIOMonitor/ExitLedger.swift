import NE2000Model

/// Exit counts of every mode over one guest's access stream: what vpio-host writes with `--ledger-json`
/// and `vpio replay` prints. All counts are exact integers.
public struct ExitLedger: Codable, Equatable, Sendable {
    /// The mode whose monitor is enforced; the others are shadows.
    public var enforced: Mode
    /// Device accesses (one element of `rep insl` is one).
    public var accesses: Int
    /// Interrupt-line edges and function resets: seen by every mode, exits of none.
    public var interruptEdges: Int
    public var resets: Int
    public var modes: [ModeLedger]

    public init(enforced: Mode, accesses: Int, interruptEdges: Int, resets: Int, modes: [ModeLedger]) {
        self.enforced = enforced
        self.accesses = accesses
        self.interruptEdges = interruptEdges
        self.resets = resets
        self.modes = modes
    }

    public subscript(mode: Mode) -> ModeLedger? { modes.first { $0.mode == mode } }

    /// One line for a live console: accesses and exits per mode.
    public var summaryLine: String {
        "accesses=\(accesses) " + modes.map { "\($0.mode.rawValue)=\($0.exits)" }.joined(separator: " ")
    }

    /// A table: one row per mode.
    public var table: [String] {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = [pad("mode", 13) + lpad("accesses", 10) + lpad("exits", 10) + lpad("ratio %", 9)
            + lpad("acted on", 10) + lpad("updates", 10) + lpad("intents", 9) + lpad("denials", 9)]
        for m in modes {
            let label = m.mode.rawValue + (m.mode == enforced ? "*" : "")
            lines.append(pad(label, 13) + lpad("\(accesses)", 10) + lpad("\(m.exits)", 10)
                + lpad(Self.percent(m.exitRatio), 9) + lpad("\(m.actedOn)", 10) + lpad("\(m.modelUpdates)", 10)
                + lpad("\(m.dmaIntents)", 9) + lpad("\(m.denials)", 9))
        }
        lines.append("(* enforced; exits: what the mode's I/O bitmap traps (port, direction, page); acted on: the exits "
            + "its host acts on; edges=\(interruptEdges) resets=\(resets))")
        if let onDemand = self[.onDemand], onDemand.arms > 0 || onDemand.heldExits > 0 {
            lines.append("(on-demand: armed \(onDemand.arms) times, \(onDemand.kicks) of them a kick (an exit), disarmed "
                + "\(onDemand.disarms); exits in every mode: \(onDemand.heldExits) held accesses, "
                + "\(onDemand.hostAnsweredExits) PROM reads the host answered)")
        }
        return lines
    }

    private static func percent(_ ratio: Double) -> String {
        let hundredths = Int((ratio * 10_000).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}

/// One mode's row.
public struct ModeLedger: Codable, Equatable, Sendable {
    public var mode: Mode
    /// Accesses the mode's I/O bitmap traps (port, direction, page).
    public var exits: Int
    /// Exits the host acts on (fewer than `exits` only for cooperative, by the CR value written).
    public var actedOn: Int
    /// exits / accesses.
    public var exitRatio: Double
    public var modelUpdates: Int
    public var dmaIntents: Int
    public var denials: Int
    /// Exits by port and direction, keyed like "0x10r", "0x00w"; ports without exits are left out.
    public var exitsByPort: [String: Int]
    /// Of the exits, accesses that waited for a shared device (a non-owner's bitmap traps every port).
    public var heldExits: Int
    /// Of the exits, accesses outside the mode's set the host answered itself (a shared device's PROM reads).
    public var hostAnsweredExits: Int
    /// on-demand only: times its trap was armed and disarmed, and the arming kicks (exits that are no
    /// access: a running vCPU taken out of guest mode to rewrite its bitmap).
    public var arms: Int
    public var disarms: Int
    public var kicks: Int

    init(mode: Mode, counters: ModeCounters, arming: OnDemandArming?, accesses: Int) {
        self.mode = mode
        exits = counters.exits
        heldExits = counters.heldExits
        hostAnsweredExits = counters.hostAnsweredExits
        arms = arming?.arms ?? 0
        disarms = arming?.disarms ?? 0
        kicks = arming?.kicks ?? 0
        actedOn = counters.actedOn
        exitRatio = accesses > 0 ? Double(counters.exits) / Double(accesses) : 0
        modelUpdates = counters.modelUpdates
        dmaIntents = counters.dmaIntents
        denials = counters.denials
        var ports: [String: Int] = [:]
        for (index, count) in counters.exitsByPort.enumerated() where count > 0 {
            ports[Self.portKey(offset: UInt8(index & 0x1F), direction: index & 0x20 != 0 ? .write : .read)] = count
        }
        exitsByPort = ports
    }

    /// A row of a device whose monitors keep their own counters (the RTL8139's): nothing held, answered
    /// by the host or armed.
    public init(mode: Mode, exits: Int, actedOn: Int, accesses: Int, modelUpdates: Int, dmaIntents: Int, denials: Int,
                exitsByPort: [String: Int]) {
        self.mode = mode
        self.exits = exits
        self.actedOn = actedOn
        exitRatio = accesses > 0 ? Double(exits) / Double(accesses) : 0
        self.modelUpdates = modelUpdates
        self.dmaIntents = dmaIntents
        self.denials = denials
        self.exitsByPort = exitsByPort
        heldExits = 0
        hostAnsweredExits = 0
        arms = 0
        disarms = 0
        kicks = 0
    }

    enum CodingKeys: String, CodingKey {
        case mode, exits, actedOn, exitRatio, modelUpdates, dmaIntents, denials, exitsByPort, heldExits, hostAnsweredExits, arms, disarms, kicks
    }

    /// Ledgers written before sharing and on-demand have no held exits or arming: 0.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(Mode.self, forKey: .mode)
        exits = try c.decode(Int.self, forKey: .exits)
        actedOn = try c.decode(Int.self, forKey: .actedOn)
        exitRatio = try c.decode(Double.self, forKey: .exitRatio)
        modelUpdates = try c.decode(Int.self, forKey: .modelUpdates)
        dmaIntents = try c.decode(Int.self, forKey: .dmaIntents)
        denials = try c.decode(Int.self, forKey: .denials)
        exitsByPort = try c.decode([String: Int].self, forKey: .exitsByPort)
        heldExits = try c.decodeIfPresent(Int.self, forKey: .heldExits) ?? 0
        hostAnsweredExits = try c.decodeIfPresent(Int.self, forKey: .hostAnsweredExits) ?? 0
        arms = try c.decodeIfPresent(Int.self, forKey: .arms) ?? 0
        disarms = try c.decodeIfPresent(Int.self, forKey: .disarms) ?? 0
        kicks = try c.decodeIfPresent(Int.self, forKey: .kicks) ?? 0
    }

    /// The `exitsByPort` key of a BAR0 offset and direction: "0x07w", "0x10r".
    public static func portKey(offset: UInt8, direction: AccessDirection) -> String {
        "0x\(offset < 0x10 ? "0" : "")\(String(offset, radix: 16))\(direction == .write ? "w" : "r")"
    }
}
