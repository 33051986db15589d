/// What `vpio run` and the end-to-end tests read of an RTL8139 vpio-host's `--stats-json`
/// (host-monitor/vpio-host's RTL8139Statistics), by name: keys not listed are ignored.
public struct RTL8139StatisticsView: Decodable, Sendable {
    public struct NIC: Decodable, Sendable {
        public var framesTransmitted: Int
        public var framesReceived: Int
        /// DMAs the device itself refused: outside the mapped memory.
        public var transmitsRefused: Int
        public var receivesRefused: Int
    }
    public struct Agent: Decodable, Sendable {
        public var registrations: Int
        public var unregistrations: Int
    }
    /// The agent's intents matched against the DMA starts the host found (vpio-host's RTL8139IntentCheck).
    public struct AgentCheck: Decodable, Sendable {
        public struct Intents: Decodable, Sendable {
            public var dmaStarts: Int
            public var hits: Int
            public var misses: Int
            public var mismatches: Int
            public var unmatched: Int
        }
        public var starts: Int
        public var findings: Int
        public var firstFinding: String?
        public var intents: Intents
        public var accessCountMismatches: Int
    }
    /// "rtl8139": tells this form from the NE2000's statistics.
    public var device: String
    public var enforced: String
    /// Writes the enforced mode denied, and frames not stored because the ring was not permitted.
    public var denied: Int
    public var receivesDenied: Int
    public var dmaWithoutBusMaster: Int
    public var nic: NIC
    public var agent: Agent
    public var agentCheck: AgentCheck
}
