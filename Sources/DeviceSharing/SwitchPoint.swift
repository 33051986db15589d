import DP8390

/// Where a switch may happen: at the owner's CR write with RD = 100 that starts no transmit (switch
/// point A of SHARING.md). Both 8390 drivers program each remote DMA and each transmit right after such
/// a write and start it with the next CR write, so at one nothing is half-programmed, and the write
/// itself ends any remote DMA.
public enum SwitchPoint {
    public static func isSwitchPoint(command value: UInt8) -> Bool {
        let effect = CommandEffect(command: value, wasRunning: true)
        return effect.remote == .abort && !effect.startsTransmit
    }
}
