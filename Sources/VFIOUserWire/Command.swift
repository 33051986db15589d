/// vfio-user command numbers (protocol spec, "Commands" table).
public enum Command: UInt16, Sendable, CaseIterable {
    case version = 1
    case dmaMap = 2
    case dmaUnmap = 3
    case deviceGetInfo = 4
    case deviceGetRegionInfo = 5
    case deviceGetRegionIOFDs = 6
    case deviceGetIRQInfo = 7
    case deviceSetIRQs = 8
    case regionRead = 9
    case regionWrite = 10
    case dmaRead = 11
    case dmaWrite = 12
    case deviceReset = 13
    case dirtyPages = 14
    case regionWriteMulti = 15
    case deviceFeature = 16
    case migrationDataRead = 17
    case migrationDataWrite = 18
}
