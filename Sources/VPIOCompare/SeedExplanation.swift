import VPIOMonitor

/// The seed's ratio explained from a scenario's own ledgers (issue 12): what trapping the CR port alone
/// costs, beside the seed's ratio and vmm-model's, and vmm-model's exits beyond the CR writes, hook point
/// by hook point (`HookPoint.vmmModel`, the one list of what vmm-model traps), in percent of all device
/// accesses and per DMA start; and every access per frame by port and direction (what each driver
/// spends on a packet).
public struct SeedExplanation: Codable, Equatable, Sendable {
    /// One vmm-model hook point other than the CR writes, pooled over the scenario's runs.
    public struct Part: Codable, Equatable, Sendable {
        public var hook: String
        public var exits: Int
        public var percentOfAccesses: Double
        /// nil when the scenario started no DMA.
        public var perDMAStart: Double?
    }

    public var scenario: String
    public var seedPercent: Double?
    /// CR writes (every page) / accesses: cooperative's exits, all of them.
    public var crWritePercent: Double
    public var vmmModelPercent: Double
    /// DMA starts (remote reads/writes and transmits), as the emulated reference judged them.
    public var dmaStarts: Int
    public var parts: [Part]
    /// Frames received and transmitted, pooled; nil when a run did not record them.
    public var frames: Int?
    /// Every access by port and direction (the emulated ledger's `exitsByPort`), per frame.
    public var accessesPerFrameByPort: [String: Double]

    public init(_ scenario: Scenario) {
        let ledgers = scenario.runs.map(\.ledger)
        let accesses = max(1, ledgers.reduce(0) { $0 + $1.accesses })
        func pooled(_ mode: Mode, _ key: String) -> Int { ledgers.reduce(0) { $0 + ($1[mode]?.exitsByPort[key] ?? 0) } }
        let crKey = ModeLedger.portKey(offset: 0, direction: .write)
        self.scenario = scenario.name
        seedPercent = scenario.seed?.ratioPercent
        crWritePercent = Double(pooled(.emulated, crKey)) / Double(accesses) * 100
        vmmModelPercent = Double(ledgers.reduce(0) { $0 + ($1[.vmmModel]?.exits ?? 0) }) / Double(accesses) * 100
        dmaStarts = ledgers.reduce(0) { $0 + ($1[.emulated]?.dmaIntents ?? 0) }
        let starts = dmaStarts
        // exitsByPort attributes an access to its first port, so each hook point's ports are summed.
        let runFrames = scenario.runs.compactMap(\.frames)
        frames = runFrames.count == scenario.runs.count ? runFrames.reduce(0, +) : nil
        var byPort: [String: Double] = [:]
        if let frames, frames > 0 {
            for ledger in ledgers {
                for (key, count) in ledger[.emulated]?.exitsByPort ?? [:] { byPort[key, default: 0] += Double(count) / Double(frames) }
            }
        }
        accessesPerFrameByPort = byPort
        parts = HookPoint.vmmModel.filter { !($0.offsets.contains(0) && $0.direction == .write) }.map { point in
            let exits = point.offsets.reduce(0) { $0 + pooled(.vmmModel, ModeLedger.portKey(offset: $1, direction: point.direction)) }
            return Part(hook: point.name, exits: exits, percentOfAccesses: Double(exits) / Double(accesses) * 100,
                        perDMAStart: starts > 0 ? Double(exits) / Double(starts) : nil)
        }
    }
}
